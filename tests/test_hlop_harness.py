"""The continual-learning harness: metrics, config checks, the CLI, and HLOP against fine-tuning in one run."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from neuro.cli import main
from neuro.hlop.harness import resolve_config, run_experiment
from neuro.hlop.metrics import continual_metrics
from neuro.hlop.model import SpikingMLP
from neuro.hlop.tasks import build_tasks
from neuro.io import ConfigError, load_config


def test_metrics_follow_lopez_paz_and_ranzato():
    a = np.array([[0.9, 0.2, 0.1], [0.6, 0.8, 0.3], [0.5, 0.7, 0.9]])
    m = continual_metrics(a, initial=[0.1, 0.1, 0.2])
    assert m["ACC"] == pytest.approx((0.5 + 0.7 + 0.9) / 3)
    assert m["BWT"] == pytest.approx(((0.5 - 0.9) + (0.7 - 0.8)) / 2)
    assert m["FWT"] == pytest.approx(((0.2 - 0.1) + (0.3 - 0.2)) / 2)
    with pytest.raises(ValueError, match="square"):
        continual_metrics(np.zeros((2, 3)))


def test_config_errors_name_the_problem():
    with pytest.raises(ConfigError, match="unknown key"):
        resolve_config({"hlop": {"lateral_neurons": 3}})
    with pytest.raises(ConfigError, match="methods"):
        resolve_config({"methods": ["gpm"]})
    with pytest.raises(ConfigError, match="one value per synaptic layer"):
        resolve_config({"model": {"hidden": [32]}})
    with pytest.raises(ValueError, match="input must be"):
        SpikingMLP([4, 3, 2])(torch.zeros(2, 5))


def test_task_sequences():
    perm = build_tasks("permuted_digits", 2, seed=0)
    assert not torch.equal(perm[0].x_train, perm[1].x_train)
    assert torch.equal(perm[0].x_train.sort(1).values, perm[1].x_train.sort(1).values)
    split = build_tasks("split_digits", 5, seed=0)
    assert [t.classes for t in split] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    assert set(split[2].y_test.tolist()) == {4, 5}


QUICK = Path(__file__).parents[1] / "configs" / "continual" / "quick.yaml"


def test_hlop_forgets_far_less_than_finetuning_in_the_same_run():
    config = {**load_config(QUICK), "methods": ["hlop", "finetune"], "seeds": [0]}
    report = run_experiment(resolve_config(config), progress=False)
    hlop, finetune = report["runs"]["hlop"][0], report["runs"]["finetune"][0]
    assert finetune["matrix"][0, 0] > 0.6 and hlop["matrix"][0, 0] > 0.6  # both learned task 0
    assert hlop["BWT"] > finetune["BWT"] + 0.1
    assert hlop["ACC"] > finetune["ACC"]


def test_cli_writes_matrix_report_and_heat_map(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text("tasks: {n_tasks: 2, test_fraction: 0.8}\ntrain: {epochs: 1}\n"
                      "model: {hidden: [16], steps: 2}\nseeds: [3]\newc: {fisher_samples: 4}\n"
                      "hlop: {lateral_first: [4, 4], lateral_increment: [4, 4], lr: [0.1, 0.05], spiking: true}\n")
    assert main(["continual", str(config), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert set(report["summary"]) == {"hlop", "finetune", "ewc", "multitask"}
    assert np.array(report["runs"]["ewc"][0]["matrix"]).shape == (2, 2)
    assert "hlop_seed3" in np.load(tmp_path / "out" / "matrices.npz")
    assert (tmp_path / "out" / "accuracy_matrices.png").stat().st_size > 0
    assert main(["continual", str(tmp_path / "missing.yaml")]) == 1


def test_user_tasks_with_more_than_ten_classes_run_through_the_api_and_the_config(tmp_path, monkeypatch):
    config = {**load_config(QUICK), "methods": ["hlop", "finetune"], "seeds": [0],
              "tasks": {"n_tasks": 2, "labels": "disjoint", "heads": "shared"}, "train": {"epochs": 1}}
    report = run_experiment(resolve_config(config), progress=False)  # class-incremental, 20 classes
    hlop, finetune = report["runs"]["hlop"][0], report["runs"]["finetune"][0]
    assert hlop["matrix"].shape == (2, 2) and finetune["matrix"][0, 0] > 0.6
    assert hlop["BWT"] > finetune["BWT"] + 0.3
    tasks = build_tasks("permuted_digits", 2, seed=0, labels="disjoint")
    assert tasks[1].classes == tuple(range(10, 20)) and set(tasks[1].y_test.tolist()) <= set(range(10, 20))
    # a function of the user's, named in the config
    (tmp_path / "my_tasks.py").write_text(
        "from neuro.hlop.tasks import build_tasks\n"
        "def make(n_tasks, seed, test_fraction, steps):\n"
        "    return build_tasks('permuted_digits', n_tasks, seed, test_fraction, labels='disjoint')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = {**config, "methods": ["finetune"], "tasks": {"kind": "my_tasks:make", "n_tasks": 2}}
    report = run_experiment(resolve_config(config), progress=False)
    assert report["tasks"] == ["perm-0", "perm-1"] and report["runs"]["finetune"][0]["ACC"] > 0.3
    with pytest.raises(ConfigError, match="package.module:function"):
        resolve_config({"tasks": {"kind": "nope"}})
    with pytest.raises(ValueError, match="cannot import"):
        run_experiment(resolve_config({**config, "tasks": {"kind": "my_tasks:absent"}}), progress=False)
    bad = [tasks[0].__class__("x", tasks[0].x_train, tasks[0].y_train + 30, tasks[0].x_test, tasks[0].y_test,
                              tasks[0].classes)]
    with pytest.raises(ValueError, match="outside its classes"):
        run_experiment(resolve_config(config), progress=False, tasks=bad)
