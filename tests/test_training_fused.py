"""The fused sequence LIF (neurons.lif_fused) against the per-step reference lif_step, option by option.

The option-by-option comparison runs for each backend of the loops: Numba (CPU), Triton in its CPU
interpreter (the GPU kernels' logic, where Triton is installed), and Triton compiled on a GPU where
one is present (tensors on ``cuda``, against the per-step reference on the same GPU).
"""

import importlib

import numba
import numpy as np
import pytest
import snntorch.surrogate
import torch

from neuro.training.layers import Conv, Dense, Readout, Recurrent
from neuro.training.model import SpikingNet
from neurons import lif_fused
from neurons.lif_fused import lif_sequence
from neurons.lif_torch import LIFCell, initial_state
from neurons.surrogate import fast_sigmoid

OPTIONS = [
    dict(reset="hard"), dict(reset="soft"), dict(reset="none"),
    dict(reset="soft", use_mpr=True), dict(reset="hard", use_mpr=True),
    dict(reset="hard", t_ref=3e-3), dict(reset="soft", t_ref=2e-3, inhibitory=True),
    dict(reset="soft", spike_fn=snntorch.surrogate.atan()),
    dict(reset="hard", spike_fn=snntorch.surrogate.fast_sigmoid(slope=10)),
    dict(reset="soft", spike_fn=fast_sigmoid(5.0)),
    dict(reset="soft", tau_syn=0.0), dict(reset="hard", tau_syn=float("inf")),
    dict(reset="soft", quantize=True), dict(reset="hard", quantize=True, t_ref=2e-3),
]



def _option_id(options: dict) -> str:
    """A test id that is the same in every process (a surrogate by its name, not its address)."""
    return "-".join(f"{k}={getattr(v, '__qualname__', v)}" for k, v in options.items())

def _run(cell, x, y, fused, units=None):
    coef = cell.coefficients()
    state = initial_state(coef, x.shape[1:-1])
    return lif_sequence(x, state, coef, cell.reset, cell.spike_fn, cell.use_mpr, y, truncate_units=units,
                        record_v=True, fused=fused)


def _triton_interpreted():
    """neurons.lif_triton with its kernels run by Triton's CPU interpreter."""
    pytest.importorskip("triton", reason="Triton is not installed (it comes with CUDA builds of torch)")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRITON_INTERPRET", "1")  # read when the kernels are decorated, i.e. on import
        module = importlib.import_module("neurons.lif_triton")
        if type(module._forward_kernel).__name__ != "InterpretedFunction":
            module = importlib.reload(module)
    return module


