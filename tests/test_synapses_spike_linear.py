"""synapses.spike_linear: the event-driven product equals F.linear (values and gradients) and is taken
only where it applies."""

import pytest
import torch
import torch.nn.functional as F

from neuro.training.layers import Dense
from synapses import spike_linear as sl


def _sparse(shape, density, binary, seed):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(shape, generator=g) < density).float()
    return x if binary else x * torch.randn(shape, generator=g)


def _grads(fn, x, w, b, g):
    tensors = [t.detach().clone().requires_grad_() for t in (x, w, b) if t is not None]
    y = fn(*tensors, *([None] if b is None else []))
    y.backward(g)
    return y.detach(), [t.grad for t in tensors]


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(50, 37), (6, 9, 37)])
def test_values_and_gradients_equal_the_dense_product(binary, bias, shape):
    x = _sparse(shape, 0.15, binary, seed=1)
    w = torch.randn(80, shape[-1], generator=torch.Generator().manual_seed(2))
    b = torch.randn(80) if bias else None
    g = torch.randn(*shape[:-1], 80)
    assert sl._eligible(x, w) and int(torch.count_nonzero(x)) <= sl.MAX_DENSITY * x.numel()
    y, grads = _grads(sl.spike_linear, x, w, b, g)
    y_ref, grads_ref = _grads(F.linear, x, w, b, g)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, grads_ref):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_a_row_gives_the_same_output_alone_and_in_a_batch():
    """The sums run in column order whatever the number of rows: stepping equals the whole sequence."""
    x = _sparse((200, 64), 0.1, True, seed=3)
    w = torch.randn(96, 64)
    whole = sl.spike_linear(x, w)
    rows = torch.cat([sl.spike_linear(x[i:i + 20], w) for i in range(0, 200, 20)])
    assert torch.equal(whole, rows)


@pytest.mark.parametrize("case", ["dense input", "float64", "narrow output", "empty"])
def test_other_inputs_take_the_dense_product_unchanged(case):
    x = _sparse((40, 30), 0.1, True, seed=4)
    w = torch.randn(70, 30)
    if case == "dense input":
        x = _sparse((40, 30), 0.9, False, seed=4)
    elif case == "float64":
        x, w = x.double(), w.double()
    elif case == "narrow output":
        w = w[: sl.MIN_OUT - 1]
    else:
        x = x[:0]
    assert torch.equal(sl.spike_linear(x, w), F.linear(x, w))


def test_dense_layers_use_it_and_keep_their_state_dict():
    layer = Dense(30, 70)
    assert isinstance(layer.synapse, sl.SpikeLinear) and isinstance(layer.synapse, torch.nn.Linear)
    assert set(layer.synapse.state_dict()) == {"weight", "bias"}
    x = _sparse((40, 30), 0.1, True, seed=5)
    torch.testing.assert_close(layer.synapse(x), F.linear(x, layer.synapse.weight, layer.synapse.bias))


def test_a_frozen_weight_and_no_grad_mode():
    x = _sparse((30, 40), 0.1, False, seed=6).requires_grad_()
    w = torch.randn(70, 40)
    y = sl.spike_linear(x, w)
    g = torch.randn_like(y)
    y.backward(g)
    torch.testing.assert_close(x.grad, g @ w)
    with torch.no_grad():
        torch.testing.assert_close(sl.spike_linear(x, w.requires_grad_()), F.linear(x, w), rtol=1e-5, atol=1e-5)


def test_a_column_major_weight_gets_its_gradient_in_its_own_layout():
    """A weight stored transposed (``[in, out]`` memory) is read without a copy and its gradient comes back in the
    same layout; a row-major one (``nn.Linear``'s) in row-major layout; both equal to F.linear's."""
    x = _sparse((30, 96), 0.1, True, 2)
    g = torch.Generator().manual_seed(4)
    for weight in (torch.randn(80, 96, generator=g), torch.randn(96, 80, generator=g).t()):
        w = weight.clone().requires_grad_() if weight.is_contiguous() else weight.detach().t().clone().t()
        w.requires_grad_()
        sl.spike_linear(x, w).square().sum().backward()
        reference = weight.detach().clone().requires_grad_()
        F.linear(x, reference).square().sum().backward()
        assert w.grad.stride() == w.stride()
        torch.testing.assert_close(w.grad, reference.grad)
