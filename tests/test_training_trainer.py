"""Training loop: learning beats chance and the untrained model; exact resume; config errors; CLI files."""

import json

import pytest
import torch

from neuro.io import ConfigError, write_text
from neuro.training import config
from neuro.training.data import epoch_batches, rate_coded_digits
from neuro.training.trainer import CHECKPOINT, fit

SMALL = {"seed": 0, "epochs": 3, "data": {"batch_size": 50},
         "model": {"layers": [{"type": "dense", "size": 48}], "tau_mem": 40e-3},
         "optim": {"lr": 5e-3}}


def _subset(data, n_train, n_test):
    """A small training and test set keeps the tests fast."""
    data.x_train, data.y_train = data.x_train[:n_train], data.y_train[:n_train]
    data.x_test, data.y_test = data.x_test[:n_test], data.y_test[:n_test]
    return data


@pytest.fixture(scope="module")
def digits():
    return _subset(rate_coded_digits(time_steps=6, test_size=300, seed=0), 600, 300)


@pytest.fixture(scope="module")
def tiny():
    return _subset(rate_coded_digits(time_steps=4, test_size=100, seed=0), 200, 50)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_a_small_snn_learns_digits(digits, tmp_path):
    cfg = config.resolve(SMALL)
    _, history = fit(cfg, digits, tmp_path, progress=False)
    untrained, final = history[0]["test_acc"], history[-1]["test_acc"]
    assert final > 0.6  # chance is 0.1
    assert final > untrained + 0.3
    assert history[-1]["train_loss"] < history[1]["train_loss"]
    files = {p.name for p in tmp_path.iterdir()}
    assert {"checkpoint.pt", "metrics.json", "metrics.csv", "learning_curve.png", "model.pt", "network.npz"} <= files
    assert [r["epoch"] for r in json.loads((tmp_path / "metrics.json").read_text())] == [0, 1, 2, 3]


def test_resume_after_an_epoch_gives_identical_weights(tiny, tmp_path):
    cfg = config.resolve({**SMALL, "epochs": 2})
    full, _ = fit(cfg, tiny, tmp_path / "full", progress=False)
    fit(cfg, tiny, tmp_path / "cut", progress=False, stop_after=1)
    assert torch.load(tmp_path / "cut" / CHECKPOINT, weights_only=True)["epoch"] == 1
    resumed, history = fit(cfg, tiny, tmp_path / "cut", resume=True, progress=False)
    assert [r["epoch"] for r in history] == [0, 1, 2]
    a, b = _weights(full), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_another_config(tiny, tmp_path):
    fit(config.resolve(SMALL), tiny, tmp_path, progress=False, stop_after=1)
    with pytest.raises(ValueError, match="different config"):
        fit(config.resolve({**SMALL, "seed": 5}), tiny, tmp_path, resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        fit(config.resolve(SMALL), tiny, tmp_path / "empty", resume=True, progress=False)


def test_batches_depend_on_seed_and_epoch_and_shard_exactly():
    whole = epoch_batches(100, 20, seed=3, epoch=2)
    assert all(torch.equal(a, b) for a, b in zip(whole, epoch_batches(100, 20, seed=3, epoch=2)))
    assert not torch.equal(whole[0], epoch_batches(100, 20, seed=3, epoch=3)[0])
    shards = [epoch_batches(100, 20, seed=3, epoch=2, rank=r, world=2) for r in (0, 1)]
    for b, (s0, s1) in enumerate(zip(*shards)):
        assert sorted(torch.cat([s0, s1]).tolist()) == sorted(whole[b].tolist())


@pytest.mark.parametrize("bad, message", [
    ({"epochs": 0}, "epochs must be an integer >= 1"),
    ({"model": {"reset": "sometimes"}}, "model.reset"),
    ({"model": {"layers": [{"type": "lstm", "size": 3}]}}, "needs 'type'"),
    ({"model": {"layers": [{"type": "dense", "size": 3, "channels": 2}]}}, "unknown key"),
    ({"optim": {"lrr": 1}}, "unknown key"),
    ({"model": {"surrogate": "nope"}}, None),
])
def test_bad_configs_are_rejected_clearly(bad, message):
    if message is None:
        with pytest.raises(ConfigError, match="unknown surrogate"):
            config.spike_function(config.resolve(bad)["model"]["surrogate"])
    else:
        with pytest.raises(ConfigError, match=message):
            config.resolve(bad)


def test_cli_rejects_a_bad_config_file(tmp_path, capsys):
    from neuro.cli import main

    path = write_text(tmp_path / "train.yaml", "epochs: 2\nmodel: {readout: max}\n")
    assert main(["train", str(path), "--out", str(tmp_path / "out")]) == 1
    assert "model.readout" in capsys.readouterr().err
