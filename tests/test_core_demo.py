"""The main job end to end on a small configuration (the Lava step is covered by the deployment tests)."""

import json

from neuro.cli import main


def test_demo_small_runs_end_to_end(tmp_path):
    cfg = tmp_path / "demo.yaml"
    cfg.write_text("network: {n: 80, k: 10, n_input: 16}\nsimulate: {steps: 200, trials: 2}\n"
                   "lnp: {lyapunov: {steps: 200, warmup: 50}}\ntask_options: {n_train: 150, n_test: 60}\n")
    assert main(["demo", str(cfg), "--out", str(tmp_path / "out"), "--skip-lava"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["pruned"]["neurons"] < summary["dense"]["neurons"]
    assert summary["pruned"]["synapses"] < summary["dense"]["synapses"]
    for name in ("dense.npz", "pruned.npz", "raster_dense.png", "raster_pruned.png", "lnp_report.json"):
        assert (tmp_path / "out" / name).stat().st_size > 0
