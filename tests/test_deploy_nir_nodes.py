"""NIR's node set: the paper's three tasks (LIF, Braille CubaLIF RNN with biases, sinabs CNN) rebuilt with the
``nir`` API, run by neuro's event simulator and torch layers, spike for spike against a float64 reference of
NIR's Euler equations (tests/nir_reference.py); reset conventions; refusals that name the node."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: the reference sits beside this file
import nir_reference  # noqa: E402

from deployment.nir_io import import_nir, nir_to_network  # noqa: E402
from deployment.nirio.torch_graph import run_graph  # noqa: E402
from neuro.simulator import Simulator  # noqa: E402

nir = pytest.importorskip("nir")
DT = 1e-4


def _cuba(n, alpha, beta, **meta):
    """A CubaLIF as snntorch writes a Synaptic (dt = 1e-4): gains 1, threshold 1, reset 0."""
    tau_syn, tau_mem = np.full(n, DT / (1 - alpha)), np.full(n, DT / (1 - beta))
    return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / DT, v_leak=np.zeros(n),
                       v_threshold=np.ones(n), v_reset=np.zeros(n), w_in=tau_syn / DT, metadata=meta)


def braille(bias: bool, seed=0, n_in=12, n_h=38, n_out=7, **meta):
    """The Braille RNN of the NIR paper (03_rnn): fc1 -> lif1 (recurrent w_rec) -> fc2 -> lif2, random weights."""
    rng = np.random.default_rng(seed)

    def weights(n_post, n_pre, scale):
        w = rng.normal(0, scale, (n_post, n_pre))
        return nir.Affine(weight=w, bias=rng.normal(0.1, 0.2, n_post)) if bias else nir.Linear(weight=w)

    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])}), "fc1": weights(n_h, n_in, 1.2),
             "lif1.lif": _cuba(n_h, 0.55, 0.9, **meta), "lif1.w_rec": weights(n_h, n_h, 0.4),
             "fc2": weights(n_out, n_h, 0.6), "lif2": _cuba(n_out, 0.5, 0.55, **meta),
             "output": nir.Output(output_type={"output": np.array([n_out])})}
    edges = [("input", "fc1"), ("fc1", "lif1.lif"), ("lif1.lif", "lif1.w_rec"), ("lif1.w_rec", "lif1.lif"),
             ("lif1.lif", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def _inputs(shape, steps, trials, p=0.3, seed=1):
    return np.random.default_rng(seed).random((trials, steps, *shape)) < p


def _neuro_spikes(net, x, names):
    """Event-simulator spikes ``{name: [trials, T, n]}`` on ``x[trials, T, *shape]`` (float64)."""
    flat = x.reshape(*x.shape[:2], -1)
    result = Simulator(net, dtype=np.float64).run(x.shape[1], [{"input": xi} for xi in flat])
    return {n: np.stack([result.raster(n, b) for b in range(len(x))]) for n in names}


def _reference(graph, x, reset):
    runs = [nir_reference.run(graph, xi.astype(float), DT, reset) for xi in x]
    return {n: np.stack([r[n] for r in runs]) for n in runs[0]}


def _agree(got, expected, min_spikes=50):
    for name, ref in expected.items():
        assert ref.sum() >= min_spikes, f"{name}: {ref.sum()} reference spikes, the test would prove little"
        diff = int((got[name] != ref.reshape(got[name].shape)).sum())
        assert diff == 0, f"{name}: {diff} of {ref.size} entries differ ({ref.sum()} reference spikes)"


@pytest.mark.parametrize("bias, convention, reset", [(True, "nir", "zero"), (False, "subtract", "subtract"),
                                                     (True, "subtract", "subtract")])
def test_braille_graphs_are_spike_identical_to_the_euler_reference(bias, convention, reset):
    graph = braille(bias)
    x = _inputs((12,), 256, 8)
    net = nir_to_network(graph, convention=convention)
    assert [p.reset for p in net.populations[1:]] == ["hard" if reset == "zero" else "soft"] * 2
    if bias:
        assert np.any(net.population("lif1.lif").params["bias_syn"] != 0)
    _agree(_neuro_spikes(net, x, ["lif1.lif", "lif2"]), _reference(graph, x, reset))


def test_the_reset_is_read_from_metadata_and_a_wrong_one_changes_the_spikes():
    x = _inputs((12,), 256, 4)
    graph = braille(False, reset_method="subtract")
    net = nir_to_network(graph)  # no convention given: the metadata's
    assert net.population("lif2").reset == "soft"
    expected = _reference(graph, x, "subtract")
    _agree(_neuro_spikes(net, x, ["lif1.lif", "lif2"]), expected)
    wrong = _neuro_spikes(nir_to_network(graph, convention="nir"), x, ["lif1.lif"])["lif1.lif"]
    assert (wrong != expected["lif1.lif"]).sum() > 20
    with pytest.raises(ValueError, match="'lif1.lif': unknown reset reset_method='sideways'"):
        nir_to_network(braille(False, reset_method="sideways"))


def test_braille_as_a_nested_subgraph_imports_the_same_network():
    flat = braille(True)
    sub = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([38])}),
                              "lif": flat.nodes["lif1.lif"], "w_rec": flat.nodes["lif1.w_rec"],
                              "output": nir.Output(output_type={"output": np.array([38])})},
                       edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    nodes = {k: v for k, v in flat.nodes.items() if not k.startswith("lif1.")} | {"lif1": sub}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
    x = _inputs((12,), 128, 2)
    a = _neuro_spikes(nir_to_network(flat), x, ["lif1.lif", "lif2"])
    b = _neuro_spikes(nir_to_network(nir.NIRGraph(nodes=nodes, edges=edges)), x, ["lif1.lif", "lif2"])
    assert all(np.array_equal(a[n], b[n]) for n in a) and a["lif2"].sum() > 10


def test_the_lif_task_spikes_at_the_steps_every_platform_reports():
    """01_lif (lif_norse.nir): one LIF (tau 2.5 ms, threshold 0.1) driven by 4 input spikes."""
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([1])}),
                                "0": nir.Affine(weight=np.ones((1, 1)), bias=np.zeros(1)),
                                "1": nir.LIF(tau=np.array([0.0025]), r=np.ones(1), v_leak=np.zeros(1),
                                             v_threshold=np.array([0.1]), v_reset=np.zeros(1)),
                                "output": nir.Output(output_type={"output": np.array([1])})},
                         edges=[("input", "0"), ("0", "1"), ("1", "output")])
    x = np.zeros((1, 1000, 1), bool)
    x[0, [10, 20, 30, 40, 450, 500, 700, 750], 0] = True
    x[0, 440:460] = x[0, 490:510] = x[0, 700:710] = x[0, 750:760] = True
    got = _neuro_spikes(import_nir(graph), x, ["1"])["1"][0, :, 0]
    ref = _reference(graph, x, "zero")["1"][0, :, 0]
    assert np.array_equal(got, ref) and got.sum() > 2


def sinabs_cnn(seed=0, size=12):
    """The NIR paper's CNN (02_cnn, written by sinabs), smaller: Conv2d/IF/SumPool2d/Flatten/Affine/IF."""
    rng = np.random.default_rng(seed)

    def conv(c_out, c_in, k, stride, in_hw):
        return nir.Conv2d(input_shape=in_hw, weight=rng.normal(0.1, 0.5, (c_out, c_in, k, k)),
                          stride=(stride, stride), padding=(1, 1), dilation=(1, 1), groups=1,
                          bias=rng.normal(0, 0.05, c_out))

    def if_(shape):
        return nir.IF(r=np.ones(shape), v_threshold=np.ones(shape), v_reset=np.zeros(shape))

    s1 = (size + 2 - 5) // 2 + 1
    nodes = {"input": nir.Input(input_type={"input": np.array([2, size, size])}),
             "0": conv(4, 2, 5, 2, (size, size)), "1": if_((4, s1, s1)), "2": conv(4, 4, 3, 1, (s1, s1)),
             "3": if_((4, s1, s1)), "4": nir.SumPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0)),
             "5": conv(4, 4, 3, 1, (s1 // 2, s1 // 2)), "6": if_((4, s1 // 2, s1 // 2)),
             "7": nir.SumPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0)),
             "8": nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([4, s1 // 4, s1 // 4])}),
             "9": nir.Affine(weight=rng.normal(0.05, 0.3, (16, 4 * (s1 // 4) ** 2)), bias=rng.normal(0, 0.05, 16)),
             "10": if_((16,)), "11": nir.Affine(weight=rng.normal(0.1, 0.5, (5, 16)), bias=np.zeros(5)),
             "12": if_((5,)), "output": nir.Output(output_type={"output": np.array([5])})}
    chain = ["input"] + [str(i) for i in range(13)] + ["output"]
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain, chain[1:])))


def test_cnn_runs_in_the_event_simulator_and_as_torch_layers_with_the_reference_spikes():
    graph = sinabs_cnn()
    x = _inputs((2, 12, 12), 40, 4, p=0.25)
    net = nir_to_network(graph, convention="subtract")
    names = ["1", "3", "6", "10", "12"]
    expected = _reference(graph, x, "subtract")
    _agree(_neuro_spikes(net, x, names), expected, min_spikes=20)
    torch_spikes = run_graph(graph, net, torch.as_tensor(np.moveaxis(x, 0, 1), dtype=torch.float64))
    _agree({n: np.moveaxis(v, 1, 0) for n, v in torch_spikes.items()}, expected, min_spikes=20)
    pool_conv = [p for p in net.projections if p.pre == "3"]
    assert len(pool_conv) == 1 and pool_conv[0].post == "6"  # SumPool2d and Conv2d composed into one projection


def conv1d_graph(rng):
    """Conv1d -> LIF (r = 1: an input gain dt/tau) -> Scale -> Delay (2 steps) -> Flatten -> Linear -> Threshold."""
    nodes = {"input": nir.Input(input_type={"input": np.array([2, 9])}),
             "conv": nir.Conv1d(input_shape=9, weight=rng.normal(0.3, 0.5, (3, 2, 3)), stride=1, padding=1,
                                dilation=1, groups=1, bias=np.full(3, 0.05)),
             "lif": nir.LIF(tau=np.full((3, 9), 5e-4), r=np.ones((3, 9)), v_leak=np.zeros((3, 9)),
                            v_threshold=np.full((3, 9), 0.1), v_reset=np.zeros((3, 9))),
             "scale": nir.Scale(scale=np.linspace(0.5, 1.5, 27).reshape(3, 9)),
             "delay": nir.Delay(delay=np.full((3, 9), 2 * DT)),
             "flat": nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([3, 9])}),
             "lin": nir.Linear(weight=rng.normal(0.2, 0.4, (6, 27))), "thr": nir.Threshold(threshold=np.full(6, 0.3)),
             "output": nir.Output(output_type={"output": np.array([6])})}
    chain = ["input", "conv", "lif", "scale", "delay", "flat", "lin", "thr", "output"]
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain, chain[1:])))


