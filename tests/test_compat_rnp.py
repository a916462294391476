"""RNP and its BadNets digits testbed: trigger, poisoning, metrics, unlearning, mask recovery, pruning."""

import numpy as np
import pytest
import torch
from torch import nn

from neuro.compat import backdoor as bd
from neuro.compat import rnp

TARGET = 0


def test_trigger_stamps_the_bottom_right_corner_only():
    images = np.full((2, 8, 8), 0.25, dtype=np.float32)
    solid = bd.Trigger(3, "solid").apply(images)
    assert (solid[:, 5:, 5:] == 1.0).all()
    assert (solid[:, :5, :] == 0.25).all() and (solid[:, :, :5] == 0.25).all()
    assert (images == 0.25).all()  # the input is not modified
    grid = bd.Trigger(3, "grid").apply(images)[0, 5:, 5:]
    assert grid.tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
    with pytest.raises(ValueError, match="pattern"):
        bd.Trigger(3, "star")


def test_upsampling_repeats_pixels_and_the_trigger_keeps_its_pixel_size():
    image = np.arange(4, dtype=np.float32).reshape(1, 2, 2) / 4
    up = bd.upsample_images(image, 3)
    assert up.shape == (1, 6, 6) and (up[0, :3, :3] == 0).all() and (up[0, 3:, 3:] == 0.75).all()
    assert torch.equal(bd.to_tensor(image, 3), torch.as_tensor(up).unsqueeze(1))
    stamped = bd.Trigger(2).apply(bd.upsample_images(np.zeros((1, 8, 8)), 2))
    assert stamped.sum() == 4 and (stamped[0, -2:, -2:] == 1).all()  # 2x2 pixels of the 16x16 image
    with pytest.raises(ValueError, match="upsample factor"):
        bd.upsample_images(image, 0)


def test_poison_relabels_only_non_target_samples():
    rng = np.random.default_rng(0)
    x = rng.random((100, 8, 8)).astype(np.float32)
    y = np.arange(100) % 10
    x_p, y_p, idx = bd.poison(x, y, bd.Trigger(2), 0.1, TARGET, rng)
    assert len(idx) == 10 and (y[idx] != TARGET).all()
    assert (y_p[idx] == TARGET).all() and (x_p[idx][:, 6:, 6:] == 1.0).all()
    rest = np.setdiff1d(np.arange(100), idx)
    assert np.array_equal(x_p[rest], x[rest]) and np.array_equal(y_p[rest], y[rest])
    with pytest.raises(ValueError, match="non-target"):
        bd.poison(x, y, bd.Trigger(2), 0.95, TARGET, rng)


def test_metrics_on_hand_made_predictions():
    labels = torch.tensor([0, 1, 2, 3, 4])
    assert bd.clean_accuracy(torch.tensor([0, 1, 0, 3, 0]), labels) == 0.6
    # non-target images are 1, 2, 3, 4; two of them go to the target
    assert bd.attack_success_rate(torch.tensor([0, 0, 2, 0, 4]), labels, TARGET) == 0.5
    with pytest.raises(ValueError, match="non-target"):
        bd.attack_success_rate(torch.tensor([0]), torch.tensor([0]), TARGET)


class CornerDetector(nn.Module):
    """Hand-made backdoored model: class 0 when the bottom-right pixel is bright, else class 1."""

    def forward(self, x):
        corner = x[:, 0, -1, -1]
        return torch.stack([corner, 0.5 * torch.ones_like(corner)] + [torch.zeros_like(corner)] * 8, dim=1)


def test_backdoor_metrics_of_a_hand_made_model():
    x = np.zeros((6, 8, 8), dtype=np.float32)
    y = np.array([1, 1, 1, 0, 2, 2])
    metrics = bd.backdoor_metrics(CornerDetector(), x, y, bd.Trigger(2), TARGET, upsample=2)
    assert metrics == {"clean_acc": 0.5, "asr": 1.0}


def _bn_mlp(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, 10))


@pytest.fixture(scope="module")
def testbed(one_thread):
    """A BN-MLP trained on poisoned digits and one trained on clean digits (the baseline)."""
    x_tr, y_tr, x_te, y_te = bd.load_digits_images(0.3, seed=0)
    trigger = bd.Trigger(3, "solid")
    x_p, y_p, _ = bd.poison(x_tr, y_tr, trigger, 0.1, TARGET, np.random.default_rng(0))
    models = {}
    for name, (x, y) in {"backdoored": (x_p, y_p), "clean": (x_tr, y_tr)}.items():
        models[name] = _bn_mlp(0)
        bd.train_backdoored(models[name], bd.to_tensor(x), torch.as_tensor(y), epochs=10, lr=0.05,
                            batch_size=64, seed=0)
    return models, trigger, (x_tr[:150], y_tr[:150]), (x_te, y_te)


def test_badnets_backdoor_works_against_a_clean_baseline(testbed):
    models, trigger, _, (x_te, y_te) = testbed
    poisoned = bd.backdoor_metrics(models["backdoored"], x_te, y_te, trigger, TARGET)
    clean = bd.backdoor_metrics(models["clean"], x_te, y_te, trigger, TARGET)
    assert poisoned["asr"] > 0.95 and poisoned["clean_acc"] > 0.95
    assert clean["asr"] < 0.5 and clean["clean_acc"] > 0.95


