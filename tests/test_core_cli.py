"""`neuro simulate` end to end, and clear errors for malformed configs."""

import json

import numpy as np
import pytest

from neuro import Network
from neuro.cli import main
from neuro.config import network_from_config
from neuro.io import ConfigError

CONFIG = """
dt: 1.0e-3
seed: 3
populations:
  - {name: input, model: poisson, size: 20, params: {rate: 50.0}}
  - name: exc
    size: 50
    reset: soft
    params: {tau_mem: {dist: gamma, mean: 0.02, cv: 0.5, minimum: 0.002}, v_th: 1.0}
projections:
  - {pre: input, post: exc, connectivity: {kind: bernoulli, p: 0.3}, weight: 0.3}
  - {pre: exc, post: exc, connectivity: {kind: small_world, k: 6, beta: 0.1}, weight: -0.05, receptor: inh}
run: {steps: 300, trials: 2, record_state: {exc: [0, 1]}}
"""


def test_simulate_writes_outputs_and_is_reproducible(tmp_path, capsys):
    cfg = tmp_path / "net.yaml"
    cfg.write_text(CONFIG)
    for out in ("a", "b"):
        assert main(["simulate", str(cfg), "--out", str(tmp_path / out), "--no-progress"]) == 0
    for name in ("network.npz", "spikes.npz", "summary.json", "raster.png", "rate.png", "traces_exc.png"):
        assert (tmp_path / "a" / name).stat().st_size > 0
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["trials"] == 2 and summary["populations"]["exc"]["neurons"] == 50
    assert sum(summary["populations"]["exc"]["spikes_per_trial"]) > 0
    a, b = (np.load(tmp_path / d / "spikes.npz") for d in ("a", "b"))
    np.testing.assert_array_equal(a["trial1_neurons"], b["trial1_neurons"])
    assert Network.load(tmp_path / "a" / "network.npz").size == 70
    assert "mean rate" in capsys.readouterr().out


def test_simulate_threads_give_the_same_spikes(tmp_path, capsys):
    cfg = tmp_path / "net.yaml"
    cfg.write_text(CONFIG)
    for out in ("1", "2"):
        assert main(["simulate", str(cfg), "--out", str(tmp_path / out), "--no-progress", "--steps", "100",
                     "--threads", out]) == 0
    assert json.loads((tmp_path / "2" / "summary.json").read_text())["neuron_ranges"] == 2
    one, two = (np.load(tmp_path / d / "spikes.npz") for d in ("1", "2"))
    assert one["trial0_times"].size > 0
    for key in one.files:
        np.testing.assert_array_equal(one[key], two[key], err_msg=key)
    with pytest.raises(SystemExit):
        main(["simulate", str(cfg), "--threads", "0"])
    assert "--threads: must be an integer >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("populations: [{name: a, size: 3, params: {tau_mem: {dist: weibull, mean: 1}}}]", "unknown distribution"),
    ("populations: [{name: a, size: 3, colour: red}]", "unknown key"),
    ("populations: [{name: a, size: -3}]", "size must be an integer >= 1"),
    ("populations: [{name: a, size: 3}]\nprojections: [{pre: a, post: b, connectivity: {kind: bernoulli, p: 0.1}}]",
     "unknown population 'b'"),
    ("populations: [{name: a, size: 3}]\nprojections: [{pre: a, post: a, connectivity: {kind: random}}]",
     "unknown kind"),
    ("populations: []", "non-empty list"),
])
def test_malformed_configs_give_clear_errors(text, message):
    import yaml

    with pytest.raises(ConfigError, match=message):
        network_from_config(yaml.safe_load(text))


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("populations: [unclosed")
    assert main(["simulate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "malformed config" in err and "Traceback" not in err
    assert main(["simulate", str(tmp_path / "missing.toml")]) == 1
    assert "not found" in capsys.readouterr().err
    evil = tmp_path / "evil.yaml"
    evil.write_text("!!python/object/apply:os.system ['echo pwned > " + str(tmp_path / "pwned") + "']")
    assert main(["simulate", str(evil)]) == 1
    assert not (tmp_path / "pwned").exists()


def test_an_output_path_that_is_a_file_fails_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "results"
    blocker.write_text("a user's file")
    for command in (["simulate", "configs/simulate_ei.yaml"], ["prune"], ["demo", "--skip-lava"]):
        assert main([*command, "--out", str(blocker / "run")]) == 1
        err = capsys.readouterr().err
        assert "cannot be created" in err and "not a folder" in err and "Traceback" not in err
    assert blocker.read_text() == "a user's file"