def test_conv1d_avgpool_scale_delay_threshold_match_the_reference():
    graph = conv1d_graph(np.random.default_rng(4))
    x = _inputs((2, 9), 60, 3, p=0.4)
    net = nir_to_network(graph)
    assert net.projection("lin").synapses.delays.min() == 2
    _agree(_neuro_spikes(net, x, ["lif", "thr"]), _reference(graph, x, "zero"), min_spikes=20)


def test_avgpool2d_is_a_quarter_per_tap():
    nodes = {"input": nir.Input(input_type={"input": np.array([1, 4, 4])}),
             "pool": nir.AvgPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0)),
             "if": nir.IF(r=np.ones((1, 2, 2)), v_threshold=np.full((1, 2, 2), 0.6), v_reset=np.zeros((1, 2, 2)))}
    net = nir_to_network(nir.NIRGraph(nodes=nodes, edges=[("input", "pool"), ("pool", "if")]))
    dense = net.projection("pool").synapses.to_dense()
    assert dense.shape == (4, 16) and np.all(np.isin(dense, (0.0, 0.25))) and (dense > 0).sum() == 16


def _graph(middle, edges=None):
    nodes = {"input": nir.Input(input_type={"input": np.array([3])}), **middle,
             "output": nir.Output(output_type={"output": np.array([2])})}
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=edges or list(zip(names, names[1:])), type_check=False)


