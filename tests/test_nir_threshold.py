"""sinabs's spike condition ``v >= threshold`` (neuro and NIR: ``v > threshold``) imported exactly: the
``sinabs`` convention or ``threshold_comparison: ">="`` in the metadata, on a graph whose membranes land exactly
on the threshold, against the float64 reference (tests/nir_reference.py) in both engines."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: the helpers sit beside this file
import nir_reference  # noqa: E402
from test_deploy_nir_nodes import DT, _inputs, _neuro_spikes  # noqa: E402

from deployment.nir_io import nir_to_network  # noqa: E402
from deployment.nirio.torch_graph import run_graph  # noqa: E402

nir = pytest.importorskip("nir")


def _on_threshold(seed=0, n_in=8, n_h=12, n_out=4, **meta):
    """Input -> Linear -> IF -> Linear -> IF with weights in quarters and thresholds 1 and 1.5: sums of weights
    are exact, so membranes often equal the threshold."""
    rng = np.random.default_rng(seed)

    def if_(n, th):
        return nir.IF(r=np.ones(n), v_threshold=np.full(n, th), v_reset=np.zeros(n), metadata=dict(meta))

    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])}),
             "w1": nir.Linear(weight=rng.integers(-1, 4, (n_h, n_in)) / 4), "if1": if_(n_h, 1.0),
             "w2": nir.Linear(weight=rng.integers(-1, 4, (n_out, n_h)) / 4), "if2": if_(n_out, 1.5),
             "output": nir.Output(output_type={"output": np.array([n_out])})}
    chain = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain, chain[1:])))


def _reference(graph, x, reset, at_threshold):
    runs = [nir_reference.run(graph, xi.astype(float), DT, reset, at_threshold) for xi in x]
    return {n: np.stack([r[n] for r in runs]) for n in ("if1", "if2")}


CASES = {"sinabs": ({}, "sinabs"), "metadata_subtract": ({"reset_method": "subtract", "threshold_comparison": ">="},
                                                         None),
         "metadata_zero": ({"reset_method": "zero", "threshold_comparison": "ge"}, None)}


@pytest.mark.parametrize("case", list(CASES))
def test_spikes_at_the_threshold_are_exact_under_sinabs_rule(case):
    meta, convention = CASES[case]
    graph = _on_threshold(**meta)
    x = _inputs((8,), 80, 4, p=0.4)
    net = nir_to_network(graph, convention=convention)
    reset = "zero" if net.population("if1").reset == "hard" else "subtract"
    expected = _reference(graph, x, reset, at_threshold=True)
    strict = _reference(graph, x, reset, at_threshold=False)
    for name in ("if1", "if2"):  # the rule matters here: the two readings differ
        assert expected[name].sum() > 30 and (expected[name] != strict[name]).sum() > 10, name
    events = _neuro_spikes(net, x, ["if1", "if2"])
    layers = run_graph(graph, net, torch.as_tensor(np.moveaxis(x, 0, 1), dtype=torch.float64))
    for name in ("if1", "if2"):
        assert np.array_equal(events[name], expected[name]), name
        assert np.array_equal(np.moveaxis(layers[name], 1, 0), expected[name]), name
    if reset == "subtract":  # the soft reset still subtracts exactly v_threshold - v_reset
        p = net.population("if1").params
        assert np.all(p["v_th"] < 1.0) and np.all(p["v_th"] - p["v_reset"] == 1.0)
    if convention == "sinabs":  # the same graph read with NIR's strict rule gives the strict reference
        strict_net = nir_to_network(graph, convention="subtract")
        assert np.array_equal(_neuro_spikes(strict_net, x, ["if1"])["if1"], strict["if1"])


def test_an_unknown_comparison_is_refused_naming_the_node():
    with pytest.raises(ValueError, match="'if1': unknown threshold_comparison='=>'"):
        nir_to_network(_on_threshold(threshold_comparison="=>"))
