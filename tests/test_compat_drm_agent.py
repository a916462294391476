"""The toy DrM agent: its mechanisms follow the measured dormant ratio; the baseline has none of them."""

import pytest

from neuro.compat import dormant, drm

pytest.importorskip("gymnasium")

TINY = {**drm.DEFAULTS, "steps": 160, "warmup_steps": 40, "batch_size": 32, "hidden": 16, "dormant_every": 20,
        "perturb_every": 60, "std_duration": 200}


@pytest.fixture(scope="module")
def runs(one_thread):
    return {v: drm.run_agent(TINY, v, seed=0) for v in drm.VARIANTS}


def test_drm_mechanisms_are_functions_of_beta(runs):
    run = runs["drm"]
    assert len(run["log"]) == 6 and len(run["perturbations"]) == 2
    for entry in run["log"]:
        assert entry["lambda"] == dormant.exploitation_weight(entry["beta"])
        sigma_beta = dormant.exploration_std(entry["beta"])
        if entry["awake"]:
            assert entry["sigma"] >= sigma_beta
        else:
            assert entry["sigma"] == sigma_beta
    for p in run["perturbations"]:
        assert p["alpha"] == dormant.perturb_factor(p["beta"], alpha_max=TINY["alpha_max"])


def test_baseline_has_fixed_schedule_no_exploitation_and_no_perturbation(runs):
    run = runs["baseline"]
    assert run["perturbations"] == [] and run["awake_step"] is None
    for entry in run["log"]:
        assert entry["lambda"] == 0.0
        assert entry["sigma"] == pytest.approx(dormant.linear_schedule(1.0, 0.1, 200, entry["step"]))


def test_same_seed_same_run(runs):
    assert drm.run_agent(TINY, "baseline", seed=0)["log"] == runs["baseline"]["log"]


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="variants"):
        drm.run_from_config({"variants": ["ddpg"]}, tmp_path)
    with pytest.raises(ValueError, match="dormant_on"):
        drm.run_from_config({"dormant_on": "conv"}, tmp_path)
    with pytest.raises(ValueError, match="unknown key"):
        drm.run_from_config({"step": 10}, tmp_path)
