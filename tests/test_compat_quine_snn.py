"""Spiking quine: exact regeneration, optimisation against its own start, the config section."""

import pytest
import torch

from neuro.compat import quine as Q


def test_spiking_quine_regeneration_is_exact_and_lif_is_not_part_of_w():
    model = Q.SpikingQuine(coord_dim=8, hidden=[8], steps=4, seed=0)
    assert model.n_params == 8 * 8 + 8 + 8 + 1 and model.projection.shape == (model.n_params, 8)
    with torch.no_grad():
        expected = model.predict_weights().clone()
    assert model.regenerate(guard=None)
    assert torch.equal(model.weights().detach(), expected)
    with pytest.raises(ValueError, match="steps"):
        Q.SpikingQuine(steps=0)


def test_spiking_quine_optimisation_lowers_the_normalised_loss():
    model = Q.SpikingQuine(coord_dim=8, hidden=[16], steps=8, seed=1)
    rates = model._features(model.projection).detach()
    assert 0 < float(rates.mean()) < 1  # the hidden layer spikes, not saturated
    result = Q.train_quine(model, "optimise", steps=60, lr=1e-2, log_every=20)
    assert result["final"]["normalised"] < result["initial"]["normalised"] / 2
    assert 0.1 <= result["final"]["norm_sq"] / result["initial"]["norm_sq"] <= 100


def test_config_runs_spiking_modes_and_regenerates_the_optimised_quine(tmp_path):
    cfg = {"seeds": [0], "coord_dim": 8, "activations": [], "regen_steps": 2, "auxiliary": {"enabled": False},
           "spiking": {"enabled": True, "hidden": [8], "time_steps": 4, "steps": 4, "regen_every": 2,
                       "modes": ["optimise", "alternate"]}}
    report = Q.run_from_config(cfg, tmp_path)
    assert [(r["activation"], r["mode"]) for r in report["runs"]] == [("lif", "optimise"), ("lif", "alternate")]
    assert "applied" in report["runs"][0]["regenerated"] and "lif/optimise" in report["summary"]
    with pytest.raises(ValueError, match="mode"):
        Q.run_from_config({**cfg, "spiking": {"enabled": True, "modes": ["evolve"]}}, tmp_path)
