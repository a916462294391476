"""Trained models on Lava: zero-delay layers run shifted, readouts decoded, samples back to back, spike for spike.

Each Lava run costs a few seconds of process start-up: the models are tiny and each test makes one run.
"""

import numpy as np
import pytest
import torch

from deployment import lava_compat

if not lava_compat.available():
    pytest.skip("lava-nc is not importable (install it with `make install`)", allow_module_level=True)

from deployment.deploy import deploy_samples  # noqa: E402
from deployment.verify import verify_network  # noqa: E402
from neuro.network import Network, Population, Projection  # noqa: E402
from neuro.training import config  # noqa: E402
from neuro.training.convert import to_network  # noqa: E402
from synapses.csr import from_dense  # noqa: E402

SHAPE, CLASSES, STEPS = (2, 6, 6), 3, 8


def _task(n, seed):
    """Background spikes plus a class-specific band of rows in channel 0."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    x = rng.random((n, STEPS) + SHAPE) < 0.08
    for c in range(CLASSES):
        band = x[y == c, :, 0, 2 * c:2 * c + 2]
        x[y == c, :, 0, 2 * c:2 * c + 2] = band | (rng.random(band.shape) < 0.5)
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)


def _accuracy(model, x, y):
    with torch.no_grad():
        logits = model(x.transpose(0, 1))
    return float((logits.argmax(1) == y).float().mean()), logits.numpy()


def _trained(model_cfg, iterations=40):
    """A model of ``model_cfg`` trained for a second or two; checks that training helped."""
    cfg = config.resolve({"model": model_cfg})
    model = config.build_model(cfg["model"], SHAPE, CLASSES, seed=0)
    x, y = _task(256, seed=1)
    before, _ = _accuracy(model, x, y)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for i in range(iterations):
        batch = slice(32 * (i % 8), 32 * (i % 8 + 1))
        loss = torch.nn.functional.cross_entropy(model(x[batch].transpose(0, 1)), y[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    after, _ = _accuracy(model, x, y)
    assert after > max(before, 1 / CLASSES) + 0.1, (before, after)
    return model


@pytest.mark.parametrize("model_cfg", [
    {"layers": [{"type": "dense", "size": 24}]},
    {"layers": [{"type": "conv", "channels": 3, "kernel": 3, "stride": 2, "padding": 1},
                {"type": "dense", "size": 16}], "surrogate": "atan"},
    {"layers": [{"type": "recurrent", "size": 20}], "use_mpr": True, "tau_mem_cv": 0.5, "learn_tau": True,
     "tau_syn": 5e-3},
    {"layers": [{"type": "dense", "size": 16}], "readout": "count", "reset": "hard"},
], ids=["dense", "conv", "recurrent", "count-hard"])
def test_trained_model_on_lava_is_spike_for_spike_neuro_fixed_point(model_cfg):
    model = _trained(model_cfg)
    x, y = _task(12, seed=7)
    _, logits = _accuracy(model, x, y)
    report = deploy_samples(to_network(model, SHAPE), x.numpy(), y.numpy(), logits, chunk=12, timeout=300,
                            progress=False)
    assert report.all_match, report.table()
    assert all(m.neuro > 20 for m in report.layers), report.table()  # the layers do spike
    assert report.class_agreement == 1.0
    if model_cfg.get("readout", "membrane") == "membrane":
        assert report.readout_identical_samples == 12
    else:  # hard reset, no refractoriness: Lava's built-in LIFReset, reset at the start of every sample
        assert report.readout_identical_samples is None and "LIFReset(16)" in "\n".join(report.notes)
    assert report.interval == STEPS + (1 if model_cfg["layers"][0]["type"] == "recurrent" else 0)


def test_skip_connection_and_bias_run_shifted_on_lava_and_match_after_undoing_the_shift():
    """in -> A -> B -> C (zero delays), skip A -> C (2 Lava steps), C -> C recurrent; A and B have a bias."""
    rng = np.random.default_rng(3)

    def dense(n_post, n_pre, scale, delays=0):
        return from_dense(rng.normal(0.4, 0.5, (n_post, n_pre)) * scale, delays=delays)

    pops = (Population("in", 6, "spike_source"),
            Population("A", 8, reset="hard", params={"tau_mem": 10e-3, "tau_syn": 0.0, "bias": 0.05}),
            Population("B", 8, reset="soft", params={"tau_mem": 20e-3, "tau_syn": 0.0, "bias": 0.08}),
            Population("C", 5, reset="hard", params={"tau_mem": 15e-3, "tau_syn": 0.0}))
    projs = (Projection("in->A", "in", "A", dense(8, 6, 1.0)), Projection("A->B", "A", "B", dense(8, 8, 0.8)),
             Projection("B->C", "B", "C", dense(5, 8, 0.6)), Projection("A->C", "A", "C", dense(5, 8, 0.6)),
             Projection("C->C", "C", "C", dense(5, 5, 0.3, delays=1)))
    net = Network(pops, projs, dt=1e-3)
    inputs = {"in": rng.random((60, 6)) < 0.3}
    report = verify_network(net, 60, inputs, seed=0, timeout=300)
    assert report.all_match, report.table()
    assert all(r.ours > 20 for r in report.rows), report.table()
    assert any("'A' 1 step(s), 'B' 2 step(s), 'C' 3 step(s)" in n for n in report.notes), report.notes


def test_hlop_trained_network_exports_and_matches_lava_spikes_and_readout_membrane():
    """`neuro continual`'s HLOP run (tiny: 2 tasks, 1 epoch) saved as a Network: spikes and readout identical."""
    from neuro.hlop.harness import resolve_config, run_experiment

    config = resolve_config({"tasks": {"n_tasks": 2, "test_fraction": 0.5}, "train": {"epochs": 1},
                             "model": {"hidden": [24], "steps": 4}, "methods": ["hlop"], "seeds": [0],
                             "hlop": {"lateral_first": [8, 8], "lateral_increment": [4, 4], "lr": [0.1, 0.05]}})
    networks = {}
    report = run_experiment(config, progress=False, networks=networks)
    assert report["summary"]["hlop"]["ACC"]["mean"] > 0.3  # it learned (10 classes)
    net = networks["hlop_seed0"]
    rng = np.random.default_rng(0)
    result = verify_network(net, 50, {"input": rng.random((50, net.population("input").size)) < 0.2}, seed=0,
                            timeout=300)
    assert result.all_match, result.table()
    assert result.rows[0].ours > 50 and result.membranes[("fixed", "readout")] == 0, result.table()


