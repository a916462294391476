"""Event simulator against hand-computed cases, the neuron kernel, and itself (trials, seeds)."""

import numpy as np
import pytest

import synapses as S
from neuro import Network, Population, Projection, Simulator
from neurons import lif


def _if_pop(name, n, **params):
    return Population(name, n, params={"tau_mem": np.inf, "tau_syn": 0.0, "v_th": 1.0, **params})


def test_hand_computed_chain_with_delays():
    """src fires at t=0 and t=1; a (delay 2, w=0.6) needs both; b (delay 0, w=1.5) follows a in the same step."""
    net = Network([Population("src", 1, "spike_source"), _if_pop("a", 1), _if_pop("b", 1)],
                  [Projection("src-a", "src", "a", S.all_to_all(1, 1, weight=0.6, delay=2)),
                   Projection("a-b", "a", "b", S.all_to_all(1, 1, weight=1.5, delay=0))])
    res = Simulator(net, dtype=np.float64).run(6, {"src": ([0, 1], [0, 0])}, record_state={"a": None})
    assert res.spikes("src")[0].tolist() == [0, 1]
    assert res.spikes("a")[0].tolist() == [3]  # inputs arrive at t=2 (v=0.6) and t=3 (v=1.2 > 1)
    assert res.spikes("b")[0].tolist() == [3]
    np.testing.assert_allclose(res.trace("a", "v")[0, :, 0], [0, 0, 0.6, 0, 0, 0])


def test_synaptic_current_and_inhibitory_channel():
    net = Network([Population("src", 1, "spike_source"),
                   Population("n", 1, params={"tau_mem": np.inf, "tau_syn": 1e-3, "tau_syn_inh": 2e-3,
                                              "v_th": 100.0})],
                  [Projection("e", "src", "n", S.all_to_all(1, 1, weight=1.0, delay=1)),
                   Projection("i", "src", "n", S.all_to_all(1, 1, weight=-0.5, delay=1), receptor="inh")])
    res = Simulator(net, dtype=np.float64).run(4, {"src": ([0], [0])}, record_state={"n": None},
                                               state_vars=("v", "i_exc", "i_inh"))
    ae, ai = np.exp(-1.0), np.exp(-0.5)
    np.testing.assert_allclose(res.trace("n", "i_exc")[0, :, 0], [0, 1, ae, ae**2])
    np.testing.assert_allclose(res.trace("n", "i_inh")[0, :, 0], [0, -0.5, -0.5 * ai, -0.5 * ai**2])
    np.testing.assert_allclose(res.trace("n", "v")[0, :, 0], np.cumsum([0, 0.5, ae - 0.5 * ai, ae**2 - 0.5 * ai**2]))


def test_current_driven_population_matches_the_neuron_kernel():
    rng = np.random.default_rng(2)
    n, steps = 30, 400
    params = {"tau_mem": rng.uniform(5e-3, 40e-3, n), "tau_syn": 2e-3, "v_th": rng.uniform(0.5, 1.0, n),
              "t_ref": 2e-3, "bias": 0.01}
    net = Network([Population("p", n, params=params, reset="soft")])
    x = rng.normal(0.1, 0.2, (steps, n))
    res = Simulator(net, dtype=np.float64).run(steps, {"p": x}, record_state={"p": None})
    pop = net.population("p")
    s_ref, v_ref = lif.lif_run_numpy(lif.discretize(pop.params, net.dt, "soft"), x)
    np.testing.assert_array_equal(res.raster("p"), s_ref)
    np.testing.assert_allclose(res.trace("p", "v")[0], v_ref)
    assert s_ref.sum() > 50


def _recurrent_net(seed=0):
    n = 200
    exc = np.arange(n) < 160
    rec = S.apply_dale(S.bernoulli(n, n, 0.1, weight=lambda r, k: r.exponential(0.15, k),
                                   delay=lambda r, k: r.integers(1, 5, k), autapses=False, seed=seed), exc)
    pops = [Population("noise", 50, "poisson", params={"rate": 40.0}),
            Population("net", n, params={"tau_mem": 20e-3, "tau_syn": 5e-3, "t_ref": 2e-3})]
    projs = [Projection("noise-net", "noise", "net", S.bernoulli(50, n, 0.2, weight=0.3, seed=seed + 1)),
             Projection("rec", "net", "net", rec)]
    return Network(pops, projs, dt=1e-3)


def test_parallel_trials_equal_serial_runs_and_seeds_are_reproducible():
    sim = Simulator(_recurrent_net())
    batch = sim.run(300, trials=3, seed=11)
    again = sim.run(300, trials=3, seed=11)
    other = sim.run(300, trials=3, seed=12)
    assert len(batch.times[0]) > 500
    for r in range(3):
        np.testing.assert_array_equal(batch.neurons[r], again.neurons[r])
        np.testing.assert_array_equal(batch.times[r], again.times[r])
    assert not np.array_equal(batch.neurons[0], batch.neurons[1])  # trials draw independent noise
    assert not np.array_equal(batch.neurons[0], other.neurons[0])
    # recording fewer populations does not change the dynamics
    subset = sim.run(300, trials=3, seed=11, record=["net"])
    np.testing.assert_array_equal(subset.spikes("net", 2)[1], batch.spikes("net", 2)[1])
    assert subset.spikes("noise", 2)[1].size == 0


def test_poisson_rate_and_recording_growth():
    net = Network([Population("p", 500, "poisson", params={"rate": 50.0})], dt=1e-3)
    res = Simulator(net).run(2000, seed=3, chunk=300)  # forces several chunks and buffer growth
    assert res.rates("p").mean() == pytest.approx(50.0, rel=0.03)
    t = res.times[0]
    assert np.all(np.diff(t) >= 0) and t.max() < 2000


def test_chunking_does_not_change_results():
    sim = Simulator(_recurrent_net(seed=4))
    a = sim.run(500, seed=1, chunk=37)
    b = sim.run(500, seed=1, chunk=5000)
    np.testing.assert_array_equal(a.neurons[0], b.neurons[0])


def test_masked_synapses_do_not_transmit():
    conn = S.all_to_all(1, 2, weight=2.0)
    base = [Population("src", 1, "spike_source"), _if_pop("out", 2)]
    net = Network(base, [Projection("p", "src", "out", conn, mask=np.array([True, False]))])
    res = Simulator(net).run(3, {"src": ([0], [0])})
    assert res.spikes("out")[1].tolist() == [0]


def test_input_errors_are_clear():
    net = Network([Population("src", 2, "spike_source"), _if_pop("a", 2)],
                  [Projection("s", "src", "a", S.all_to_all(2, 2))])
    sim = Simulator(net)
    with pytest.raises(ValueError, match="shape"):
        sim.run(5, {"src": np.zeros((4, 2), bool)})
    with pytest.raises(ValueError, match="unknown population 'b'"):
        sim.run(5, {"b": np.zeros((5, 2))})
    with pytest.raises(ValueError, match="indices in 0..1"):
        sim.run(5, {"src": ([0], [7])})
    with pytest.raises(ValueError, match="NaN"):
        sim.run(5, {"a": np.full(2, np.nan)})
    with pytest.raises(ValueError, match="steps"):
        sim.run(0)
    with pytest.raises(ValueError, match="initial v"):
        sim.run(5, initial={"a": {"v": np.zeros(3)}})