@pytest.fixture(params=["numba", "triton-interpreter", "triton-cuda"])
def backend(request, monkeypatch):
    """``(device, name)``: which loops lif_sequence runs (and where the tensors live)."""
    if request.param == "triton-interpreter":
        module = _triton_interpreted()
        monkeypatch.setattr(lif_fused, "_loops", lambda device: (module.forward, module.backward))
    if request.param == "triton-cuda" and not (torch.cuda.is_available() and lif_fused.triton_available()):
        pytest.skip("no GPU with Triton here: the compiled GPU kernels are not tested")
    return ("cuda" if request.param == "triton-cuda" else "cpu"), request.param


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("opts", OPTIONS, ids=_option_id)
def test_fused_equals_reference_spikes_and_gradients(opts, dtype, backend):
    """Random heterogeneous neurons, every option: identical spikes, membranes and final state; equal gradients
    for the input currents (both channels) and the learnable time constants."""
    device, _ = backend
    opts = dict(opts)
    inhibitory, quantize = opts.pop("inhibitory", False), opts.pop("quantize", False)
    g = np.random.default_rng(0)
    n, steps, batch = 9, 40, 3
    cell = LIFCell(n, reset=opts.pop("reset"), learn_tau=True, tau_mem=g.gamma(4, 5e-3, n),
                   tau_syn=opts.pop("tau_syn", 5e-3), v_th=g.uniform(0.5, 1.5, n), v_reset=g.uniform(-0.2, 0.2, n),
                   v_rest=g.uniform(-0.1, 0.1, n), bias=g.uniform(0, 0.05, n), bias_syn=0.01, **opts).to(device, dtype)
    torch.manual_seed(0)
    on = dict(dtype=dtype, device=device)
    x = (torch.randn(steps, batch, n, **on) * 0.5).requires_grad_()
    y = (torch.randn(steps, batch, n, **on) * 0.2).requires_grad_() if inhibitory else None
    units = torch.full((n,), 64.0 * 37, **on) if quantize else None
    w_s, w_v = torch.randn(steps, batch, n, **on), torch.randn(steps, batch, n, **on)
    results = []
    for fused in (False, True):
        s, v, final = _run(cell, x, y, fused, units)
        loss = (s * w_s).sum() + 0.1 * (v * w_v).sum() + final.v.sum() + final.i_exc.sum()
        inputs = [x] + ([y] if inhibitory else []) + list(cell.parameters())
        results.append((s.detach(), v.detach(), [t.detach() for t in final], torch.autograd.grad(loss, inputs)))
    (s0, v0, f0, g0), (s1, v1, f1, g1) = results
    assert 10 < s0.sum() < 0.9 * s0.numel()
    assert torch.equal(s0, s1) and torch.equal(v0, v1)
    assert all(torch.equal(a, b) for a, b in zip(f0, f1))
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    if cell.spike_fn is not None and getattr(cell.spike_fn, "surrogate", None) is None:
        tolerance = 1e-6  # snntorch's surrogates compute their derivative in float32
    for a, b in zip(g0, g1):
        assert a.abs().max() > 0
        torch.testing.assert_close(b, a, rtol=tolerance, atol=tolerance * float(a.abs().max()))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("opts", OPTIONS, ids=_option_id)
def test_fused_recurrent_equals_reference(opts, dtype, backend):
    """A recurrent population (I[t] = x[t] + s[t-1] W^T), every option: identical spikes and final state, equal
    gradients for the inputs, W, the spikes before the first step, the initial membrane and learnable τ."""
    device, _ = backend
    opts = dict(opts)
    opts.pop("inhibitory", None)
    quantize = opts.pop("quantize", False)
    g = np.random.default_rng(1)
    n, steps, batch = 7, 30, 3
    on = dict(dtype=dtype, device=device)
    cell = LIFCell(n, reset=opts.pop("reset"), learn_tau=True, tau_mem=g.gamma(4, 5e-3, n),
                   tau_syn=opts.pop("tau_syn", 5e-3), v_th=g.uniform(0.5, 1.5, n), v_reset=g.uniform(-0.2, 0.2, n),
                   bias=g.uniform(0, 0.05, n), **opts).to(device, dtype)
    torch.manual_seed(1)
    x = (torch.randn(steps, batch, n, **on) * 0.5).requires_grad_()
    weight = (torch.randn(n, n, **on) * 0.4).requires_grad_()
    s0 = (torch.rand(batch, n, **on) < 0.5).to(dtype).requires_grad_()
    v0 = (torch.rand(batch, n, **on) * 0.3).requires_grad_()
    units = torch.full((n,), 64.0 * 37, **on) if quantize else None
    w_s = torch.randn(steps, batch, n, **on)
    results = []
    for fused in (False, True):
        coef = cell.coefficients()
        state = initial_state(coef, (batch,))._replace(v=v0)
        s, final = lif_fused.lif_recurrent_sequence(x, weight, s0, state, coef, cell.reset, cell.spike_fn,
                                                    cell.use_mpr, units, fused)
        loss = (s * w_s).sum() + final.v.sum() + final.i_exc.sum()
        inputs = [x, weight, s0, v0] + list(cell.parameters())
        results.append((s.detach(), [t.detach() for t in final], torch.autograd.grad(loss, inputs)))
    (s_ref, f_ref, g_ref), (s_fused, f_fused, g_fused) = results
    assert 10 < s_ref.sum() < 0.9 * s_ref.numel()
    assert torch.equal(s_ref, s_fused) and all(torch.equal(a, b) for a, b in zip(f_ref, f_fused))
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    if cell.spike_fn is not None and getattr(cell.spike_fn, "surrogate", None) is None:
        tolerance = 1e-6
    for a, b in zip(g_ref, g_fused):
        assert a.abs().max() > 0
        torch.testing.assert_close(b, a, rtol=tolerance, atol=tolerance * float(a.abs().max()))


