"""Export of NIR's node set: a network imported from a graph writes the weight nodes it was composed from (Conv1d/2d,
SumPool2d/AvgPool2d, Flatten, Scale, Delay, Affine) and IF/Threshold neurons again; neuro reads the file back spike
for spike, from its metadata and from NIR's fields alone (against the float64 reference); snntorch reads it back.
norse's reading is in tests/test_nir_norse.py."""

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: the helpers sit beside this file
from test_deploy_nir_nodes import _agree, _inputs, _neuro_spikes, _reference, conv1d_graph, sinabs_cnn  # noqa: E402

from deployment.nir_io import export_nir, import_nir, network_to_nir, nir_to_network  # noqa: E402
from neuro.network import Network  # noqa: E402

nir = pytest.importorskip("nir")


def _kinds(graph):
    return sorted(type(v).__name__ for v in graph.nodes.values())


def _fields_only(graph):
    """``graph`` without neuro's metadata (``neuro_*`` keys, the checksum): what another library reads."""
    for node in graph.nodes.values():
        node.metadata = {k: v for k, v in (node.metadata or {}).items() if not k.startswith("neuro_")}
    graph.metadata = {k: v for k, v in graph.metadata.items() if not k.startswith("neuro_")}
    return graph


def _pool_conv_graph(rng):
    """IF -> AvgPool2d -> Conv2d -> LIF with r = 1: two mixing nodes, so the LIF's gain dt/tau becomes a Scale."""
    lif = dict(tau=np.full((3, 3, 3), 4e-4), r=np.ones((3, 3, 3)), v_leak=np.zeros((3, 3, 3)),
               v_threshold=np.full((3, 3, 3), 0.2), v_reset=np.zeros((3, 3, 3)))
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([2, 8, 8])}),
        "c0": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0.2, 0.5, (4, 2, 3, 3)), stride=1, padding=1,
                         dilation=1, groups=1, bias=rng.normal(0, 0.1, 4)),
        "if": nir.IF(r=np.ones((4, 8, 8)), v_threshold=np.ones((4, 8, 8)), v_reset=np.zeros((4, 8, 8))),
        "pool": nir.AvgPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0)),
        "c1": nir.Conv2d(input_shape=(4, 4), weight=rng.normal(0.3, 0.5, (3, 4, 2, 2)), stride=1, padding=0,
                         dilation=1, groups=1, bias=rng.normal(0, 0.1, 3)),
        "lif": nir.LIF(**lif), "output": nir.Output(output_type={"output": np.array([3, 3, 3])})},
        edges=[("input", "c0"), ("c0", "if"), ("if", "pool"), ("pool", "c1"), ("c1", "lif"), ("lif", "output")])