def test_unlearning_stops_at_the_clean_threshold(testbed):
    models, _, (x_c, y_c), _ = testbed
    model = rnp.copy.deepcopy(models["backdoored"])
    x, y = bd.to_tensor(x_c), torch.as_tensor(y_c)
    history = rnp.unlearn(model, x, y, lr=0.03, clean_threshold=0.2, max_epochs=50, batch_size=32)
    assert history[-1]["acc"] <= 0.2 < min(h["acc"] for h in history[:-1])
    stepwise = rnp.copy.deepcopy(models["backdoored"])
    history = rnp.unlearn(stepwise, x, y, lr=0.03, clean_threshold=0.2, max_epochs=50, batch_size=32,
                          check_every_step=True)
    assert history[-1]["acc"] <= 0.2 and len(history) <= 50


def test_mask_recovery_keeps_masks_in_unit_interval_and_weights_fixed(testbed):
    models, _, (x_c, y_c), _ = testbed
    model = rnp.copy.deepcopy(models["backdoored"])
    x, y = bd.to_tensor(x_c), torch.as_tensor(y_c)
    rnp.unlearn(model, x, y, lr=0.03, clean_threshold=0.2, max_epochs=50, batch_size=32)
    weights = {k: v.clone() for k, v in model.named_parameters()}
    layers = list(rnp.maskable_layers(model))
    assert layers == ["2"]
    masks, history = rnp.recover_masks(model, x, y, layers, epochs=5, lr=5.0, batch_size=32)
    m = masks["2"]
    assert m.shape == (128,) and (m >= 0).all() and (m <= 1).all() and (m < 1).any()
    assert all(torch.equal(weights[k], v) for k, v in model.named_parameters())
    assert history[-1]["loss"] < history[0]["loss"]  # the masks do recover clean loss
    model.eval()
    assert torch.allclose(rnp.masked_forward(model, masks, x), rnp.apply_masks(model, masks)(x), atol=1e-5)


def test_select_units_by_threshold_ratio_cap_and_exclusion():
    masks = {"a": torch.tensor([0.0, 0.5, 0.125, 0.875]), "b": torch.tensor([0.0625, 0.25])}
    by_thr = rnp.select_units(masks, threshold=0.125)
    assert {k: v.tolist() for k, v in by_thr.items()} == {"a": [0, 2], "b": [0]}
    by_ratio = rnp.select_units(masks, ratio=0.5)  # 3 of 6 units, lowest masks first
    assert {k: v.tolist() for k, v in by_ratio.items()} == {"a": [0, 2], "b": [0]}
    capped = rnp.select_units(masks, threshold=0.625, layer_cap=0.25)  # at most 1 unit per layer of 4, 0 of 2
    assert {k: v.tolist() for k, v in capped.items()} == {"a": [0]}
    excluded = rnp.select_units(masks, threshold=0.625, exclude=["a"])
    assert {k: v.tolist() for k, v in excluded.items()} == {"b": [0, 1]}
    with pytest.raises(ValueError, match="exactly one"):
        rnp.select_units(masks, threshold=0.1, ratio=0.1)
    with pytest.raises(ValueError, match="unknown layers"):
        rnp.select_units(masks, threshold=0.1, exclude=["c"])


def test_prune_zeroes_exactly_the_selected_scales(testbed):
    models, *_ = testbed
    model = models["backdoored"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pruned = rnp.prune(model, {"2": torch.tensor([3, 7, 100])})
    gamma = pruned.state_dict()["2.weight"]
    assert (gamma[[3, 7, 100]] == 0).all()
    keep = torch.ones(128, dtype=torch.bool)
    keep[[3, 7, 100]] = False
    assert torch.equal(gamma[keep], before["2.weight"][keep])
    assert all(torch.equal(pruned.state_dict()[k], v) for k, v in before.items() if k != "2.weight")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())  # the original is untouched


def test_trigger_scores_rank_the_trigger_detector_first():
    """Unit 0 reads the bottom-right pixel (where the trigger goes), units 1 and 2 read pixels it never touches."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3, bias=False), nn.BatchNorm1d(3))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[[0, 1, 2], [63, 0, 27]] = 1.0
    x = np.full((4, 8, 8), 0.5, dtype=np.float32)
    scores = rnp.trigger_scores(model, bd.to_tensor(x), bd.to_tensor(bd.Trigger(2).apply(x)), ["2"])["2"]
    assert scores[0] < 0 and torch.allclose(scores[1:], torch.zeros(2))
    assert rnp.select_units({"2": scores}, ratio=1 / 3)["2"].tolist() == [0]
    assert model.training  # the mode is restored


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="unknown key"):
        rnp.run_from_config({"widht": 8}, tmp_path)
    with pytest.raises(ValueError, match="only one of prune_threshold and prune_ratio"):
        rnp.run_from_config({"prune_threshold": 0.2}, tmp_path)
