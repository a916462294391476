"""GraNet: ERK, the cubic schedule, regeneration invariants, masks in optimisers/checkpoints, SOPs, learning."""

import math

import pytest
import torch
from torch import nn

from neuro.compat import granet as G
from neuro.compat.common import MLP, load_digits_split
from neuro.compat.spiking import SpikingMLP, synaptic_operations


@pytest.fixture(scope="module")
def digits():
    return load_digits_split(seed=0)


def test_erk_densities_hit_the_target_and_cap_at_one():
    shapes = {"a": (300, 64), "b": (100, 300), "c": (10, 100), "d": (3, 2)}
    for density in (0.02, 0.1, 0.5, 0.9):
        p = G.erk_densities(shapes, density)
        sizes = {n: math.prod(s) for n, s in shapes.items()}
        assert sum(p[n] * sizes[n] for n in p) == pytest.approx(density * sum(sizes.values()))
        assert all(0 < v <= 1 for v in p.values())
    assert G.erk_densities(shapes, 0.5)["d"] == 1.0  # tiny layer is dense
    with pytest.raises(ValueError, match="density"):
        G.erk_densities(shapes, 0.0)


def test_cubic_schedule_and_cosine_decay_endpoints():
    assert G.cubic_sparsity(2, 2, 10, 0.0, 0.9) == 0.0
    assert G.cubic_sparsity(10, 2, 10, 0.0, 0.9) == pytest.approx(0.9)
    assert G.cubic_sparsity(50, 2, 10, 0.5, 0.9) == pytest.approx(0.9)
    mid = G.cubic_sparsity(6, 2, 10, 0.0, 0.9)
    assert mid == pytest.approx(0.9 * (1 - 0.5 ** 3))
    assert G.cosine_decay(0, 100, 0.5) == pytest.approx(0.5)
    assert G.cosine_decay(100, 100, 0.5, 0.01) == pytest.approx(0.01)


class _ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x.view(-1, 1, 8, 8))).flatten(1))


@pytest.mark.parametrize("build", [lambda: MLP([64, 48, 10], seed=1), _ConvNet,
                                   lambda: SpikingMLP([64, 32, 10], steps=4, seed=1)],
                         ids=["mlp", "conv", "snn"])
def test_regeneration_invariants_on_every_step(build, digits, monkeypatch):
    torch.manual_seed(0)
    model = build()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    schedule = G.GraNetSchedule(total_steps=40, final_density=0.2, init_density=0.5, prune_every=3, prune_end=20)
    granet = G.GraNet(model, opt, schedule, torch.Generator().manual_seed(0))
    calls = []
    real_regenerate = G.regenerate

    def checked_regenerate(masks, rate, optimizer):
        before = masks.nnz()
        old = {n: masks.mask(n).bool().clone() for n in masks.modules}
        weights = {n: masks.weight(n).clone() for n in masks.modules}
        grown = real_regenerate(masks, rate, optimizer)
        assert masks.nnz() == before  # pruned count == regrown count, per layer
        for n in masks.modules:
            new = masks.mask(n).bool() & ~old[n]
            assert int(new.sum()) <= grown[n]
            assert torch.all(masks.weight(n)[new] == 0)  # regrown start at exactly 0
            kept = masks.mask(n).bool() & old[n]
            assert torch.all((masks.weight(n)[kept] == weights[n][kept]) | (masks.weight(n)[kept] == 0))
        calls.append(sum(grown.values()))
        return grown

    monkeypatch.setattr(G, "regenerate", checked_regenerate)
    x, y = digits.x_train[:64], digits.y_train[:64]
    for step in range(1, schedule.total_steps + 1):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        granet.step(step)
        for m in granet.masks.modules.values():
            off = m.weight_mask == 0
            assert torch.all(m.weight[off] == 0)
            assert torch.all(opt.state[m.weight]["momentum_buffer"][off] == 0)
    assert len(calls) == schedule.total_steps // schedule.prune_every and sum(calls) > 0
    assert granet.masks.density() == pytest.approx(0.2, abs=1e-3)


def test_regrown_weights_start_at_zero_even_when_just_dropped():
    layer = nn.Linear(4, 3)
    masks = G.Masks(layer)
    layer.weight.grad = torch.ones_like(layer.weight)  # every position ties: grown ones may be just-dropped ones
    grown = G.regenerate(masks, 0.5)
    assert masks.nnz()[""] == 12 and grown[""] == 6
    assert int((layer.weight == 0).sum()) == 6


def test_masks_travel_in_state_dict_and_adam_state_is_masked(digits):
    model = MLP([64, 32, 10], seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    masks = G.Masks(model)
    masks.randomize(G.erk_densities(masks.shapes(), 0.3), torch.Generator().manual_seed(3))
    nn.functional.cross_entropy(model(digits.x_train[:32]), digits.y_train[:32]).backward()
    opt.step()
    masks.apply(opt)
    for m in masks.modules.values():
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.all(opt.state[m.weight][key][m.weight_mask == 0] == 0)
    state = model.state_dict()
    assert "layers.0.weight_mask" in state
    fresh = MLP([64, 32, 10], seed=9)
    restored = G.Masks(fresh)
    fresh.load_state_dict(state)
    assert restored.nnz() == masks.nnz()


def test_synaptic_operations_count_spikes_times_nonzero_fanout(digits):
    model = SpikingMLP([64, 16, 10], steps=5, seed=0)
    x = digits.x_test[:20]
    dense = synaptic_operations(model, x)
    model.eval()
    with torch.no_grad():
        _, rates = model.run(x)
    manual = sum(float(5 * (r.sum(1) * layer.out_features).mean()) for r, layer in zip(rates, model.layers))

    assert dense["sops"] == pytest.approx(manual, rel=1e-5)
    with torch.no_grad():
        model.layers[0].weight[:, :32] = 0.0
    assert synaptic_operations(model, x)["sops_per_layer"][0] < dense["sops_per_layer"][0]


def test_granet_learns_far_better_than_static_sparse_at_high_sparsity(digits):
    cfg = {**G.DEFAULTS, "epochs": 4, "batch_size": 64, "lr": 0.1, "prune_every": 10}
    results = {method: G.train_one(MLP([64, 64, 10], seed=0), digits, method, 0.03, cfg, seed=0)
               for method in ("granet", "static")}
    assert results["granet"]["density"] == pytest.approx(0.03, abs=1e-3)
    assert results["static"]["density"] == pytest.approx(0.03, abs=1e-3)
    assert results["granet"]["test_accuracy"] > results["static"]["test_accuracy"] + 0.3


def test_bad_config_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown key"):
        G.run_from_config({"epoch": 3}, tmp_path)
    with pytest.raises(ValueError, match="unknown method"):
        G.run_from_config({"methods": ["rigl"]}, tmp_path)
    with pytest.raises(ValueError, match="final_density"):
        G.GraNetSchedule(total_steps=10, final_density=0.5, init_density=0.2)