def test_neuro_train_then_neuro_deploy_from_the_run_folder(tmp_path, capsys):
    """The user's path: `neuro train` writes a run folder, `neuro deploy` takes it to Lava and writes JSON."""
    import json

    from neuro.cli import main
    from neuro.io import write_text

    cfg = tmp_path / "train.yaml"
    write_text(cfg, f"epochs: 1\ndata: {{root: {tmp_path / 'data'}, n_train: 96, n_test: 24, batch_size: 32}}\n"
                    "model: {layers: [{type: dense, size: 32}]}\n")
    assert main(["train", str(cfg), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    rc = main(["deploy", str(tmp_path / "run"), "--samples", "20", "--no-progress", "--timeout", "300"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "20 samples x 10 steps" in out and "all spikes identical: yes" in out
    report = json.loads((tmp_path / "run" / "deploy.json").read_text())
    assert report["all_match"] is True and report["samples"] == 20
    assert report["accuracy"]["neuro fixed point"] == report["accuracy"]["Lava fixed_pt"]
    assert report["classes"]["Lava fixed_pt"] == report["classes"]["neuro fixed point"]  # the class per sample
    assert len(report["classes"]["label"]) == 20 and (tmp_path / "run" / "deploy.png").stat().st_size > 1000
    assert main(["deploy", str(tmp_path / "run"), "--samples", "20", "--no-lava", "--no-progress",
                 "--json", str(tmp_path / "fixed.json")]) == 0
    fixed_only = json.loads((tmp_path / "fixed.json").read_text())
    assert fixed_only["all_match"] is None and "Lava fixed_pt" not in fixed_only["accuracy"]
    assert fixed_only["accuracy"]["neuro fixed point"] == report["accuracy"]["neuro fixed point"]
    assert main(["deploy", str(tmp_path / "nothing")]) == 1
    assert "no model.pt" in capsys.readouterr().err


def test_granet_sparse_network_on_lava_uses_sparse_connections_and_matches():
    """A trained model pruned to 10% of its synapses (GraNet's masks, CSR of the kept ones) on Lava."""
    from neuro.compat.granet_network import sparse_network

    model = _trained({"layers": [{"type": "dense", "size": 24}], "reset": "hard"})
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for layer in model.layers:
            mask = (torch.rand(layer.synapse.weight.shape, generator=gen) < 0.1).float()
            layer.synapse.weight_mask = mask
            layer.synapse.weight.mul_(mask * 3)  # what survives carries the drive
    net = sparse_network(model, SHAPE)
    assert net.projections[0].active().nnz < 0.15 * 72 * 24
    x, y = _task(12, seed=8)
    report = deploy_samples(net, x.numpy(), y.numpy(), None, chunk=12, timeout=300, progress=False)
    assert report.all_match and report.layers[0].neuro > 20, report.table()
    assert "Sparse" in report.notes[0], report.notes
