"""NIR's non-spiking nodes (LI, CubaLI, I) as neuro's readout neuron (reset 'none', unreachable threshold): the
membrane against the float64 reference of NIR's Euler equations (tests/nir_reference.py) in both engines, export
of a trained model's readout as LI, and the refusal of a non-spiking node that feeds another node."""

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: the helpers sit beside this file
import nir_reference  # noqa: E402
from test_deploy_nir_nodes import DT, _inputs  # noqa: E402

from deployment.nir_io import import_nir, network_to_nir, nir_to_network  # noqa: E402
from deployment.nirio.torch_graph import run_graph  # noqa: E402
from neuro.simulator import Simulator  # noqa: E402
from neuro.training import config  # noqa: E402
from neuro.training.convert import to_network  # noqa: E402

nir = pytest.importorskip("nir")


def _readout(kind, n, rng):
    if kind == "LI":
        return nir.LI(tau=rng.uniform(3e-4, 3e-3, n), r=rng.uniform(0.5, 2.0, n), v_leak=rng.normal(0, 0.2, n))
    if kind == "CubaLI":
        return nir.CubaLI(tau_syn=rng.uniform(2e-4, 1e-3, n), tau_mem=rng.uniform(3e-4, 3e-3, n),
                          r=rng.uniform(0.5, 2.0, n), v_leak=rng.normal(0, 0.2, n), w_in=rng.uniform(0.5, 2.0, n))
    return nir.I(r=rng.uniform(0.5, 2.0, n))


def _graph(kind, seed=0, n_in=10, n_h=20, n_out=5):
    """Affine (bias) -> LIF (v_leak != 0) -> Affine (bias) -> ``kind``, the readout of a classifier."""
    rng = np.random.default_rng(seed)
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])}),
             "fc1": nir.Affine(weight=rng.normal(0.1, 0.4, (n_h, n_in)), bias=rng.normal(0.05, 0.05, n_h)),
             "lif": nir.LIF(tau=np.full(n_h, 1e-3), r=np.ones(n_h), v_leak=rng.normal(0.05, 0.1, n_h),
                            v_threshold=np.full(n_h, 0.2), v_reset=np.zeros(n_h)),
             "fc2": nir.Affine(weight=rng.normal(0, 0.5, (n_out, n_h)), bias=rng.normal(0, 0.1, n_out)),
             "out": _readout(kind, n_out, rng), "output": nir.Output(output_type={"output": np.array([n_out])})}
    chain = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain, chain[1:])))


@pytest.mark.parametrize("kind", ["LI", "CubaLI", "I"])
def test_non_spiking_nodes_give_the_reference_membrane_in_both_engines(kind):
    graph = _graph(kind)
    x = _inputs((10,), 120, 3, p=0.3)
    net = nir_to_network(graph)
    pop = net.population("out")
    assert pop.reset == "none" and pop.metadata["readout"] and net.metadata["outputs"] == ["out"]
    assert (pop.params["tau_syn"] > 0).any() == (kind == "CubaLI") and np.isinf(pop.params["tau_mem"]).all() == (
        kind == "I")
    refs = [nir_reference.run(graph, xi.astype(float), DT) for xi in x]
    expected = np.stack([r["out"] for r in refs])
    assert sum(r["lif"].sum() for r in refs) > 100 and np.abs(expected).max() > 0.5
    result = Simulator(net, dtype=np.float64).run(x.shape[1], [{"input": xi} for xi in x], record_state={"out": None})
    assert not result.raster("out").any()
    lif = np.stack([result.raster("lif", b) for b in range(len(x))])
    assert np.array_equal(lif, np.stack([r["lif"] for r in refs]))  # v_leak != 0: both start at v = 0
    events = result.trace("out", "v")  # [trials, T, n]
    layers = run_graph(graph, net, torch.as_tensor(np.moveaxis(x, 0, 1), dtype=torch.float64))["out"]
    for got in (events, np.moveaxis(layers, 0, 1)):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("tau_syn, kind", [(0.0, "LI"), (2e-3, "CubaLI")])
def test_a_trained_readout_exports_as_a_non_spiking_node_and_comes_back_exactly(tau_syn, kind, tmp_path):
    cfg = config.resolve({"model": {"layers": [{"type": "dense", "size": 12}], "tau_syn": tau_syn,
                                    "readout": "membrane"}})
    model = config.build_model(cfg["model"], (8,), 3, seed=0)
    net = to_network(model, (8,))
    graph = network_to_nir(net)
    readout = net.populations[-1].name
    node = graph.nodes[readout]
    assert type(node).__name__ == kind and "reset" not in node.metadata["neuro_unsupported"]
    x = np.random.default_rng(0).random((60, 8)) < 0.4
    ours = Simulator(net, dtype=np.float64).run(60, {"input": x}, record_state={readout: None})
    exact = import_nir(graph)  # neuro's metadata restore the parameters
    fresh = copy.deepcopy(graph)  # what another library reads: NIR's fields and the reset, no neuro_* keys
    fresh.metadata = {"dt": net.dt}
    for node in fresh.nodes.values():
        node.metadata = {k: v for k, v in (node.metadata or {}).items() if not k.startswith("neuro_")}
    for back in (exact, nir_to_network(fresh)):
        theirs = Simulator(back, dtype=np.float64).run(60, {"input": x}, record_state={readout: None})
        assert back.population(readout).reset == "none"
        np.testing.assert_allclose(theirs.trace(readout), ours.trace(readout), rtol=1e-9, atol=1e-12)
    assert np.abs(ours.trace(readout)).max() > 0.1