def test_fused_kernel_catches_a_broken_reset():
    """The comparison above can fail: a reference with a different reset gives other spikes."""
    cell = LIFCell(5, reset="soft", tau_syn=0.0)
    x = torch.full((30, 2, 5), 0.45)  # soft reset keeps a residual of 0.28, so it spikes sooner again
    s_soft = _run(cell, x, None, True)[0]
    cell.reset = "hard"
    assert not torch.equal(_run(cell, x, None, False)[0], s_soft)


def _layers():
    return {
        "dense": lambda: SpikingNet([Dense(12, 10, reset="hard", t_ref=2e-3), Readout(10, 3)]),
        "conv": lambda: SpikingNet([Conv(2, 3, 3, (6, 6), stride=2, use_mpr=True), Dense(12, 8), Readout(8, 3)]),
        "recurrent": lambda: SpikingNet([Recurrent(12, 8, learn_tau=True, tau_mem=np.linspace(10e-3, 30e-3, 8)),
                                         Readout(8, 3, tau_syn=5e-3, learn_tau=True)]),
        "count": lambda: SpikingNet([Dense(12, 8, spike_fn=snntorch.surrogate.atan()), Dense(8, 3)], readout="count"),
    }


@pytest.mark.parametrize("name", sorted(_layers()))
def test_layers_fused_equal_reference(name, backend):
    """Whole models: the default (fused) forward pass equals the per-step reference; so do the gradients."""
    device, _ = backend
    shape = (2, 6, 6) if name == "conv" else (12,)
    x = (torch.rand(25, 4, *shape, generator=torch.Generator().manual_seed(3)) < 0.3).float().to(device)
    results = []
    for fused in (False, True):
        torch.manual_seed(0)
        model = _layers()[name]().to(device)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(3.0)
        for layer in model.layers:
            layer.fused = fused
        logits, outputs = model(x, record=True)
        logits.sum().backward()
        results.append((outputs, {k: p.grad for k, p in model.named_parameters()}))
    (o0, g0), (o1, g1) = results
    assert all(torch.equal(a, b) for a, b in zip(o0, o1))
    assert any(o.sum() > 0 for o in o0[:-1])
    for k in g0:
        torch.testing.assert_close(g1[k], g0[k], rtol=1e-5, atol=1e-6)


def test_fused_autocast_and_float64():
    """bfloat16 currents under CPU autocast run in float32 (as the reference); a float64 model stays float64."""
    torch.manual_seed(0)
    model = SpikingNet([Dense(12, 10), Readout(10, 3)])
    x = (torch.rand(20, 4, 12) < 0.3).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = model(x)
        for layer in model.layers:
            layer.fused = False
        reference = model(x)
    assert torch.equal(fused, reference)
    model = model.double()
    for layer in model.layers:
        layer.fused = None
    assert model(x.double()).dtype == torch.float64


def test_fused_is_the_same_on_two_threads():
    cell = LIFCell(300, reset="soft", tau_syn=5e-3)
    x = (torch.rand(50, 8, 300) * 0.5).requires_grad_()
    outputs = []
    for threads in (1, 2):
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            s, _, _ = _run(cell, x, None, True)
            (grad,) = torch.autograd.grad((s * torch.linspace(0, 1, 300)).sum(), x)
        finally:
            torch.set_num_threads(previous)
        outputs.append((s, grad))
    assert numba.config.NUMBA_NUM_THREADS >= 1
    assert torch.equal(outputs[0][0], outputs[1][0]) and torch.equal(outputs[0][1], outputs[1][1])


def test_non_heaviside_spike_function_is_refused_by_name():
    def half_spikes(x):  # forward is not H(x)
        return torch.sigmoid(4 * x)

    cell = LIFCell(4, reset="soft", spike_fn=half_spikes)
    x = (torch.rand(10, 2, 4) + 0.5).requires_grad_()
    s, _, _ = _run(cell, x, None, True)
    with pytest.raises(ValueError, match="half_spikes.*fused=False"):
        s.sum().backward()


