"""Neuron models: numba/torch agreement, reset modes, MPR, refractoriness, heterogeneity."""

import numpy as np
import pytest
import torch

from neurons import LIF, get_model, lif, lif_torch, sample_timescales
from neurons.surrogate import mpr, mpr_derivative, mpr_spike


def _params(n, rng, **over):
    p = {"tau_mem": rng.uniform(5e-3, 50e-3, n), "tau_syn": rng.uniform(0, 10e-3, n),
         "tau_syn_inh": rng.uniform(1e-3, 20e-3, n), "v_th": rng.uniform(0.5, 1.5, n),
         "v_reset": rng.uniform(-0.5, 0.2, n), "v_rest": rng.uniform(-0.2, 0.2, n),
         "bias": rng.uniform(-0.05, 0.1, n), "bias_syn": rng.uniform(-0.05, 0.05, n),
         "t_ref": rng.choice([0.0, 1e-3, 3e-3], n)}
    p.update(over)
    return LIF.fill(n, p)


def _torch_run(coef, x_exc, x_inh, reset, use_mpr=False):
    c = lif_torch.LIFCoef.from_matrix(coef, dtype=torch.float64)
    state = lif_torch.initial_state(c)
    spikes, vs = [], []
    for xe, xi in zip(x_exc, x_inh):
        s, state = lif_torch.lif_step(torch.tensor(xe), state, c, reset, use_mpr=use_mpr, x_inh=torch.tensor(xi))
        spikes.append(s.numpy())
        vs.append(state.v.numpy())
    return np.array(spikes, bool), np.array(vs)


@pytest.mark.parametrize("reset", ["hard", "soft", "none"])
def test_numba_and_torch_agree_on_random_inputs(reset):
    rng = np.random.default_rng(1)
    n, steps = 64, 300
    coef = lif.discretize(_params(n, rng), 1e-3, reset)
    x_exc = rng.normal(0.15, 0.3, (steps, n))
    x_inh = -np.abs(rng.normal(0.0, 0.2, (steps, n)))
    s_nb, v_nb = lif.lif_run_numpy(coef, x_exc, x_inh)
    s_t, v_t = _torch_run(coef, x_exc, x_inh, reset)
    assert s_nb.sum() > 100  # the comparison is not vacuous
    np.testing.assert_array_equal(s_nb, s_t)
    np.testing.assert_allclose(v_nb, v_t, rtol=1e-9, atol=1e-9)


def test_hand_computed_trace_hard_and_soft_reset():
    p = LIF.fill(1, {"tau_mem": np.inf, "tau_syn": 0.0, "v_th": 1.0})  # IF neuron, no synaptic memory
    x = np.full((4, 1), 0.6)
    s_hard, v_hard = lif.lif_run_numpy(lif.discretize(p, 1e-3, "hard"), x)
    s_soft, v_soft = lif.lif_run_numpy(lif.discretize(p, 1e-3, "soft"), x)
    # v: 0.6, 1.2 -> spike; hard -> 0, soft -> 0.2; then 0.6 / 0.8 ...
    np.testing.assert_array_equal(s_hard[:, 0], [False, True, False, True])
    np.testing.assert_allclose(v_hard[:, 0], [0.6, 0.0, 0.6, 0.0])
    np.testing.assert_array_equal(s_soft[:, 0], [False, True, False, True])
    np.testing.assert_allclose(v_soft[:, 0], [0.6, 0.2, 0.8, 0.4])


def test_threshold_is_strict():
    p = LIF.fill(1, {"tau_mem": np.inf, "tau_syn": 0.0, "v_th": 1.0})
    s, v = lif.lif_run_numpy(lif.discretize(p, 1e-3), np.array([[0.5], [0.5], [0.25]]))
    np.testing.assert_array_equal(s[:, 0], [False, False, True])  # v == 1.0 does not fire


