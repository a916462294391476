"""DrM components: dormant ratio (ANN and spiking), perturbation and the beta-driven schedules."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from neuro.compat import dormant
from neurons.lif_torch import LIFCell


def _mlp_with_silent_units(n_hidden: int, silent: list[int]) -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, n_hidden), nn.ReLU(), nn.Linear(n_hidden, 3))
    with torch.no_grad():
        net[0].weight[silent] = 0.0
        net[0].bias[silent] = 0.0
        net[0].bias[[i for i in range(n_hidden) if i not in silent]] = 5.0  # the others are clearly active
    return net


@pytest.mark.parametrize("k", [0, 1, 4, 7])
def test_dormant_ratio_is_k_over_n_for_k_silenced_units(k):
    n = 12
    silent = np.random.default_rng(k).choice(n, size=k, replace=False).tolist()
    net = _mlp_with_silent_units(n, silent)
    report = dormant.dormant_ratio(net, torch.randn(64, 5), tau=0.025, names=["0"])
    assert report.ratio == k / n
    assert report.dormant == {"0": k} and report.size == {"0": n}


def test_dormant_ratio_pools_layers_by_unit_count():
    net = _mlp_with_silent_units(10, [1, 2, 3])
    with torch.no_grad():
        net[2].weight[0] = 0.0
        net[2].bias[0] = 0.0
    report = dormant.dormant_ratio(net, torch.randn(32, 5), tau=0.025)  # both Linear layers, as DrM
    assert report.dormant == {"0": 3, "2": 1}
    assert report.ratio == 4 / 13
    assert report.layer_ratio("0") == 0.3


def test_dormant_threshold_is_inclusive_and_scores_are_relative():
    activity = torch.tensor([0.0, 0.5, 1.0, 2.5])  # layer mean 1.0
    assert dormant.dormant_scores(activity).tolist() == [0.0, 0.5, 1.0, 2.5]
    assert dormant.dormant_units(activity, 0.5).tolist() == [True, True, False, False]
    assert dormant.dormant_units(activity * 100, 0.5).tolist() == [True, True, False, False]
    assert dormant.dormant_units(torch.zeros(3), 0.0).all()
    with pytest.raises(ValueError, match="tau"):
        dormant.dormant_units(activity, -0.1)


def test_spiking_dormant_ratio_uses_firing_rates():
    n, silent = 10, [0, 3, 9]
    v_th = np.full(n, 0.5)
    v_th[silent] = 1e6  # these neurons never fire
    net = nn.ModuleDict({"lif": LIFCell(n, v_th=v_th)})

    def run(model, x_seq):
        model["lif"].run(x_seq)

    x = torch.rand(20, 8, n) * 0.4  # [T, batch, n]
    report = dormant.dormant_ratio(net, x, tau=0.0, forward=run)
    assert report.ratio == len(silent) / n
    with dormant.ActivityRecorder({"lif": net["lif"]}) as rec:
        spikes, _ = net["lif"].run(x)
    rates = spikes.mean(dim=(0, 1)).double()
    assert torch.allclose(rec.mean_abs()["lif"], rates)
    assert (rates[silent] == 0).all()


def test_recorder_reports_layers_the_forward_missed():
    net = nn.Sequential(nn.Linear(3, 4))
    with pytest.raises(ValueError, match="no activity recorded"):
        dormant.dormant_ratio(net, torch.randn(2, 3), names=["0"], forward=lambda m, x: None)


@pytest.mark.parametrize("beta", [0.0, 0.2, 1.0])
def test_schedules_match_their_formulas(beta):
    assert dormant.exploration_std(beta) == pytest.approx(1 / (1 + math.exp(-10 * (beta - 0.2))), rel=1e-12)
    assert dormant.exploitation_weight(beta) == pytest.approx(0.6 / (1 + math.exp(50 * (beta - 0.2))), rel=1e-12)
    assert dormant.perturb_factor(beta, alpha_max=0.9) == min(max(0.2, 1 - 2 * beta), 0.9)


def test_schedule_values_at_the_landmarks():
    assert dormant.exploration_std(0.2) == 0.5 and dormant.exploitation_weight(0.2) == pytest.approx(0.3)
    assert dormant.perturb_factor(0.2, alpha_max=0.9) == pytest.approx(0.6)
    assert dormant.perturb_factor(0.0, alpha_max=0.9) == 0.9 and dormant.perturb_factor(1.0) == 0.2
    assert dormant.exploration_std(1.0) > 0.999 and dormant.exploitation_weight(1.0) < 1e-16
    with pytest.raises(ValueError, match="beta"):
        dormant.exploration_std(1.5)


def test_awaken_exploration_switches_to_the_decaying_floor():
    expl = dormant.AwakenExploration(warmup_steps=10, start=1.0, end=0.1, duration=100)
    expl.update(5, 0.0)  # still warming up: stays asleep
    assert expl.awake_step is None and expl.std(5, 0.0) == dormant.exploration_std(0.0)
    expl.update(20, 0.5)  # too dormant to wake
    assert expl.awake_step is None
    expl.update(30, 0.1)
    assert expl.awake_step == 30
    assert expl.std(80, 0.0) == pytest.approx(0.55)  # linear floor half-way, above sigma(0)
    assert expl.std(80, 1.0) == dormant.exploration_std(1.0)  # dormant again: sigma(beta) dominates
    expl.update(90, 0.0)
    assert expl.awake_step == 30  # wakes once


def test_blended_target_and_expectile_loss():
    v, q = torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0])
    assert torch.equal(dormant.blended_target_value(v, q, 0.25), 0.25 * v + 0.75 * q)
    # err = -1 (weighted 0.9) and +1 (weighted 0.1)
    assert dormant.expectile_loss(v, q, 0.9).item() == pytest.approx((0.9 + 0.1) / 2)


def test_perturb_mixes_with_a_fresh_init_and_clears_optimizer_state():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.randn(3, 4)).sum().backward()
    opt.step()
    before = {k: v.clone() for k, v in net.state_dict().items()}

    dormant.perturb(net, 1.0, seed=0, optimizer=opt)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # alpha = 1 is the identity
    assert len(opt.state) == 0

    fresh = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        fresh[0].reset_parameters()
        fresh[2].reset_parameters()
    dormant.perturb(net, 0.3, seed=0)
    for key in ("0.weight", "0.bias", "2.weight", "2.bias"):
        assert torch.allclose(net.state_dict()[key], 0.3 * before[key] + 0.7 * fresh.state_dict()[key])
    assert torch.equal(net[1].weight, before["1.weight"])  # LayerNorm is not a perturbed kind
    with pytest.raises(ValueError, match="alpha"):
        dormant.perturb(net, 1.5, seed=0)
