"""neuro's NIR import against norse's ``from_nir`` (an independent execution by another library), where the two
read NIR the same way: every neuron layer spike-identical on random inputs.

norse 1.1.0 installs without its dependencies (``pip install --no-deps norse==1.1.0``; with them pip pulls a CUDA
torch), so this file is skipped where it is absent. What norse reads differently, and why, is in docs/nir.md
("norse"): these graphs keep to what both read alike (``r = 1``, ``v_reset = 0``, ``v_leak = 0`` in a CubaLIF,
LIF and IF under the ``nir`` convention: norse applies ``reset_method`` to CubaLIF only), a recurrent Affine's
bias is handed to norse's first step, which it omits, and neuro's neurons start at norse's ``v = v_leak`` (NIR's
other readers and neuro's import start at 0).
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: the helpers sit beside this file
from test_deploy_nir_nodes import DT, _inputs, braille, sinabs_cnn  # noqa: E402

from deployment.nir_io import network_to_nir, nir_to_network  # noqa: E402
from neuro.simulator import Simulator  # noqa: E402

nir = pytest.importorskip("nir")
norse_torch = pytest.importorskip(
    "norse.torch", reason="norse is not installed; `pip install --no-deps norse==1.1.0` (docs/nir.md)")
from nirtorch.graph_executor import GraphExecutorState  # noqa: E402
from norse.torch.functional.reset import reset_subtract, reset_value  # noqa: E402

NORSE_RESET = {"nir": reset_value, "subtract": reset_subtract}
NEURON_CELLS = ("LIFBoxCell", "IAFCell", "CubaLIF")


def _norse_spikes(graph, x, convention):
    """``{neuron node: spikes [trials, T, n]}`` of norse's ``from_nir`` module run step by step on ``x``.

    A recurrent Affine (an edge back to an earlier node) starts from its output on no spikes, its bias: norse's
    executor gives a back edge nothing at the first step, NIR's Affine gives ``b`` at every step."""
    module = norse_torch.from_nir(graph, dt=DT, reset_method=NORSE_RESET[convention], ignore_warnings=True).double()
    recorded = {}
    for name, cell in module.named_children():
        if type(cell).__name__ in NEURON_CELLS:
            cell.register_forward_hook(lambda m, i, out, name=name: recorded.setdefault(name, []).append(
                out[0].detach().numpy().ravel() > 0))
    warm = {a.replace(".", "_"): torch.as_tensor(graph.nodes[a].bias, dtype=torch.float64)
            for a, b in graph.edges if isinstance(graph.nodes[a], nir.Affine) and _is_back_edge(graph, a, b)}
    for trial in x:
        state = GraphExecutorState(cache=dict(warm))
        for step in trial:
            _, state = module(torch.as_tensor(step, dtype=torch.float64), state)
    return {n.replace("_", "."): np.array(v).reshape(len(x), x.shape[1], -1) for n, v in recorded.items()}


def _is_back_edge(graph, a, b):
    """``b`` reaches ``a`` through the graph: the edge ``a -> b`` closes a cycle."""
    seen, todo = set(), [b]
    while todo:
        n = todo.pop()
        if n == a:
            return True
        seen.add(n)
        todo += [d for c, d in graph.edges if c == n and d not in seen]
    return False


