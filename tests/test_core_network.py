"""Network: validation errors and the lossless save/load round trip."""

import numpy as np
import pytest

import synapses as S
from neuro import Network, Population, Projection


def _net(**kw):
    rng = np.random.default_rng(0)
    pops = [Population("in", 5, "spike_source"),
            Population("exc", 20, params={"tau_mem": rng.gamma(4, 0.005, 20), "v_th": 1.0}, reset="soft",
                       initial={"v": rng.uniform(0, 1, 20)}, metadata={"role": "E"}),
            Population("noise", 3, "poisson", params={"rate": [5.0, 10.0, 20.0]})]
    projs = [Projection("in-exc", "in", "exc", S.bernoulli(5, 20, 0.5, weight=0.3, delay=0, seed=1)),
             Projection("rec", "exc", "exc", S.bernoulli(20, 20, 0.2, weight=-0.1, delay=3, seed=2), receptor="inh",
                        mask=np.arange(S.bernoulli(20, 20, 0.2, seed=2).nnz) % 2 == 0),
             Projection("noise-exc", "noise", "exc", S.all_to_all(3, 20, weight=0.05))]
    return Network(pops, projs, dt=kw.get("dt", 5e-4), metadata={"name": "test"})


def test_round_trip_is_lossless(tmp_path):
    net = _net()
    path = net.save(tmp_path / "net.npz")
    back = Network.load(path)
    assert back.dt == net.dt and back.metadata == net.metadata
    for a, b in zip(net.populations, back.populations):
        assert (a.name, a.size, a.model, a.reset, a.metadata) == (b.name, b.size, b.model, b.reset, b.metadata)
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k])
        for k in a.initial:
            np.testing.assert_array_equal(a.initial[k], b.initial[k])
    for a, b in zip(net.projections, back.projections):
        assert (a.name, a.pre, a.post, a.receptor) == (b.name, b.pre, b.post, b.receptor)
        for k in ("indptr", "indices", "weights", "delays"):
            np.testing.assert_array_equal(getattr(a.synapses, k), getattr(b.synapses, k))
        np.testing.assert_array_equal(a.mask, b.mask)
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_network_is_immutable():
    net = _net()
    with pytest.raises(ValueError):
        net.population("exc").params["v_th"][0] = 5.0
    with pytest.raises(AttributeError):
        net.dt = 1.0


@pytest.mark.parametrize("make, message", [
    (lambda: Population("p", 3, params={"tau_mem": [0.01, np.nan, 0.01]}), "tau_mem.*neuron 1"),
    (lambda: Population("p", 3, params={"tau_syn": -1e-3}), "tau_syn.*neuron 0"),
    (lambda: Population("p", 3, params={"v_th": [1.0, 1.0]}), "shape"),
    (lambda: Population("p", 3, model="hodgkin_huxley"), "unknown neuron model"),
    (lambda: Population("p", 3, reset="bounce"), "unknown reset mode"),
    (lambda: Population("p", 0), "size must be a positive integer"),
    (lambda: Population("p", 2, initial={"w": [0, 0]}), "unknown state variable"),
])
def test_population_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_network_errors():
    a, b = Population("a", 3), Population("b", 4)
    conn = S.all_to_all(3, 4)
    with pytest.raises(ValueError, match="unknown post population 'c'"):
        Network([a, b], [Projection("ab", "a", "c", conn)])
    with pytest.raises(ValueError, match="3x4 .*'b' and 'a' have 4 and 3"):
        Network([a, b], [Projection("ba", "b", "a", conn)])
    with pytest.raises(ValueError, match="duplicate population"):
        Network([a, Population("a", 2)])
    with pytest.raises(ValueError, match="zero-delay projections form a cycle"):
        Network([a], [Projection("aa", "a", "a", S.all_to_all(3, 3, delay=0))])
    with pytest.raises(ValueError, match="dt"):
        Network([a], dt=-1.0)
    with pytest.raises(ValueError, match="input population"):
        Network([a, Population("src", 3, "spike_source")], [Projection("x", "a", "src", S.all_to_all(3, 3))])
    with pytest.raises(ValueError, match="mask"):
        Projection("ab", "a", "b", conn, mask=np.ones(5, bool))


def test_load_rejects_corrupt_and_foreign_files(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="not a readable neuro network"):
        Network.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, header=np.frombuffer(b'{"format": "something"}', np.uint8))
    with pytest.raises(ValueError, match="not a neuro network file"):
        Network.load(other)
    truncated = tmp_path / "trunc.npz"
    _net().save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(ValueError, match="not a readable"):
        Network.load(truncated)


def test_stages_order_zero_delay_chains():
    pops = [Population(n, 2) for n in "abc"] + [Population("src", 2, "spike_source")]
    projs = [Projection("bc", "b", "c", S.all_to_all(2, 2, delay=0)),
             Projection("ab", "a", "b", S.all_to_all(2, 2, delay=0)),
             Projection("src-a", "src", "a", S.all_to_all(2, 2, delay=0)),
             Projection("ca", "c", "a", S.all_to_all(2, 2, delay=1))]
    assert Network(pops, projs).stages() == [["src"], ["a"], ["b"], ["c"]]