def test_soft_reset_if_keeps_sum_of_inputs_minus_spikes():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (4, 500))
    p = LIF.fill(500, {"tau_mem": np.inf, "tau_syn": 0.0, "v_th": 0.5})
    s, v = lif.lif_run_numpy(lif.discretize(p, 1e-3, "soft"), x)
    np.testing.assert_allclose(v[-1], x.sum(0) - 0.5 * s.sum(0), atol=1e-12)  # u_T = sum x - theta * sum o


def test_leak_decays_towards_rest_with_exact_factor():
    p = LIF.fill(1, {"tau_mem": 10e-3, "v_rest": -0.5, "v_th": 10.0})
    _, v = lif.lif_run_numpy(lif.discretize(p, 1e-3), np.zeros((3, 1)), v0=np.array([0.5]))
    a = np.exp(-0.1)
    np.testing.assert_allclose(v[:, 0], -0.5 + np.array([a, a**2, a**3]))


def test_refractory_period_holds_membrane_and_blocks_spikes():
    p = LIF.fill(1, {"tau_mem": np.inf, "tau_syn": 0.0, "v_th": 0.5, "t_ref": 3e-3})
    s, v = lif.lif_run_numpy(lif.discretize(p, 1e-3), np.ones((8, 1)))
    np.testing.assert_array_equal(np.flatnonzero(s[:, 0]), [0, 4])  # 3 silent steps after each spike
    np.testing.assert_array_equal(v[1:4, 0], [0.0, 0.0, 0.0])


def test_synaptic_channels_decay_with_their_own_time_constants():
    p = LIF.fill(1, {"tau_syn": 2e-3, "tau_syn_inh": 8e-3, "v_th": 100.0})
    c = lif.discretize(p, 1e-3)
    ct = lif_torch.LIFCoef.from_matrix(c, dtype=torch.float64)
    st = lif_torch.initial_state(ct)
    _, st = lif_torch.lif_step(torch.tensor([1.0]), st, ct, x_inh=torch.tensor([-1.0]))
    _, st = lif_torch.lif_step(torch.tensor([0.0]), st, ct, x_inh=torch.tensor([0.0]))
    assert st.i_exc.item() == pytest.approx(np.exp(-0.5))
    assert st.i_inh.item() == pytest.approx(-np.exp(-0.125))


def test_mpr_values_and_continuity():
    u = torch.tensor([0.0, 0.5, 1.0, -7.0, 8.0])
    np.testing.assert_allclose(mpr(u).numpy(), [0.0, 0.5, 1.0, 1 - 2.0, 2.0], atol=1e-6)
    eps = 1e-6
    for edge in (0.0, 1.0):
        lo, hi = mpr(torch.tensor([edge - eps, edge + eps], dtype=torch.float64))
        assert abs(lo - hi) < 1e-4
    grid = torch.linspace(-3, 4, 2001, dtype=torch.float64)
    assert torch.all(torch.diff(mpr(grid)) > 0)  # monotone


def test_mpr_shrinks_quantisation_error():
    u = torch.linspace(-3, 4, 7001, dtype=torch.float64)
    o = (u > 0.5).double()
    raw, rect = (u - o).abs(), (mpr(u) - o).abs()
    assert torch.all(rect <= raw + 1e-12)
    strict = (u - 0.0).abs().gt(1e-3) & (u - 0.5).abs().gt(1e-3) & (u - 1.0).abs().gt(1e-3)
    assert torch.all(rect[strict] < raw[strict])


