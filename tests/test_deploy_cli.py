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


def test_trained_chain_exports_with_its_shifts_and_unexpressible_timing_writes_nothing(tmp_path, capsys):
    """Zero-delay layers export with their shifts in the header; a skip that needs a Lava delay of 65 is refused
    before anything is written, naming the projection and the number."""
    pops = (Population("in", 3, "spike_source"), Population("A", 2), Population("B", 2))
    chain = (Projection("in->A", "in", "A", from_dense(np.full((2, 3), 0.5), delays=0)),
             Projection("A->B", "A", "B", from_dense(np.full((2, 2), 0.5), delays=0)))
    good = Network(pops, chain).save(tmp_path / "good.npz")
    assert main(["export", "--to", "lava", str(good)]) == 0
    assert load_graph(tmp_path / "good.lava.npz").shifts == {"in": 0, "A": 1, "B": 2}
    skip = Projection("in->B", "in", "B", from_dense(np.full((2, 3), 0.5), delays=63))
    bad = Network(pops, chain + (skip,)).save(tmp_path / "bad.npz")
    capsys.readouterr()
    assert main(["export", "--to", "lava", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "projection 'in->B'" in err and "Lava delay of 65" in err and "Traceback" not in err
    assert not (tmp_path / "bad.lava.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz", "good.lava.npz", "good.npz"]
