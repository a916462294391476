import numpy as np
import pytest

from neuro import Network, Population, Projection
from neuro.builders import build_hrsnn
from neuro.lnp.lyapunov import (
    SilentOrbitWarning,
    largest_lyapunov,
    linear_exponents,
    lyapunov_spectrum,
    perturbation_exponent,
    probe_input,
    qr_exponents,
)
from neuro.lnp.neuron_prune import lyapunov_participation
from synapses import bernoulli, from_dense


def test_qr_recovers_log_eigenvalues_of_a_linear_map():
    rng = np.random.default_rng(0)
    eig = np.array([1.05, 0.9, -0.7, 0.5, 0.2])
    v = rng.standard_normal((5, 5))
    a = v @ np.diag(eig) @ np.linalg.inv(v)  # non-normal, real spectrum
    np.testing.assert_allclose(linear_exponents(a, steps=3000), np.log(np.abs(eig)), atol=5e-3)
    np.testing.assert_allclose(linear_exponents(np.diag([0.5, 2.0]), steps=2000), np.log([2.0, 0.5]), atol=1e-3)


def test_qr_arguments_are_checked():
    with pytest.raises(ValueError, match="k must"):
        qr_exponents(lambda t, q: q, 3, 10, k=4)
    with pytest.raises(ValueError, match="warmup"):
        qr_exponents(lambda t, q: q, 3, 10, warmup=10)


def _quiet_network(n=8, seed=0):
    """Subthreshold LIF network that never spikes: its Jacobian is constant and triangular."""
    params = {"tau_mem": np.geomspace(10e-3, 80e-3, n), "tau_syn": np.linspace(1e-3, 3e-3, n),
              "tau_syn_inh": 2e-3, "bias": 0.01}
    syn = bernoulli(n, n, 0.5, weight=0.01, autapses=False, seed=seed)
    return Network((Population("r", n, params=params),), (Projection("rr", "r", "r", syn),))


def test_lif_spectrum_matches_the_decays_of_a_silent_network():
    net = _quiet_network()
    p = net.population("r").params
    expected = np.sort(np.log(np.exp(-1e-3 / np.concatenate([p["tau_mem"], p["tau_syn"], p["tau_syn_inh"]]))))[::-1]
    with pytest.warns(SilentOrbitWarning, match="silent"):
        res = lyapunov_spectrum(net, k=4, steps=1500, warmup=300, surrogate_width=1e-7)
    np.testing.assert_allclose(res.exponents, expected[:4], atol=5e-4)
    direct = perturbation_exponent(net, steps=200, eps=1e-6, trials=3, fit=(100, 200))
    assert direct.diverged == 0.0
    assert abs(direct.exponent - expected[0]) < 0.01


def test_default_hrsnn_has_a_positive_surrogate_exponent():
    net = build_hrsnn(n=200, k=20, seed=0)
    res = lyapunov_spectrum(net, k=2, steps=500, warmup=100)
    assert res.largest > 0 and res.exponents[0] >= res.exponents[1]


def test_probe_input_drives_the_spectrum_reproducibly():
    net = build_hrsnn(n=120, k=12, seed=0)
    probe = probe_input(net, 301, 10.0, seed=3)
    assert set(probe) == {"input"} and probe["input"].shape == (301, 64)
    assert abs(probe["input"].mean() - 10.0 * net.dt) < 3e-3
    driven = lyapunov_spectrum(net, steps=300, warmup=100, input_rate=10.0, seed=3)
    explicit = lyapunov_spectrum(net, steps=300, warmup=100, inputs=probe, seed=3)
    autonomous = lyapunov_spectrum(net, steps=300, warmup=100, seed=3)
    assert driven.largest == explicit.largest != autonomous.largest
    with pytest.raises(ValueError, match="input_rate"):
        probe_input(net, 10, -1.0)


def test_largest_exponent_averages_over_probe_realisations():
    net = build_hrsnn(n=80, k=8, seed=0)
    kw = {"steps": 200, "warmup": 50, "input_rate": 10.0}
    single = [largest_lyapunov(net, seed=s, **kw) for s in (4, 5, 6)]
    assert len(set(single)) == 3  # the realisations differ
    assert largest_lyapunov(net, probes=3, seed=4, **kw) == pytest.approx(np.mean(single))
    with pytest.raises(ValueError, match="probes"):
        largest_lyapunov(net, probes=0, **kw)


@pytest.mark.filterwarnings("ignore::neuro.lnp.lyapunov.SilentOrbitWarning")
def test_participation_finds_the_slowest_neurons_of_a_silent_network():
    # Silent network: the Jacobian is block-diagonal per neuron, the leading Lyapunov vectors are the membranes
    # of the slowest neurons (tau_mem rises with the index), so the participation must single them out.
    net = _quiet_network()
    part = lyapunov_participation(net, k=2, steps=600, warmup=300, surrogate_width=1e-7)
    assert np.argsort(-part)[:2].tolist() == [7, 6]
    assert part[6:].sum() > 0.99 * part.sum()


@pytest.mark.filterwarnings("ignore::neuro.lnp.lyapunov.SilentOrbitWarning")
@pytest.mark.parametrize("delay", [1, 2, 3])
def test_delayed_self_coupling_matches_its_characteristic_roots(delay):
    # One subthreshold neuron with an autapse of `delay` steps and a near-instant synapse (a_syn ~ 0): at its fixed
    # point the surrogate map is du_{t+1} = a du_t + g du_{t+1-delay} with g = w sigma'(u* - v_th), whose exponent is
    # log of the largest root of z^delay = a z^(delay-1) + g.
    a, bias, w, width = np.exp(-1e-3 / 20e-3), 0.02, 3.0, 1.0
    params = {"tau_mem": 20e-3, "tau_syn": 1e-4, "tau_syn_inh": 1e-4, "bias": bias}
    net = Network((Population("r", 1, params=params),),
                  (Projection("rr", "r", "r", from_dense([[w]], delays=delay)),))
    u_star = bias / (1 - a)
    g = w * 0.5 / width / (1 + abs(u_star - 1.0) / width) ** 2
    roots = np.roots([1.0, -a] + [0.0] * (delay - 2) + [-g]) if delay > 1 else np.array([a + g])
    res = lyapunov_spectrum(net, k=1, steps=3000, warmup=1500, surrogate_width=width)
    assert abs(res.largest - np.log(np.abs(roots).max())) < 2e-3
