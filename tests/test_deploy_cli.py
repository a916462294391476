"""``neuro export`` (Lava graph file, NIR) and bad input to ``neuro export`` / ``neuro verify`` (no Lava run)."""

import numpy as np

from deployment.examples import hetero_ei_network
from deployment.lava_export import load_graph
from deployment.nir_io import import_nir
from neuro.cli import main
from neuro.network import Network, Population, Projection
from synapses.csr import from_dense


def test_export_lava_writes_the_graph_and_says_what_is_custom(tmp_path, capsys):
    path = hetero_ei_network(30, seed=1).save(tmp_path / "net.npz")
    assert main(["export", "--to", "lava", str(path)]) == 0
    out = capsys.readouterr().out
    assert "tau_mem" in out and "NOT a built-in Loihi neuron" in out
    graph = load_graph(tmp_path / "net.lava.npz")
    assert graph.mode == "fixed" and {g.population for g in graph.groups} == {"E", "I"}
    assert {g.process for g in graph.groups} == {"LIF", "SoftResetLIF"}


def test_export_nir_round_trips(tmp_path):
    net = hetero_ei_network(20, seed=2)
    path = net.save(tmp_path / "net.npz")
    assert main(["export", "--to", "nir", str(path), "-o", str(tmp_path / "x.nir")]) == 0
    back = import_nir(tmp_path / "x.nir")
    assert sorted(p.name for p in back.populations) == sorted(p.name for p in net.populations)
    for p in net.projections:
        np.testing.assert_array_equal(back.projection(p.name).synapses.to_dense(), p.synapses.to_dense())


def test_unrepresentable_network_is_a_clear_cli_error(tmp_path, capsys):
    w = np.array([[1.0] + [0.002] * 399] * 3)  # the small weights carry 44% of the input and round to 0
    net = Network((Population("in", 400, "spike_source"), Population("E", 3)),
                  (Projection("p", "in", "E", from_dense(w)),))
    path = net.save(tmp_path / "bad.npz")
    assert main(["export", "--to", "lava", str(path)]) == 1
    assert main(["verify", str(path), "--steps", "5"]) == 1
    err = capsys.readouterr().err
    assert "projection 'p'" in err and "round to 0" in err and "Traceback" not in err
