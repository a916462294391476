"""Projected gradients: an update leaves a layer's outputs on old-task activity unchanged."""

import pytest
import torch
from torch import nn

from neuro.hlop.lateral import LateralCircuit
from neuro.hlop.projection import (
    continual_parameters,
    conv_patches,
    project_weight_gradient,
    projected_conv2d,
    projected_linear,
)


def circuit_spanning(activity: torch.Tensor, rank: int) -> LateralCircuit:
    """A lateral circuit whose frozen rows span the top-``rank`` subspace of ``activity[N, n]``."""
    circuit = LateralCircuit(activity.shape[1])
    circuit.add_subspace(rank)
    circuit.weight[:] = torch.linalg.svd(activity, full_matrices=False)[2][:rank]
    circuit.merge()
    return circuit


def relative_output_change(w_before, w_after, x_old):
    """``||dW x_old|| / (||dW|| ||x_old||)`` with ``x_old`` as rows: 0 when the update is orthogonal to old activity."""
    dw = (w_after - w_before).reshape(w_before.shape[0], -1)
    return float((x_old @ dw.T).norm() / (dw.norm() * x_old.norm()))


def sgd_step(module, loss, lr=0.5):
    module.zero_grad()
    loss.backward()
    with torch.no_grad():
        for p in module.parameters():
            p -= lr * p.grad


def test_projected_linear_step_keeps_outputs_on_old_inputs():
    g = torch.Generator().manual_seed(0)
    x_old = torch.randn(50, 3, generator=g) @ torch.randn(3, 20, generator=g)  # rank-3 old activity
    circuit = circuit_spanning(x_old, 3)
    layer, plain = nn.Linear(20, 7, bias=False), nn.Linear(20, 7, bias=False)
    plain.load_state_dict(layer.state_dict())
    w0 = layer.weight.detach().clone()
    x_new = torch.randn(32, 20, generator=g)
    sgd_step(layer, projected_linear(layer, x_new, circuit.residual).pow(2).sum())
    sgd_step(plain, plain(x_new).pow(2).sum())
    assert relative_output_change(w0, layer.weight.detach(), x_old) < 1e-5
    assert relative_output_change(w0, plain.weight.detach(), x_old) > 1e-2  # without projection they move


def test_projected_linear_gradients_match_the_weight_hook_form_and_input_gradient_is_untouched():
    g = torch.Generator().manual_seed(1)
    circuit = circuit_spanning(torch.randn(30, 12, generator=g), 5)
    layer = nn.Linear(12, 4)
    x = torch.randn(6, 3, 12, generator=g, requires_grad=True)
    target = torch.randn(6, 3, 4, generator=g)
    projected_linear(layer, x, circuit.residual).mul(target).sum().backward()
    grad_w, grad_b, grad_x = layer.weight.grad.clone(), layer.bias.grad.clone(), x.grad.clone()
    layer.zero_grad()
    x.grad = None
    layer(x).mul(target).sum().backward()
    assert torch.allclose(grad_w, project_weight_gradient(layer.weight.grad, circuit.basis), atol=1e-5)
    assert torch.allclose(grad_b, layer.bias.grad) and torch.allclose(grad_x, x.grad)


def test_online_eligibility_trace_replaces_the_input_in_the_weight_gradient():
    layer = nn.Linear(5, 2, bias=False)
    x, trace = torch.randn(4, 5), torch.randn(4, 5)
    projected_linear(layer, x, None, trace).sum().backward()
    assert torch.allclose(layer.weight.grad, torch.ones(4, 2).T @ trace)
    with pytest.raises(ValueError, match="eligibility shape"):
        projected_linear(layer, x, None, trace[:2])


def test_projected_conv_step_keeps_outputs_on_old_inputs_and_matches_weight_hook():
    g = torch.Generator().manual_seed(2)
    conv = nn.Conv2d(3, 4, 3, stride=1, padding=0, bias=False)
    # old inputs: per-channel constant images, so every patch lies in a 3-dimensional subspace
    x_old = torch.randn(4, 3, 1, 1, generator=g).expand(4, 3, 8, 8).contiguous()
    circuit = circuit_spanning(conv_patches(conv, x_old).reshape(-1, 27), 3)
    w0 = conv.weight.detach().clone()
    x_new = torch.randn(2, 3, 8, 8, generator=g, requires_grad=True)
    out = projected_conv2d(conv, x_new, circuit.residual)
    out.pow(2).sum().backward()
    projected_grad, input_grad = conv.weight.grad.clone(), x_new.grad.clone()
    conv.zero_grad()
    x_new.grad = None
    conv(x_new).pow(2).sum().backward()
    assert torch.allclose(projected_grad, project_weight_gradient(conv.weight.grad, circuit.basis), atol=1e-4)
    assert torch.allclose(input_grad, x_new.grad, atol=1e-5)
    with torch.no_grad():
        conv.weight -= 0.05 * projected_grad
    patches = conv_patches(conv, x_old).reshape(-1, 27)
    assert relative_output_change(w0, conv.weight.detach(), patches) < 1e-5
    assert relative_output_change(w0, w0 - 0.05 * conv.weight.grad, patches) > 1e-2


def test_biases_train_on_the_first_task_only():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    assert len(continual_parameters(model, 0)) == 4
    assert [p.ndim for p in continual_parameters(model, 1)] == [2]