def test_mpr_leaves_forward_spikes_identical_and_shapes_gradient():
    rng = np.random.default_rng(5)
    n, steps = 40, 200
    coef = lif.discretize(_params(n, rng), 1e-3, "soft")
    x = rng.normal(0.15, 0.3, (steps, n))
    zeros = np.zeros_like(x)
    s_plain, _ = _torch_run(coef, x, zeros, "soft", use_mpr=False)
    s_mpr, _ = _torch_run(coef, x, zeros, "soft", use_mpr=True)
    np.testing.assert_array_equal(s_plain, s_mpr)
    # gradient of one spike w.r.t. the membrane equals phi'(u) / (2 (v_th - v_reset)) on [0, 1]
    v_th, v_reset = 1.0, 0.25
    v = torch.tensor([0.2, 0.4, 0.9, 1.0, 1.5, 1.8], dtype=torch.float64, requires_grad=True)
    s = mpr_spike(v - v_th, torch.tensor(v_th - v_reset, dtype=torch.float64))
    s.sum().backward()
    u = 0.5 + (v.detach() - v_th) / (2 * (v_th - v_reset))
    expected = mpr_derivative(u) / (2 * (v_th - v_reset))
    np.testing.assert_allclose(v.grad.numpy(), expected.numpy())
    assert v.grad[0] == 0 and v.grad[-1] == 0 and v.grad[3] == pytest.approx(1.657 / 1.5, rel=1e-3)


def test_lifcell_learns_timescales_and_accepts_snntorch_surrogate():
    import snntorch.surrogate as sg

    cell = lif_torch.LIFCell(8, dt=1e-3, reset="soft", learn_tau=True, spike_fn=sg.atan(), tau_mem=0.01)
    x = torch.rand(20, 3, 8) * 0.5
    spikes, _ = cell.run(x)
    spikes.sum().backward()
    assert cell.log_tau_mem.grad is not None and torch.isfinite(cell.log_tau_mem.grad).all()
    assert cell.log_tau_mem.grad.abs().sum() > 0


@pytest.mark.parametrize("dist", ["gamma", "lognormal", "uniform", "fixed"])
def test_timescale_samplers_are_seeded_and_have_the_requested_mean(dist):
    a = sample_timescales(20000, 0.02, dist, cv=0.4, seed=7)
    b = sample_timescales(20000, 0.02, dist, cv=0.4, seed=7)
    np.testing.assert_array_equal(a, b)
    assert a.mean() == pytest.approx(0.02, rel=0.02)
    assert (a > 0).all()
    if dist != "fixed":
        assert a.std() / a.mean() == pytest.approx(0.4, rel=0.05)
        assert not np.array_equal(a, sample_timescales(20000, 0.02, dist, cv=0.4, seed=8))


def test_parameter_validation_errors_name_the_problem():
    with pytest.raises(ValueError, match="tau_mem.*neuron 2"):
        LIF.fill(4, {"tau_mem": [0.01, 0.01, -1.0, 0.01]})
    with pytest.raises(ValueError, match="v_th.*nan"):
        LIF.fill(2, {"v_th": [1.0, np.nan]})
    with pytest.raises(ValueError, match="shape"):
        LIF.fill(3, {"bias": [0.0, 1.0]})
    with pytest.raises(ValueError, match="unknown parameter"):
        LIF.fill(3, {"tau": 0.01})
    with pytest.raises(ValueError, match="unknown neuron model 'izhikevich'"):
        get_model("izhikevich")


def test_synaptic_bias_charges_the_current_and_equals_a_membrane_bias_without_current_memory():
    p = LIF.fill(2, {"tau_mem": np.inf, "tau_syn": [0.0, 2e-3], "v_th": 1e9, "bias_syn": 0.1})
    coef = lif.discretize(p, 1e-3, "none")
    _, v = lif.lif_run_numpy(coef, np.zeros((4, 2)))
    a = np.exp(-0.5)
    i = 0.1 * (1 - a ** np.arange(1, 5)) / (1 - a)  # i[t] = a i[t-1] + 0.1
    np.testing.assert_allclose(v[:, 1], np.cumsum(i), rtol=1e-12)
    _, v_bias = lif.lif_run_numpy(lif.discretize(LIF.fill(1, {"tau_mem": np.inf, "tau_syn": 0.0, "bias": 0.1,
                                                              "v_th": 1e9}), 1e-3, "none"), np.zeros((4, 1)))
    np.testing.assert_array_equal(v[:, 0], v_bias[:, 0])
