"""Networks built in neuro export pooling and delays as NIR nodes: a trained conv -> pool -> dense/conv model writes
Conv2d, SumPool2d/AvgPool2d (Flatten, Affine) and comes back spike for spike (through neuro's metadata and from NIR's
fields alone), snntorch reads it; a projection with one delay per target neuron writes Linear -> Delay and comes back
with the same delays (and the float64 reference of NIR's equations gives its spikes)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: the helpers sit beside this file
import nir_reference  # noqa: E402
from test_deploy_nir_conv_export import snntorch_output  # noqa: E402
from test_nir_export_nodes import _fields_only, _kinds  # noqa: E402

from deployment.nir_io import export_nir, import_nir, network_to_nir  # noqa: E402
from neuro.io import ConfigError  # noqa: E402
from neuro.network import Network, Population, Projection  # noqa: E402
from neuro.simulator import Simulator  # noqa: E402
from neuro.training import config  # noqa: E402
from neuro.training.convert import compare, to_network  # noqa: E402
from neuro.training.pooling import Pool  # noqa: E402
from synapses import from_dense  # noqa: E402

SHAPE = (2, 10, 10)
CASES = {"sum_dense": ("sum", {"type": "dense", "size": 12}, {}),
         "avg_conv": ("avg", {"type": "conv", "channels": 4, "kernel": 3}, {}),
         "overlapping": ("sum", {"type": "dense", "size": 12}, {"stride": 1})}


def _model(case, reset="soft", readout="membrane"):
    kind, after, extra = CASES[case]
    layers = [{"type": "conv", "channels": 3, "kernel": 3, "padding": 1},
              {"type": "pool", "kernel": 2, "kind": kind, **extra}, after]
    cfg = config.resolve({"model": {"layers": layers, "reset": reset, "readout": readout}})
    model = config.build_model(cfg["model"], SHAPE, 4, seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # enough drive for many spikes
    return model


def _spikes(net, x, names):
    result = Simulator(net, dtype=np.float64).run(len(x), {"input": x})
    return {n: result.raster(n) for n in names}


def test_pool_sums_or_averages_windows_and_refuses_bad_input():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float64).reshape(2, 1, 3, 4, 4)  # [T, B, C, H, W]
    total = Pool((3, 4, 4), 2, "sum")(x)
    assert total.shape == (2, 1, 3, 2, 2)
    assert total[1, 0, 2, 1, 0] == x[1, 0, 2, 2:4, 0:2].sum()
    torch.testing.assert_close(Pool((3, 4, 4), 2, "avg")(x), total / 4)
    with pytest.raises(ValueError, match="expected inputs"):
        Pool((3, 4, 4), 2)(torch.zeros(1, 3, 5, 5))
    with pytest.raises(ValueError, match="kind"):
        Pool((3, 4, 4), 2, "max")


@pytest.mark.parametrize("layers, message", [
    ([{"type": "pool"}], "missing 'kernel'"),
    ([{"type": "pool", "kernel": 2, "kind": "max"}], r"kind must be one of \['sum', 'avg'\]"),
    ([{"type": "pool", "kernel": 2, "size": 3}], "unknown key"),
    ([{"type": "dense", "size": 4}, {"type": "pool", "kernel": 2}], r"layers\[1\]: a pool layer needs \[C, H, W\]"),
    ([{"type": "pool", "kernel": 20}], "does not fit input 10x10"),
])
def test_bad_pool_configs_are_refused_naming_the_layer(layers, message):
    with pytest.raises(ConfigError, match=message):
        config.build_model(config.resolve({"model": {"layers": layers}})["model"], SHAPE, 4)
    with pytest.raises(ConfigError, match="avg pool cannot be trained with qat"):
        config.resolve({"model": {"qat": True, "layers": [{"type": "pool", "kernel": 2, "kind": "avg"}]}})


@pytest.mark.parametrize("case", list(CASES))
def test_a_pooled_model_converts_spike_for_spike(case):
    x = (torch.rand(20, 3, *SHAPE, generator=torch.Generator().manual_seed(0)) < 0.3).double()
    result = compare(_model(case), x)
    assert result["layer0"]["spikes"] > 100 and result["layer2"]["spikes"] > 20
    assert result["layer0"]["spike_agreement"] == result["layer2"]["spike_agreement"] == 1.0
    assert result["layer3"]["max_abs_diff_v"] < 1e-12


@pytest.mark.parametrize("case, pool", [("sum_dense", "SumPool2d"), ("avg_conv", "AvgPool2d"),
                                        ("overlapping", None)])
def test_a_pooled_model_exports_pool_nodes_and_comes_back_spike_for_spike(case, pool, tmp_path):
    net = to_network(_model(case), SHAPE)
    exported = network_to_nir(net)
    kinds = _kinds(exported)
    if pool is None:  # overlapping windows: the weights cannot be read back: an Affine
        assert "SumPool2d" not in kinds and kinds.count("Affine") == 2
    else:
        assert pool in kinds and kinds.count("Conv2d") == 1 + (case == "avg_conv")
    x = np.random.default_rng(3).random((40, int(np.prod(SHAPE)))) < 0.3
    names = ("layer0", "layer2")
    ours = _spikes(net, x, names)
    back = import_nir(export_nir(net, tmp_path / "pool.nir"))
    assert _kinds(network_to_nir(back)) == kinds  # the pool survives a second round
    fields = import_nir(_fields_only(network_to_nir(net)))  # what another library reads: NIR's fields alone
    for other in (back, fields):
        theirs = _spikes(other, x, names)
        for name in names:
            assert ours[name].sum() >= 20 and np.array_equal(ours[name], theirs[name]), name
    readout = Simulator(net, dtype=np.float64).run(40, {"input": x}, record_state={"layer3": None}).trace("layer3")
    again = Simulator(back, dtype=np.float64).run(40, {"input": x}, record_state={"layer3": None}).trace("layer3")
    np.testing.assert_array_equal(readout, again)


@pytest.mark.parametrize("case", ["sum_dense", "avg_conv"])
def test_snntorch_reads_a_pooled_model_spike_for_spike(case):
    """Hard reset (snntorch's NIR import resets to zero), spiking last layer (it has no LI)."""
    net = to_network(_model(case, "hard", "count"), SHAPE)
    x = np.random.default_rng(4).random((80, int(np.prod(SHAPE)))) < 0.3
    expected = Simulator(net, dtype=np.float32).run(80, {"input": x}).raster("layer3")
    assert expected.sum() >= 10
    assert np.array_equal(snntorch_output(net, x, SHAPE), expected)


def _delayed_network(recurrent_delay):
    """input -> a (one delay of 1-4 steps per neuron) -> b (delay 3), and a -> a; hard reset."""
    rng = np.random.default_rng(0)
    no_current = {"tau_mem": 0.01, "tau_syn": 0.0, "tau_syn_inh": 0.0}
    pops = (Population("input", 20, "spike_source"), Population("a", 15, "lif", no_current),
            Population("b", 6, "lif", {"tau_mem": 0.02, "tau_syn": 0.005}))
    per_neuron = np.repeat(rng.integers(1, 5, 15)[:, None], 20, axis=1)
    projs = (Projection("in_a", "input", "a", from_dense(rng.normal(0.4, 0.5, (15, 20)), delays=per_neuron)),
             Projection("a_b", "a", "b", from_dense(rng.normal(1.5, 1.0, (6, 15)), delays=3)),
             Projection("a_a", "a", "a", from_dense(rng.normal(0, 0.3, (15, 15)), delays=recurrent_delay)))
    return Network(pops, projs, 1e-3)


@pytest.mark.parametrize("recurrent_delay", [1, 2])
def test_delays_export_as_delay_nodes_and_come_back(recurrent_delay, tmp_path):
    net = _delayed_network(recurrent_delay)
    graph = network_to_nir(net)
    delays = {name for name, node in graph.nodes.items() if type(node).__name__ == "Delay"}
    # a cycle's delay-1 edge keeps its Linear alone: readers give a recurrent edge its step themselves
    assert delays == {"in_a", "a_b"} | ({"a_a"} if recurrent_delay > 1 else set())
    assert graph.nodes["in_a"].delay.shape == (15,)
    x = np.random.default_rng(1).random((100, 20)) < 0.3
    ours = _spikes(net, x, "ab")
    back = import_nir(export_nir(net, tmp_path / "delays.nir"))
    fields = import_nir(_fields_only(network_to_nir(net)))
    for other in (back, fields):
        by_name = {p.name: p for p in other.projections}
        for proj in net.projections:
            s, t = proj.synapses, by_name[proj.name].synapses
            assert np.array_equal(s.pre_indices(), t.pre_indices()) and np.array_equal(s.delays, t.delays)
        theirs = _spikes(other, x, "ab")
        for name in "ab":
            assert ours[name].sum() >= 50 and np.array_equal(ours[name], theirs[name]), name
    assert _kinds(network_to_nir(back)) == _kinds(graph)


def test_a_feed_forward_delayed_export_gives_the_reference_spikes():
    """The float64 Euler reference of NIR's equations (tests/nir_reference.py) on the export's fields."""
    net = _delayed_network(1)
    net = net.with_projections(net.projections[:2])
    graph = _fields_only(network_to_nir(net))
    x = np.random.default_rng(2).random((100, 20)) < 0.3
    reference = nir_reference.run(graph, x.astype(float), float(graph.metadata["dt"]), "zero")
    ours = _spikes(net, x, "ab")
    for name in "ab":
        assert reference[name].sum() >= 50 and np.array_equal(ours[name], reference[name]), name
