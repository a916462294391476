import numpy as np
import pytest

from neuro import Network, Population, Projection
from neuro.lnp.delocalize import delocalize, inverse_participation, localisation
from neuro.lnp.graph import recurrent_of
from synapses import from_dense

N_EXC, N_INH, HUB = 48, 12, 5


def _hub_network(hub_gain=20.0, seed=0):
    """Sparse E/I network (Dale's law) in which excitatory neuron ``HUB`` receives ``hub_gain`` times
    stronger inputs than every other neuron."""
    rng = np.random.default_rng(seed)
    n = N_EXC + N_INH
    w = np.where(rng.random((n, n)) < 0.2, rng.uniform(0.5, 1.0, (n, n)) * 0.01, 0.0)
    np.fill_diagonal(w, 0.0)
    w[:, N_EXC:] *= -3.0  # inhibitory columns
    w[HUB] *= hub_gain
    pops = (Population("exc", N_EXC, params={"tau_mem": 20e-3}), Population("inh", N_INH, params={"tau_mem": 20e-3}))
    blocks = {"exc": slice(0, N_EXC), "inh": slice(N_EXC, n)}
    projs = tuple(Projection(f"{a}->{b}", a, b, from_dense(w[blocks[b], blocks[a]]), receptor=a)
                  for a in blocks for b in blocks)
    return Network(pops, projs)


def test_ipr_of_spread_and_single_site_vectors():
    n = 37
    np.testing.assert_allclose(inverse_participation(np.ones(n)), [1.0 / n])
    np.testing.assert_allclose(inverse_participation(np.eye(n)), np.ones(n))
    v = np.exp(1j * np.linspace(0, 3, n)) * 2.5  # phases and scale do not matter
    np.testing.assert_allclose(inverse_participation(v), [1.0 / n])
    half = np.r_[np.ones(10), np.zeros(10)]
    np.testing.assert_allclose(inverse_participation(np.c_[half, -3 * half]), [0.1, 0.1])
    with pytest.raises(ValueError, match="zero vector"):
        inverse_participation(np.zeros(4))


def test_hub_localises_the_leading_eigenvector_and_delocalize_spreads_it():
    net = _hub_network()
    rec = recurrent_of(net)
    flat = localisation(recurrent_of(_hub_network(hub_gain=1.0)), k=1)
    loc = localisation(rec, k=1)
    assert loc["n"] == N_EXC + N_INH and loc["ipr"].shape == (1,)
    assert loc["mean_ipr"] > 0.4 and flat["mean_ipr"] < 0.05  # the hub carries the leading eigenvector

    out, info = delocalize(net, k=1, target=flat["mean_ipr"])
    after = recurrent_of(out)
    assert info["ipr_before"] == pytest.approx(loc["mean_ipr"])
    assert info["ipr_after"] < 0.1 * info["ipr_before"]
    assert info["ipr_after"] == pytest.approx(localisation(after, k=1)["mean_ipr"])
    assert info["reached"] and 1 <= info["rounds"] <= 20
    # same synapses, same signs, only shrunk; the hub's inputs shrink most
    assert after.n_synapses == rec.n_synapses == net.n_synapses == out.n_synapses
    np.testing.assert_array_equal(after.pre, rec.pre)
    np.testing.assert_array_equal(after.post, rec.post)
    np.testing.assert_array_equal(np.sign(after.weight), np.sign(rec.weight))
    ratio = after.weight / rec.weight
    assert np.all((ratio > 0) & (ratio <= 1))
    assert ratio[rec.post == HUB].max() < 0.5 and ratio[rec.post != HUB].min() > ratio[rec.post == HUB].max()


def test_delocalize_is_deterministic_and_stops_at_the_target():
    net = _hub_network(seed=1)
    a, info_a = delocalize(net, k=3)
    b, info_b = delocalize(net, k=3)
    np.testing.assert_array_equal(recurrent_of(a).weight, recurrent_of(b).weight)
    assert info_a == info_b and info_a["rounds"] >= 1 and info_a["ipr_after"] < info_a["ipr_before"]
    same, info = delocalize(net, k=3, target=1.0)  # already below the target: nothing changes
    assert info["rounds"] == 0 and info["reached"] and info["neurons_rescaled"] == 0
    np.testing.assert_array_equal(recurrent_of(same).weight, recurrent_of(net).weight)


@pytest.mark.parametrize("kwargs, match", [
    ({"k": 0}, "k .*must be an integer in 1..60"),
    ({"k": 61}, "k .*must be an integer in 1..60"),
    ({"k": 2.0}, "k .*must be an integer"),
    ({"target": 0.0}, "target"),
    ({"tol": -0.1}, "tol"),
    ({"rounds": -1}, "rounds"),
    ({"step": 0.0}, "step"),
    ({"hubs": 1.5}, "hubs"),
])
def test_bad_arguments_are_rejected(kwargs, match):
    net = _hub_network()
    with pytest.raises(ValueError, match=match):
        delocalize(net, **kwargs)
    if "k" in kwargs:
        with pytest.raises(ValueError, match=match):
            localisation(recurrent_of(net), kwargs["k"])
