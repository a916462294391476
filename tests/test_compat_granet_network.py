"""GraNet on the event-driven Network: the sparse CSR stores exactly the masks' synapses, spikes match torch."""

import numpy as np
import pytest
import torch

from neuro.compat import granet as G
from neuro.compat import granet_network as GN
from neuro.compat.common import train_classifier
from neuro.training import Dense, Readout, Recurrent, SpikingNet


@pytest.fixture(scope="module")
def data():
    return GN.load_event_split("rate_digits", time_steps=4)


def _synapse_sets(net, model):
    """Per projection: the stored (post, pre) pairs and the mask's non-zero (post, pre) pairs."""
    out = []
    for proj, layer in zip(net.projections, model.net.layers):
        csr = proj.synapses
        stored = set(zip(csr.indices.tolist(), csr.pre_indices().tolist()))
        kept = set(map(tuple, torch.nonzero(layer.synapse.weight_mask).tolist()))
        out.append((stored, kept, csr.nnz))
    return out


def test_sparse_network_tracks_the_masks_through_regeneration(data):
    model = GN.spiking_net(64, [24], 10, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    schedule = G.GraNetSchedule(total_steps=44, final_density=0.1, prune_every=4, prune_end=24)
    granet = G.GraNet(model, opt, schedule, torch.Generator().manual_seed(0))
    checked = []

    def after_step(step):
        granet.step(step + 1)
        if granet.history and granet.history[-1]["step"] == step + 1:
            net = GN.sparse_network(model.net, (64,))
            for stored, kept, nnz in _synapse_sets(net, model):
                assert stored == kept and nnz == len(kept)  # no masked synapse stored, none kept lost
            assert net.n_synapses == sum(granet.masks.nnz().values())
            checked.append(granet.history[-1]["regrown"])

    train_classifier(model, data.x_train[:704], data.y_train[:704], opt, epochs=4, batch_size=64, seed=0,
                     after_step=after_step)
    assert len(checked) == 11 and sum(checked) > 0  # every event checked, regeneration moved synapses
    assert granet.masks.density() == pytest.approx(0.1, abs=1e-3)
    # a kept synapse whose weight is exactly 0 is still stored (the mask decides, not the value)
    with torch.no_grad():
        layer = model.net.layers[0].synapse
        post, pre = torch.nonzero(layer.weight_mask)[0].tolist()
        layer.weight[post, pre] = 0.0
    net = GN.sparse_network(model.net, (64,))
    assert net.n_synapses == sum(granet.masks.nnz().values())

    metrics = GN.event_metrics(model.double(), data.x_test[:16].double(), data.y_test[:16], repeats=1,
                               dtype=np.float64)
    assert metrics["spike_agreement"] == 1.0 and metrics["torch_hidden_spikes"] > 0
    assert metrics["prediction_agreement"] == 1.0 and metrics["max_abs_diff_readout_v"] < 1e-9
    assert metrics["n_synapses"] == net.n_synapses and metrics["sops"] > 0


def test_unmasked_layers_stay_dense_and_unsupported_layers_are_named():
    model = GN.spiking_net(10, [6], 3, seed=1)
    net = GN.sparse_network(model.net, (10,))
    assert net.n_synapses == 10 * 6 + 6 * 3
    with pytest.raises(ValueError, match="Recurrent"):
        GN.sparse_network(SpikingNet([Recurrent(10, 6), Readout(6, 3)]), (10,))
    with pytest.raises(ValueError, match="dataset"):
        GN.load_event_split("mnist", 4)
    assert isinstance(model.net.layers[0], Dense)


def test_config_runs_the_network_comparison(tmp_path):
    cfg = {"seeds": [0], "methods": [], "snn": {"enabled": False}, "prune_every": 5,
           "network": {"enabled": True, "time_steps": 4, "hidden": [8], "epochs": 1, "sparsities": [0.9],
                       "methods": ["dense", "granet"], "timing_repeats": 1}}
    report = G.run_from_config(cfg, tmp_path)
    rows = report["network"]["runs"]
    assert [r["method"] for r in rows] == ["dense", "granet"]
    assert rows[1]["n_synapses"] == sum(rows[1]["nnz"].values()) < rows[0]["n_synapses"]
    assert "network/granet@0.9" in report["summary"]
    assert (tmp_path / "granet_network.png").exists() and not (tmp_path / "granet_accuracy.png").exists()
    with pytest.raises(ValueError, match="timing"):
        G.run_from_config({"network": {"timing": 1}}, tmp_path)