def test_fused_refuses_what_it_cannot_run():
    cell = LIFCell(4)
    coef = cell.coefficients()
    coef = coef._replace(v_th=coef.v_th.clone().requires_grad_())  # a gradient the kernel does not compute
    with pytest.raises(ValueError, match="fused LIF kernel needs"):
        lif_sequence(torch.rand(5, 2, 4), initial_state(coef, (2,)), coef, fused=True)
    s, _, _ = lif_sequence(torch.rand(5, 2, 4) * 3, initial_state(coef, (2,)), coef)  # auto: the reference
    (g,) = torch.autograd.grad(s.sum(), coef.v_th)
    assert g.abs().sum() > 0


def test_prepared_coefficients_follow_in_place_changes():
    """The coefficients and the loops' prepared rows are reused while unchanged, never when a value changed."""
    torch.manual_seed(3)
    cell = LIFCell(16, reset="soft", v_th=1.0)
    assert cell.coefficients() is cell.coefficients()
    x = torch.rand(12, 4, 16) * 0.6

    def spikes(coef):
        return lif_sequence(x, initial_state(coef, (4,)), coef, "soft", fused=True)[0]

    coef = cell.coefficients()
    before = spikes(coef)
    with torch.no_grad():
        cell.v_th.fill_(0.3)  # in place, as load_state_dict does: the same coef object now holds 0.3
    after = spikes(coef)
    reference = lif_sequence(x, initial_state(coef, (4,)), coef, "soft", fused=False)[0]
    assert torch.equal(after, reference) and after.sum() > before.sum()
    fresh = cell.coefficients()
    assert fresh is not coef and float(fresh.v_th[0]) == pytest.approx(0.3)


def test_learned_time_constants_get_fresh_coefficients_with_gradients():
    cell = LIFCell(8, learn_tau=True, tau_mem=0.02, tau_syn=0.005)
    first, second = cell.coefficients(), cell.coefficients()
    assert first is not second and first.a_mem.requires_grad
    with torch.no_grad():
        assert cell.coefficients() is cell.coefficients()  # no graph to build: reused
    x = torch.rand(6, 2, 8)
    s, _, _ = lif_sequence(x, initial_state(second, (2,)), second, "soft", fused=True, record_v=True)
    s.sum().backward()
    assert cell.log_tau_mem.grad is not None and bool(cell.log_tau_mem.grad.abs().sum() > 0)


def test_one_scalar_coefficient_set_serves_layers_of_two_sizes():
    coef = LIFCell(1).coefficients()._replace(**{k: torch.tensor(v) for k, v in
                                                 dict(v_th=0.5, v_reset=0.0, v_rest=0.0, bias=0.0, n_ref=0.0).items()})
    for n in (3, 7, 3):
        x = torch.rand(5, 2, n)
        fused = lif_sequence(x, initial_state(coef._replace(v_rest=coef.v_rest.expand(n)), (2,)), coef, fused=True)[0]
        reference = lif_sequence(x, initial_state(coef._replace(v_rest=coef.v_rest.expand(n)), (2,)), coef,
                                 fused=False)[0]
        assert fused.shape == (5, 2, n) and torch.equal(fused, reference)


def test_a_refractory_state_without_refractory_periods():
    """A state handed in with neurons still refractory holds them, although no neuron has a refractory period."""
    cell = LIFCell(6, reset="hard", v_th=0.2)
    coef = cell.coefficients()
    x = torch.rand(5, 3, 6)
    state = initial_state(coef, (3,))
    state = state._replace(refr=torch.tensor([[0.0, 2.0, 0.0, 1.0, 0.0, 3.0]]).expand(3, 6).clone())
    fused = lif_sequence(x, state, coef, "hard", fused=True)
    reference = lif_sequence(x, state, coef, "hard", fused=False)
    assert torch.equal(fused[0], reference[0]) and torch.equal(fused[2].refr, reference[2].refr)
    assert fused[0][0, :, 5].sum() == 0 and fused[0][0, :, 0].sum() > 0  # held, and not held
