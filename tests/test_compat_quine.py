"""Neural-network quine: exact guarded regeneration, optimisation vs its start, the auxiliary variant, the CLI."""

import json

import pytest
import torch

from neuro.cli import main
from neuro.compat import quine as Q
from neuro.compat.common import load_digits_split


def test_regeneration_is_exact():
    model = Q.Quine(coord_dim=8, hidden=[8], activation="tanh", seed=0)
    with torch.no_grad():
        expected = model.predict_weights().clone()
    assert model.regenerate(guard=None)
    assert torch.equal(model.weights().detach(), expected)


@pytest.mark.parametrize("activation", ["tanh", "relu", "linear"])
def test_unguarded_regeneration_leaves_the_scale_while_the_guard_refuses(activation):
    model = Q.Quine(coord_dim=16, hidden=[16], activation=activation, seed=1)
    ref = float(model.reference_norm_sq)
    for _ in range(30):
        model.regenerate(guard=None)
    norm = model.stats()["norm_sq"]
    assert not (ref / 100 <= norm <= ref * 100)  # diverged (possibly to inf/nan) or collapsed towards W = 0
    guarded = Q.Quine(coord_dim=16, hidden=[16], activation=activation, seed=1)
    for _ in range(30):
        guarded.regenerate(guard=10.0)
    assert ref / 10 <= guarded.stats()["norm_sq"] <= ref * 10


def test_optimisation_cuts_the_normalised_loss_tenfold_with_a_sane_norm():
    model = Q.Quine(coord_dim=16, hidden=[16], activation="tanh", seed=0)
    result = Q.train_quine(model, "optimise", steps=300, lr=1e-2, log_every=100)
    first, last = result["initial"], result["final"]
    assert last["normalised"] < first["normalised"] / 10
    assert 0.1 <= last["norm_sq"] / first["norm_sq"] <= 1e4
    assert [h["step"] for h in result["history"]] == [0, 100, 200, 300]


def test_alternating_mode_regenerates_exactly_when_allowed():
    model = Q.Quine(coord_dim=8, hidden=[8], activation="tanh", seed=3)
    result = Q.train_quine(model, "alternate", steps=40, lr=1e-2, regen_every=10, guard=1e6)
    assert result["regenerations_applied"] == 4


def test_auxiliary_classifier_learns_while_replication_only_stays_near_chance():
    split = load_digits_split(seed=0)
    accs = {}
    for label, sr_w, ce_w in [("classify", 0.0, 1.0), ("both", 1.0, 1.0), ("replicate", 1.0, 0.0)]:
        model = Q.Quine(coord_dim=8, hidden=[32], activation="relu", n_inputs=64, n_classes=10, seed=0)
        accs[label] = Q.train_auxiliary(model, split, sr_w, ce_w, epochs=3, batch_size=64, lr=3e-3,
                                        seed=0)["test_accuracy"]
    assert accs["classify"] > 0.8 and accs["both"] > 0.8
    assert accs["replicate"] < 0.4


def test_cli_writes_a_report(tmp_path):
    config = tmp_path / "quine.yaml"
    config.write_text("quine:\n  seeds: [0]\n  coord_dim: 4\n  hidden: [4]\n  activations: [tanh]\n"
                      "  steps: 20\n  regen_steps: 3\n  regen_every: 10\n  auxiliary: {enabled: false}\n")
    assert main(["compat", "quine", str(config), "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert set(report["summary"]) == {"tanh/optimise", "tanh/regenerate", "tanh/alternate"}
    assert (tmp_path / "out" / "quine.png").is_file()
    config.write_text("quine:\n  step: 3\n")
    assert main(["compat", "quine", str(config), "--out", str(tmp_path / "bad")]) == 1
    config.write_text("granet: {}\n")
    assert main(["compat", "quine", str(config), "--out", str(tmp_path / "bad")]) == 1
    with pytest.raises(SystemExit):
        main(["compat", "nope"])
