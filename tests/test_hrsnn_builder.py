import numpy as np
import pytest

from neuro import Network, Simulator
from neuro.builders import build_hrsnn
from neuro.lnp.stats import firing_stats
from synapses import obeys_dale


def test_populations_dale_and_receptors():
    net = build_hrsnn(n=100, k=10, seed=3)
    assert [p.name for p in net.populations] == ["input", "exc", "inh"]
    assert net.population("exc").size == 80 and net.population("inh").size == 20
    for proj in net.projections:
        if proj.pre in ("exc", "inh"):
            assert proj.receptor == proj.pre
            assert obeys_dale(proj.synapses, np.full(proj.synapses.n_pre, proj.pre == "exc"))
            assert (proj.synapses.delays == 1).all()
    # the recurrent graph is the small world: every neuron projects to k others
    out = sum(np.bincount(p.synapses.pre_indices(), minlength=p.synapses.n_pre)
              for p in net.projections if p.pre == "exc" and p.post in ("exc", "inh"))
    assert (out == 10).all()


def test_seeded_and_round_trips(tmp_path):
    a, b, c = build_hrsnn(n=60, k=6, seed=1), build_hrsnn(n=60, k=6, seed=1), build_hrsnn(n=60, k=6, seed=2)
    wa = [p.synapses.weights for p in a.projections]
    assert all(np.array_equal(x, p.synapses.weights) for x, p in zip(wa, b.projections))
    assert not np.array_equal(a.population("exc").params["tau_mem"], c.population("exc").params["tau_mem"])
    loaded = Network.load(a.save(tmp_path / "h.npz"))
    assert np.array_equal(loaded.population("inh").params["bias"], a.population("inh").params["bias"])


def test_gamma_timescales_and_constant_drive():
    net = build_hrsnn(n=2000, k=4, n_input=0, seed=0, tau_mem={"mean": 20e-3, "dist": "gamma", "cv": 0.5})
    tau = net.population("exc").params["tau_mem"]
    assert abs(tau.mean() - 20e-3) < 1.5e-3 and abs(tau.std() / tau.mean() - 0.5) < 0.06
    p = net.population("exc").params
    drive = p["bias"] / (1 - np.exp(-net.dt / p["tau_mem"]))
    np.testing.assert_allclose(drive, 1.5)


def test_clusters_have_their_own_timescales():
    clusters = [{"fraction": 0.5, "tau_mem": {"mean": 5e-3, "cv": 0.2}},
                {"fraction": 0.5, "tau_mem": {"mean": 50e-3, "cv": 0.2}}]
    net = build_hrsnn(n=400, clusters=clusters, connectivity="random", p=0.05, seed=0)
    pop = net.population("exc")
    label = np.array(pop.metadata["cluster"])
    tau = pop.params["tau_mem"]
    assert set(label) == {0, 1}
    assert tau[label == 0].mean() < 8e-3 < 35e-3 < tau[label == 1].mean()


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="unknown HRSNN option"):
        build_hrsnn(n_neurons=10)
    with pytest.raises(ValueError, match="connectivity"):
        build_hrsnn(n=50, connectivity="ring")
    with pytest.raises(ValueError, match="delay"):
        build_hrsnn(n=50, k=4, delay=0)


def test_default_operating_point_is_asynchronous_irregular():
    net = build_hrsnn(seed=0)
    stats = firing_stats(Simulator(net).run(1500, seed=0), ["exc", "inh"])
    assert 2.0 < stats["rate_mean_hz"] < 60.0
    assert stats["cv_isi"] > 0.5  # irregular (0.57 at seed 0, 1.0 at seed 1)
    assert stats["synchrony_chi2"] < 0.1  # asynchronous


def test_readout_population_is_fed_but_not_recurrent():
    from neuro.lnp.graph import recurrent_of, subnetwork

    net = build_hrsnn(n=50, k=6, n_readout=3, seed=0)
    assert net.population("readout").reset == "none"
    assert net.projection("exc->readout").synapses.nnz == 40 * 3
    assert recurrent_of(net).populations == ("exc", "inh")
    sub = subnetwork(net, {"exc": np.arange(40) < 20})
    assert sub.projection("exc->readout").synapses.n_pre == 20
