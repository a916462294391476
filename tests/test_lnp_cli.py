import json

import pytest
import yaml

from neuro.cli import main
from neuro.network import Network

SMALL = {
    "network": {"n": 80, "k": 8},
    "lnp": {"lyapunov": {"steps": 300, "warmup": 100}, "iterations": 3, "pivots": 16},
    "task": "lorenz",
    "task_options": {"n_train": 300, "n_test": 100, "segment": 100, "washout": 20},
    "spectrum": {"k": 4, "steps": 300},
}


def test_prune_command_writes_network_report_and_plots(tmp_path, capsys):
    cfg = tmp_path / "prune.yaml"
    cfg.write_text(yaml.safe_dump(SMALL))
    assert main(["prune", str(cfg), "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    report = json.loads((out / "report.json").read_text())
    pruned = Network.load(out / "pruned.npz")
    assert report["pruned"]["neurons"] == pruned.population("exc").size + pruned.population("inh").size
    assert report["neuron_fraction"] <= 0.6 and report["synapse_fraction"] <= 0.5
    assert report["pruned"]["lambda_max_per_step"] <= 0
    quiet = report["pruned"]["autonomous"]  # rest 0.9: silent without input, perturbations only leak away
    assert quiet["rate_hz"] == 0 and quiet["direct_per_second"] < 0 and quiet["direct_converged"] == 1
    assert "nrmse" in report["dense"] and "sops_per_second" in report["pruned"]
    assert len(report["spectrum_per_second"]["dense"]) == 4
    assert (out / "spectrum.png").stat().st_size > 0 and (out / "sizes.png").stat().st_size > 0
    assert (out / "memory.png").stat().st_size > 0
    memory = report["pruned"]["memory_capacity"]
    assert len(memory["by_delay"]) == 11 and memory["total"] == pytest.approx(sum(memory["by_delay"]))
    assert report["pruned"]["eigenvector_localisation"] >= 1 and report["dense"]["eigenvector_localisation"] >= 1
    assert memory["total"] > 0.2  # the pruned reservoir's state does carry the recent input
    printed = capsys.readouterr().out
    assert "recurrent synapses" in printed and "linear memory capacity" in printed


BAD_CONFIGS = [  # (config, what the error must say)
    ({"netwrk": {}}, "unknown key(s) ['netwrk']"),
    ({"lnp": {"neuron_kept": 0.5}, "task": "none"}, "unknown LNP option"),
    ({"lnp": {"neuron_score": "pagerank"}, "task": "none"}, "unknown neuron_score 'pagerank'"),
    ({"lnp": {"probes": 0}, "task": "none"}, "probes (probe realisations"),
    ({"lnp": {"rest": 1.2}, "task": "none"}, "rest (steady state"),
    ({"lnp": {"delocalize": "yes"}, "task": "none"}, "delocalize must be true or false"),
    ({"method": "magnitude", "task": "none"}, "method must be one of lnp, random, activity, random_stabilised"),
    ({"seed": "abc"}, "seed must be an integer >= 0, got 'abc'"),
    ({"network": {"dt": 0}}, "HRSNN options: dt must be a finite number > 0"),
    ({"network": {"p": "0.1", "connectivity": "random"}}, "p must be a finite number in [0, 1], got '0.1' (text"),
    ({"network": {"n": 300_000_000}}, "GiB"),
    ({"spectrum": {"k": 0}}, "spectrum.k must be an integer >= 1"),
]


def test_prune_config_errors_are_clear(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    for config, message in BAD_CONFIGS:
        cfg.write_text(yaml.safe_dump(config))
        assert main(["prune", str(cfg), "--out", str(tmp_path / "o")]) == 1
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("task", ["cifar"])
def test_prune_rejects_unknown_tasks(tmp_path, task, capsys):
    cfg = tmp_path / "t.yaml"
    cfg.write_text(yaml.safe_dump({"task": task}))
    assert main(["prune", str(cfg)]) == 1
    assert "task must be" in capsys.readouterr().err


def test_a_prune_killed_midway_leaves_the_previous_result_whole(tmp_path, monkeypatch, capsys):
    import neuro.commands.prune as prune

    cfg = tmp_path / "prune.yaml"
    cfg.write_text(yaml.safe_dump({**SMALL, "seed": 1}))
    out = tmp_path / "out"
    assert main(["prune", str(cfg), "--out", str(out), "--no-progress"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(prune, "_plot_sizes", killed)  # after pruned.npz and two plots are written
    assert main(["prune", str(cfg), "--out", str(out), "--seed", "2", "--no-progress"]) == 130
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "prune.yaml"]
    assert "Traceback" not in capsys.readouterr().err
