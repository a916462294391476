import numpy as np
import pytest

from neuro import Network, Population, Projection, Simulator
from neuro.builders import build_hrsnn
from neuro.lnp.graph import recurrent_of, subnetwork, with_synapses
from neuro.lnp.stats import fanout, sops
from synapses import from_dense


def test_recurrent_view_matches_the_projections():
    net = build_hrsnn(n=50, k=6, seed=0)
    rec = recurrent_of(net)
    assert rec.populations == ("exc", "inh") and rec.n == 50
    assert rec.n_synapses == 50 * 6
    w = rec.dense()
    lo, hi = rec.layout["inh"]
    assert (w[:, lo:hi] <= 0).all() and (w[:, :lo] >= 0).all()
    np.testing.assert_allclose(rec.dense("inh")[lo:hi, lo:hi], net.projection("inh->inh").synapses.to_dense())


def test_with_synapses_and_subnetwork():
    net = build_hrsnn(n=40, k=4, seed=1)
    rec = recurrent_of(net)
    keep = np.arange(rec.n_synapses) % 2 == 0
    masked = with_synapses(net, rec, keep, rec.weight * 2)
    rec2 = recurrent_of(masked)
    assert rec2.n_synapses == keep.sum()
    np.testing.assert_allclose(rec2.dense(), rec.dense(weight=np.where(keep, 2 * rec.weight, 0)))
    alive = {"exc": np.arange(32) % 3 != 0, "inh": np.arange(8) < 5}
    sub = subnetwork(masked, alive)
    g = np.concatenate([alive["exc"], alive["inh"]])
    np.testing.assert_allclose(recurrent_of(sub).dense(), rec2.dense()[np.ix_(g, g)])
    assert sub.population("exc").size == alive["exc"].sum()
    assert len(sub.population("exc").metadata["cluster"]) == sub.population("exc").size
    with pytest.raises(ValueError, match="every neuron"):
        subnetwork(net, {"inh": np.zeros(8, bool)})


def test_sops_are_spikes_times_fanout():
    w = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [2.0, 2.0, 0.0]])  # 0 -> 1, 2; 1 -> 2
    params = {"tau_syn": 0.0, "tau_syn_inh": 0.0}  # currents last one step
    net = Network((Population("a", 3, params=params),), (Projection("aa", "a", "a", from_dense(w)),))
    np.testing.assert_array_equal(fanout(net, "a"), [2, 1, 0])
    res = Simulator(net).run(10, {"a": np.eye(1, 3, 0)[0] * 2.0 * (np.arange(10) == 0)[:, None]})
    counts = res.counts("a", 0)
    assert counts.tolist() == [1, 1, 2]  # 0 fires at t=0; 1 and 2 at t=1; 2 again at t=2 (from 1)
    assert sops(res)[0] == 1 * 2 + 1 * 1 + 2 * 0
