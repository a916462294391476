"""Projected weight gradients for Linear and Conv2d layers (HLOP).

The forward pass is unchanged, ``z = W a + b``. Backpropagation gives
``dL/dW = sum delta a^T`` (summed over batch, time steps and, for a
convolution, over the positions of the unfolded ``C_in k^2`` input patches).
HLOP replaces the presynaptic activity in that sum by its residual under the
lateral circuit's frozen subspace ``H_0`` (orthonormal rows)::

    dL/dW  <-  sum delta (e - H_0^T H_0 e)^T  =  (sum delta e^T) (I - H_0^T H_0)

where ``e`` is what the training method correlates with ``delta``: the
per-step input ``a_t`` for BPTT, or the eligibility trace ``a_hat_t =
lambda a_hat_{t-1} + a_t`` for online (OTTT-style) training. The input
gradient ``dL/da = W^T delta`` and the bias gradient are untouched. Since
``W_new x_old = W_old x_old`` whenever the update is orthogonal to
``span(H_0)``, a layer's response to the old tasks' activity is preserved as
far as that activity lies in ``span(H_0)``. The second form (``I - H_0^T
H_0`` on the flattened weight gradient, :func:`project_weight_gradient`)
equals the first for non-spiking lateral neurons.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Residual = Callable[[torch.Tensor], torch.Tensor]


def orthogonal_residual(e: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``e - H_0^T H_0 e`` for rows ``e[..., n]`` and an orthonormal ``basis`` ``H_0 [m, n]``."""
    return e if basis.shape[0] == 0 else e - (e @ basis.T) @ basis


class _ProjectedLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, eligibility, weight, bias):
        ctx.save_for_backward(eligibility, weight)
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        eligibility, weight = ctx.saved_tensors
        g = grad.reshape(-1, grad.shape[-1])
        grad_w = g.T @ eligibility.reshape(-1, eligibility.shape[-1])
        grad_b = g.sum(0) if ctx.has_bias else None
        return grad @ weight, None, grad_w, grad_b


class _ProjectedConv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, patches, weight, bias, stride, padding, dilation):
        ctx.save_for_backward(x, patches, weight)
        ctx.conv = (stride, padding, dilation)
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, stride, padding, dilation)

    @staticmethod
    def backward(ctx, grad):
        x, patches, weight = ctx.saved_tensors
        stride, padding, dilation = ctx.conv
        grad_x = torch.nn.grad.conv2d_input(x.shape, weight, grad, stride, padding, dilation)
        grad_w = torch.einsum("bol,blp->op", grad.flatten(2), patches).reshape(weight.shape)
        grad_b = grad.sum((0, 2, 3)) if ctx.has_bias else None
        return grad_x, None, grad_w, grad_b, None, None, None


def _eligibility(x, eligibility, residual, where):
    e = x if eligibility is None else eligibility
    if e.shape != x.shape:
        raise ValueError(f"{where}: eligibility shape {list(e.shape)} != input shape {list(x.shape)}")
    return e.detach() if residual is None else residual(e.detach())


def projected_linear(layer: nn.Linear, x: torch.Tensor, residual: Residual | None = None,
                     eligibility: torch.Tensor | None = None) -> torch.Tensor:
    """``layer(x)`` whose weight gradient uses ``residual(eligibility)`` (``eligibility`` defaults to ``x``).

    ``residual`` maps activity ``[..., n]`` to ``e - H_0^T H_0 e``, e.g.
    :meth:`neuro.hlop.lateral.LateralCircuit.residual`; None leaves it as is.
    """
    if residual is None and eligibility is None:
        return layer(x)
    e = _eligibility(x, eligibility, residual, "projected_linear")
    return _ProjectedLinear.apply(x, e, layer.weight, layer.bias)


def conv_patches(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """Unfolded input patches ``[B, L, C_in k_h k_w]`` of ``conv`` (the vectors its weights multiply)."""
    if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ValueError("conv_patches: only groups=1, zero padding given as integers is supported")
    return F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride).transpose(1, 2)


def projected_conv2d(conv: nn.Conv2d, x: torch.Tensor, residual: Residual | None = None,
                     eligibility: torch.Tensor | None = None) -> torch.Tensor:
    """``conv(x)`` whose weight gradient uses ``residual`` of the unfolded patches of ``eligibility`` (or ``x``).

    ``residual`` acts on patch vectors of ``C_in k_h k_w`` values (a lateral
    circuit with that many presynaptic inputs).
    """
    if residual is None and eligibility is None:
        return conv(x)
    e = _eligibility(x, eligibility, None, "projected_conv2d")
    patches = conv_patches(conv, e)
    patches = patches if residual is None else residual(patches)
    return _ProjectedConv2d.apply(x, patches, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation)


def project_weight_gradient(grad: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``G (I - H_0^T H_0)`` on the gradient flattened to ``[out, fan_in]`` (weight-hook form)."""
    flat = grad.reshape(grad.shape[0], -1)
    return orthogonal_residual(flat, basis).reshape(grad.shape)


def continual_parameters(model: nn.Module, task: int, exclude: tuple[str, ...] = ()) -> list[nn.Parameter]:
    """Parameters trained on ``task``: all on task 0, afterwards only weights with >= 2 dimensions.

    As in the paper, biases, normalisation affines and thresholds (1-D
    parameters) are learned on the first task only and then frozen, because a
    shift of a bias changes the outputs on every input and cannot be projected.
    Names containing any of ``exclude`` are skipped (e.g. the lateral circuits).
    """
    return [p for name, p in model.named_parameters()
            if not any(word in name for word in exclude) and (task == 0 or p.ndim >= 2)]


def freeze_normalisation(model: nn.Module) -> None:
    """Put batch-norm layers in eval mode (running statistics frozen) after the first task, as the paper does."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