CASES = {  # graph, input shape, steps, convention, neuron nodes, expected node kinds of the export
    "cnn": (lambda: sinabs_cnn(seed=2), (2, 12, 12), 40, "subtract", ["1", "3", "6", "10", "12"], None),
    "conv1d": (lambda: conv1d_graph(np.random.default_rng(4)), (2, 9), 60, "nir", ["lif", "thr"], None),
    "pool_conv": (lambda: _pool_conv_graph(np.random.default_rng(5)), (2, 8, 8), 60, "nir", ["if", "lif"],
                  ["Scale"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_imported_graph_exports_its_own_nodes_and_comes_back_spike_for_spike(case, tmp_path):
    make, shape, steps, convention, names, extra = CASES[case]
    graph = make()
    net = nir_to_network(graph, convention=convention)
    exported = network_to_nir(net)
    expected_kinds = sorted(_kinds(graph) + (extra or []))
    assert _kinds(exported) == expected_kinds, "the export is not the imported graph's node set"
    x = _inputs(shape, steps, 3, p=0.3, seed=7)
    ours = _neuro_spikes(net, x, names)
    back = _neuro_spikes(import_nir(export_nir(net, tmp_path / "g.nir")), x, names)
    for name in names:
        assert ours[name].sum() >= 20 and np.array_equal(ours[name], back[name]), name
    again = network_to_nir(import_nir(tmp_path / "g.nir"))  # the chains survive a second round
    assert _kinds(again) == expected_kinds
    assert _kinds(network_to_nir(Network.load(net.save(tmp_path / "net.npz")))) == expected_kinds  # and a .npz
    reference = _reference(graph, x, "zero" if convention == "nir" else "subtract")
    _agree(_neuro_spikes(import_nir(_fields_only(exported)), x, names), reference, min_spikes=20)


def _round_trip(net, tmp_path, names=("1", "3", "6", "10", "12")):
    x = _inputs((2, 12, 12), 40, 2, p=0.3, seed=8)
    ours = _neuro_spikes(net, x, names)
    back = _neuro_spikes(import_nir(export_nir(net, tmp_path / "e.nir")), x, names)
    return all(np.array_equal(ours[n], back[n]) for n in names) and ours["10"].sum() > 20


def test_an_edited_projection_or_bias_is_written_as_an_affine_and_still_comes_back(tmp_path):
    """An edited chain becomes an Affine; its target then loses its shape, so the pool -> flatten -> affine chain
    out of it becomes an Affine too (a reader's SumPool2d needs a shaped input)."""
    net = nir_to_network(sinabs_cnn(seed=2), convention="subtract")
    pool_conv = net.projection("5")  # SumPool2d -> Conv2d into "6"
    w = pool_conv.synapses.weights.copy()
    w[0] += 0.25
    edited = net.with_projections([replace(pool_conv, synapses=replace(pool_conv.synapses, weights=w))
                                   if p is pool_conv else p for p in net.projections])
    graph = network_to_nir(edited)
    assert _kinds(graph).count("Conv2d") == 2 and "SumPool2d" not in _kinds(graph)
    assert type(graph.nodes["5"]).__name__ == "Affine" and type(graph.nodes["9"]).__name__ == "Affine"
    assert _round_trip(edited, tmp_path)
    pop = net.population("3")  # fed by the Conv2d "2", whose bias it holds: a changed bias changes the node
    params = {**pop.params, "bias": pop.params["bias"] + 0.01}
    edited = replace(net, populations=tuple(replace(p, params=params) if p is pop else p for p in net.populations))
    graph = network_to_nir(edited)
    assert type(graph.nodes["2"]).__name__ == "Affine"
    np.testing.assert_array_equal(graph.nodes["2"].bias, params["bias"])
    assert _round_trip(edited, tmp_path)


def test_snntorch_reads_back_the_export_of_an_imported_snntorch_conv_net():
    """snntorch (Conv2d -> Leaky -> AvgPool2d -> Flatten -> Linear -> Leaky, reset to zero in the step of the
    spike) -> NIR -> neuro -> NIR -> snntorch's import_from_nir: the original model's output spikes."""
    snn = pytest.importorskip("snntorch")
    pytest.importorskip("nirtorch")
    from snntorch.import_nir import import_from_nir
    from test_deploy_nir import _snntorch_graph, _snntorch_spikes

    torch.manual_seed(3)
    leaky = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), snn.Leaky(beta=0.9, threshold=0.5, **leaky),
                                torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(64, 5),
                                snn.Leaky(beta=0.8, threshold=0.3, **leaky))
    with torch.no_grad():
        model[0].weight.mul_(2.0)
        model[4].weight.mul_(3.0)
    steps = 80
    x = (torch.rand(steps, 1, 2, 8, 8, generator=torch.Generator().manual_seed(4)) < 0.3).float()
    expected = _snntorch_spikes(model, x)[:, 0]
    graph = network_to_nir(import_nir(_snntorch_graph(model, x[0]), convention="nir"), dt_nir=1e-4)
    assert {"Conv2d", "AvgPool2d", "Flatten", "Affine"} <= set(_kinds(graph))
    reread, state, got = import_from_nir(graph), None, []
    with torch.no_grad():
        for t in range(steps):
            out, state = reread(x[t], state)
            got.append(out.numpy().reshape(-1))
    assert expected.sum() > 20
    assert np.array_equal(np.array(got).astype(bool), expected)