def _random_lif(seed=0, n_in=10, n_h=24, n_out=6):
    """Affine (bias) -> LIF with a recurrent Linear -> Linear -> LIF; random tau, v_leak and thresholds."""
    rng = np.random.default_rng(seed)

    def lif(n):
        return nir.LIF(tau=rng.uniform(3e-4, 5e-3, n), r=np.ones(n), v_leak=rng.normal(0.0, 0.2, n),
                       v_threshold=rng.uniform(0.05, 0.3, n), v_reset=np.zeros(n))

    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])}),
             "fc1": nir.Affine(weight=rng.normal(0.1, 0.4, (n_h, n_in)), bias=rng.normal(0.1, 0.1, n_h)),
             "lif1": lif(n_h), "rec": nir.Linear(weight=rng.normal(0, 0.2, (n_h, n_h))),
             "fc2": nir.Linear(weight=rng.normal(0.1, 0.3, (n_out, n_h))), "lif2": lif(n_out),
             "output": nir.Output(output_type={"output": np.array([n_out])})}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "rec"), ("rec", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
             ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


CASES = {
    "braille_bias_nir": (lambda: braille(True, seed=3), "nir", (12,), 256, 0.3),
    "braille_subtract": (lambda: braille(False, seed=4), "subtract", (12,), 256, 0.3),
    "braille_bias_subtract": (lambda: braille(True, seed=5), "subtract", (12,), 256, 0.3),
    "lif_recurrent_nir": (lambda: _random_lif(6), "nir", (10,), 200, 0.3),
    "cnn_if_nir": (lambda: sinabs_cnn(seed=8), "nir", (2, 12, 12), 40, 0.25),
}


@pytest.mark.parametrize("case", list(CASES))
def test_neuro_and_norse_from_nir_give_the_same_spikes_in_every_layer(case):
    make, convention, shape, steps, p = CASES[case]
    graph = make()
    x = _inputs(shape, steps, 4, p=p, seed=11)
    theirs = _norse_spikes(graph, x, convention)
    net = nir_to_network(graph, convention=convention)
    start = {p.name: {"v": p.params["v_rest"]} for p in net.populations if p.initial}  # norse starts at v_leak
    result = Simulator(net, dtype=np.float64).run(steps, [{"input": xi.reshape(steps, -1)} for xi in x], initial=start)
    ours = {n: np.stack([result.raster(n, b) for b in range(len(x))]) for n in theirs}
    assert set(theirs) == {n for n, v in graph.nodes.items() if type(v).__name__ in ("LIF", "CubaLIF", "IF")}
    for name, spikes in theirs.items():
        assert spikes.sum() >= 20, f"{name}: {spikes.sum()} norse spikes, the test would prove little"
        diff = int((ours[name] != spikes).sum())
        assert diff == 0, f"{case} {name}: {diff} of {spikes.size} entries differ ({spikes.sum()} norse spikes)"



def test_norse_reads_a_hard_reset_conv_export_with_synaptic_currents_spike_for_spike():
    """neuro -> NIR -> norse: Conv2d -> CubaLIF -> Flatten -> Linear -> CubaLIF (x2). A LIF export norse does not
    read (it ignores the LIF's ``r = tau/dt``; docs/nir.md)."""
    from neuro.training import config
    from neuro.training.convert import to_network

    shape, steps = (2, 9, 9), 150
    cfg = config.resolve({"model": {"layers": [{"type": "conv", "channels": 3, "kernel": 3, "stride": 2,
                                                "padding": 1}, {"type": "dense", "size": 16}],
                                    "reset": "hard", "readout": "count", "tau_syn": 2e-3}})
    model = config.build_model(cfg["model"], shape, 4, seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # enough drive for many spikes
    net = to_network(model, shape)
    graph = network_to_nir(net, dt_nir=DT)
    assert {type(v).__name__ for v in graph.nodes.values()} >= {"Conv2d", "CubaLIF", "Flatten"}
    x = np.random.default_rng(0).random((1, steps, *shape)) < 0.3
    theirs = _norse_spikes(graph, x, "nir")
    result = Simulator(net, dtype=np.float64).run(steps, {"input": x[0].reshape(steps, -1)})
    assert set(theirs) == {p.name for p in net.populations[1:]}
    for name, spikes in theirs.items():
        assert spikes.sum() >= 20 and np.array_equal(spikes[0], result.raster(name)), name


def test_norse_reads_the_export_of_an_imported_cnn_with_if_sumpool_and_conv_nodes():
    """NIR (Conv2d, IF, SumPool2d, Flatten, Affine) -> neuro -> NIR (the same node set) -> norse: every IF layer
    spike-identical to neuro's run of the imported network."""
    net = nir_to_network(sinabs_cnn(seed=9), convention="nir")
    graph = network_to_nir(net, dt_nir=DT)
    assert {"Conv2d", "IF", "SumPool2d", "Flatten", "Affine"} == {type(v).__name__ for v in graph.nodes.values()} - {
        "Input", "Output"}
    x = _inputs((2, 12, 12), 40, 3, p=0.25, seed=12)
    theirs = _norse_spikes(graph, x, "nir")
    result = Simulator(net, dtype=np.float64).run(40, [{"input": xi.reshape(40, -1)} for xi in x])
    assert set(theirs) == {p.name for p in net.populations[1:]}
    for name, spikes in theirs.items():
        ours = np.stack([result.raster(name, b) for b in range(len(x))])
        assert spikes.sum() >= 20 and np.array_equal(ours, spikes), name