@pytest.mark.parametrize("middle, match", [
    ({"li": nir.LI(tau=np.ones(3), r=np.ones(3), v_leak=np.zeros(3)), "lin": nir.Linear(weight=np.ones((2, 3))),
      "if": nir.IF(r=np.ones(2), v_threshold=np.ones(2), v_reset=np.zeros(2))},
     "'li' \\(LI\\) feeds 'lin': its output is its membrane potential"),
    ({"lin": nir.Linear(weight=np.ones((2, 3)))}, "'lin' \\(Linear\\) feeds the output 'output' directly"),
    ({"lin": nir.Linear(weight=np.ones((2, 4))), "if": nir.IF(r=np.ones(2), v_threshold=np.ones(2),
                                                                 v_reset=np.zeros(2))},
     "'lin' \\(Linear\\): weight \\(2, 4\\) does not take an input of 3"),
    ({"conv": nir.Conv1d(input_shape=3, weight=np.ones((2, 1, 5)), stride=1, padding=0, dilation=1, groups=1,
                         bias=np.zeros(2)), "if": nir.IF(r=np.ones(2), v_threshold=np.ones(2), v_reset=np.zeros(2))},
     "'conv' \\(Conv1d\\): kernel .* does not fit an input of shape \\(3,\\)"),
    ({"delay": nir.Delay(delay=np.full(3, 1.5 * DT)), "if": nir.IF(r=np.ones(3), v_threshold=np.ones(3),
                                                                    v_reset=np.zeros(3))},
     "'delay' \\(Delay\\): delays must be whole multiples of dt"),
])
def test_unsupported_or_malformed_graphs_name_the_node(middle, match):
    with pytest.raises(ValueError, match=match):
        nir_to_network(_graph(middle))
