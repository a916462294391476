"""NIR export refuses a bad ``--nir-dt``; import refuses ``neuro_*`` metadata that disagree with the NIR data."""

import numpy as np
import pytest

from deployment.examples import hetero_ei_network
from deployment.nir_io import export_nir, import_nir, network_to_nir, nir_to_network
from neuro.cli import main

nir = pytest.importorskip("nir")


@pytest.mark.parametrize("dt", ["-1", "nan", "0", "inf"])
def test_export_refuses_a_bad_nir_dt_and_writes_nothing(tmp_path, capsys, dt):
    path = hetero_ei_network(10, seed=1).save(tmp_path / "net.npz")
    assert main(["export", "--to", "nir", str(path), "--nir-dt", dt]) == 1
    err = capsys.readouterr().err
    assert "--nir-dt" in err and "> 0" in err and "Traceback" not in err
    assert not (tmp_path / "net.nir").exists()


def _node(graph, kind):
    return next(n for n in graph.nodes.values() if isinstance(n, kind) and n.metadata)


def _scale_tau(graph):
    node = _node(graph, (nir.LIF, nir.CubaLIF))
    if isinstance(node, nir.CubaLIF):
        node.tau_mem = node.tau_mem * 2
    else:
        node.tau = node.tau * 2


def _nan_meta(graph):
    _node(graph, (nir.LIF, nir.CubaLIF)).metadata["neuro_tau_mem"] = np.full(3, np.nan)


def _edit_weight(graph):
    node = _node(graph, nir.Linear)
    node.weight = node.weight + 0.5


def _drop_meta_key(graph):
    del _node(graph, nir.Linear).metadata["neuro_delays"]


def _bad_graph_dt(graph):
    graph.metadata["neuro_dt"] = -1.0


@pytest.mark.parametrize("edit, message", [
    (_scale_tau, "NIR tau disagrees"), (_nan_meta, "tau_mem"), (_edit_weight, "weight matrix disagrees"),
    (_drop_meta_key, "missing"), (_bad_graph_dt, "neuro_dt"),
])
def test_import_refuses_metadata_that_disagree_with_the_file(edit, message):
    net = hetero_ei_network(10, seed=1)
    assert len(nir_to_network(network_to_nir(net)).populations) == len(net.populations)
    graph = network_to_nir(net)
    edit(graph)
    with pytest.raises(ValueError, match="sha256 checksum"):
        nir_to_network(graph)
    del graph.metadata["neuro_sha256"]  # as in a file without the checksum: the cross-checks still refuse
    with pytest.raises(ValueError, match=message):
        nir_to_network(graph)


def test_a_file_with_edited_parameters_is_refused_after_a_round_trip(tmp_path):
    graph = network_to_nir(hetero_ei_network(10, seed=1), 1e-4)
    _scale_tau(graph)
    nir.write(str(tmp_path / "edited.nir"), graph)
    with pytest.raises(ValueError, match="checksum"):
        import_nir(tmp_path / "edited.nir")
    assert import_nir(export_nir(hetero_ei_network(10, seed=1), tmp_path / "ok.nir", 1e-4)).dt == 1e-3
