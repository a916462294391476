"""Reconstructive Neuron Pruning (RNP; Li et al., ICML 2023): a backdoor defense from a small clean subset D_c.

1. **Unlearning** (neuron level, all weights): gradient *ascent* on the clean loss,
   ``theta <- theta + lr * grad CE(f_theta(D_c))`` (SGD, momentum), stopped at the
   first epoch whose D_c accuracy is ``<= clean_threshold`` (or, ``check_every_step``,
   at the first such step, which avoids the overshoot seen on small networks).
2. **Recovering** (filter level): on the unlearned model put a mask ``m_k in [0, 1]``
   on the scale of every unit ``k`` (BN ``gamma_k * m_k``; for Linear/Conv the unit's
   incoming weights ``W_k * m_k``; biases untouched) and minimise
   ``alpha * CE(f_{theta_u, m}(D_c))`` over the masks only, clamping to [0, 1]
   after each step. The unlearned model typically still carries the backdoor
   (it predicts the target class for everything); restoring clean predictions
   switches off the units that carry it, so their masks fall.
3. **Pruning**: in the *original* backdoored model zero the scale of the units
   with ``m_k <= threshold`` (or the ``ratio`` lowest masks), optionally capped
   at a fraction of each layer and excluding chosen layers. No fine-tuning.

For spiking networks built from ``Linear -> LIFCell`` the same mask on the
Linear's rows is a per-neuron input-current gain, and pruning silences the neuron.
"""

from __future__ import annotations

import copy
import pathlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F
from tqdm import tqdm

from neuro.compat import backdoor as bd
from neuro.compat.common import check_config, minibatches, seeds_of
from neuro.io import save_figure

MASKABLE = (nn.BatchNorm1d, nn.BatchNorm2d, nn.Linear, nn.Conv1d, nn.Conv2d)


def maskable_layers(model: nn.Module, kinds=(nn.BatchNorm1d, nn.BatchNorm2d)) -> dict[str, nn.Module]:
    """Named sub-modules of the given kinds (default: the BN layers, as in the paper), in module order."""
    bad = [k for k in kinds if not issubclass(k, MASKABLE)]
    if bad:
        raise ValueError(f"cannot mask layers of kind {bad}; maskable kinds are {[k.__name__ for k in MASKABLE]}")
    return {name: m for name, m in model.named_modules() if isinstance(m, tuple(kinds))}


def _scaled(weight: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``weight * mask`` broadcast along dim 0 (one mask per output unit)."""
    return weight * mask.view(-1, *([1] * (weight.dim() - 1)))


def masked_forward(model: nn.Module, masks: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``f_{theta, m}(x)``: the model with each masked layer's ``weight`` scaled per unit by its mask."""
    params = {f"{name}.weight": _scaled(model.get_submodule(name).weight, m) for name, m in masks.items()}
    return functional_call(model, params, (x,))


def unlearn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float = 0.01, clean_threshold: float = 0.2,
            max_epochs: int = 20, batch_size: int = 128, seed: int = 0, momentum: float = 0.9,
            weight_decay: float = 5e-4, check_every_step: bool = False) -> list[dict]:
    """Gradient ascent on CE over ``(x, y)`` in train mode, in place, until an epoch's accuracy ``<= clean_threshold``.

    The accuracy is that of the epoch's training batches (the paper); with
    ``check_every_step`` it is the accuracy on all of ``(x, y)`` (train-mode BN)
    after every step, which stops the ascent before it overshoots. Returns one
    ``{"epoch", "loss", "acc"}`` per epoch run.
    """
    if not 0.0 <= clean_threshold <= 1.0:
        raise ValueError(f"clean_threshold must be in [0, 1], got {clean_threshold}")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    model.train()
    history = []
    for epoch in range(max_epochs):
        correct, total_loss = 0, 0.0
        for idx in minibatches(len(x), batch_size, gen):
            out = model(x[idx])
            loss = F.cross_entropy(out, y[idx])
            opt.zero_grad()
            (-loss).backward()
            opt.step()
            correct += int((out.argmax(1) == y[idx]).sum())
            total_loss += float(loss.detach()) * len(idx)
            if check_every_step:
                acc = _train_mode_accuracy(model, x, y)
                if acc <= clean_threshold:
                    history.append({"epoch": epoch, "loss": total_loss / len(x), "acc": acc})
                    return history
        history.append({"epoch": epoch, "loss": total_loss / len(x), "acc": correct / len(x)})
        if history[-1]["acc"] <= clean_threshold:
            break
    return history


@torch.no_grad()
def _train_mode_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy with batch-statistics BN and without touching the running statistics."""
    saved = copy.deepcopy(model)
    acc = float((model(x).argmax(1) == y).float().mean())
    model.load_state_dict(saved.state_dict())
    return acc


def recover_masks(model: nn.Module, x: torch.Tensor, y: torch.Tensor, layers: list[str], epochs: int = 20,
                  lr: float = 0.2, alpha: float = 0.2, batch_size: int = 128, seed: int = 0,
                  momentum: float = 0.9) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Learn masks in [0, 1] (init 1) on ``layers`` of the unlearned ``model`` minimising ``alpha * CE``.

    Only the masks are optimised (SGD with momentum, clamped to [0, 1] after every
    step); the model is in train mode, so BN running statistics move as in the
    paper. Returns ``(masks, history)``.
    """
    if not layers:
        raise ValueError("recover_masks needs at least one layer to mask")
    masks = {name: torch.ones(model.get_submodule(name).weight.shape[0], requires_grad=True) for name in layers}
    for p in model.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(masks.values(), lr=lr, momentum=momentum)
    model.train()
    history = []
    for epoch in range(epochs):
        correct, total_loss = 0, 0.0
        for idx in minibatches(len(x), batch_size, gen):
            out = masked_forward(model, masks, x[idx])
            loss = alpha * F.cross_entropy(out, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                for m in masks.values():
                    m.clamp_(0.0, 1.0)
            correct += int((out.argmax(1) == y[idx]).sum())
            total_loss += float(loss.detach()) * len(idx)
        history.append({"epoch": epoch, "loss": total_loss / len(x), "acc": correct / len(x)})
    return {k: v.detach().clone() for k, v in masks.items()}, history


def select_units(masks: dict[str, torch.Tensor], threshold: float | None = None, ratio: float | None = None,
                 layer_cap: float = 1.0, exclude=()) -> dict[str, torch.Tensor]:
    """Units to prune: ``m <= threshold``, or the ``ratio`` fraction of all units with the lowest masks.

    Candidates are taken in ascending mask order; a layer stops accepting units
    once it holds ``floor(layer_cap * size)`` of them; layers in ``exclude`` are
    never pruned. Returns ``{layer: sorted unit indices}`` (empty layers omitted).
    """
    if (threshold is None) == (ratio is None):
        raise ValueError("select_units needs exactly one of threshold or ratio")
    if not 0.0 <= layer_cap <= 1.0:
        raise ValueError(f"layer_cap must be in [0, 1], got {layer_cap}")
    unknown = sorted(set(exclude) - set(masks))
    if unknown:
        raise ValueError(f"exclude names unknown layers {unknown}; masked layers are {sorted(masks)}")
    entries = sorted((float(v), name, i) for name, m in masks.items() if name not in exclude
                     for i, v in enumerate(m.tolist()))
    if ratio is not None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"pruning ratio must be in [0, 1], got {ratio}")
        budget = int(round(ratio * sum(m.numel() for m in masks.values())))
    else:
        budget = len(entries)
    caps = {name: int(np.floor(layer_cap * m.numel())) for name, m in masks.items()}
    chosen: dict[str, list[int]] = {}
    taken = 0
    for value, name, i in entries:
        if taken >= budget or (threshold is not None and value > threshold):
            break
        if len(chosen.get(name, [])) < caps[name]:
            chosen.setdefault(name, []).append(i)
            taken += 1
    return {name: torch.tensor(sorted(idx), dtype=torch.long) for name, idx in chosen.items()}


@torch.no_grad()
def trigger_scores(model: nn.Module, x_clean: torch.Tensor, x_triggered: torch.Tensor,
                   layers: list[str]) -> dict[str, torch.Tensor]:
    """Oracle unit ranking that *knows the trigger* (a diagnostic baseline for the masks, not part of RNP).

    ``a_k(x)`` is unit ``k``'s mean rectified output ``mean relu(h_k)`` over images and positions (eval mode);
    the score ``s_k = -(a_k(T(x)) - a_k(x)) / mean_j (a_j(T(x)) + a_j(x))`` (mean over the unit's layer) is
    lowest for the units the trigger excites most, so :func:`select_units` takes them first, as it takes low masks.
    """
    acts: dict[str, torch.Tensor] = {}

    def record(name):
        def hook(module, inputs, out):
            acts[name] = out.clamp(min=0).mean(dim=[0, *range(2, out.dim())])  # over images and positions
        return hook

    hooks = [model.get_submodule(name).register_forward_hook(record(name)) for name in layers]
    was_training = model.training
    model.eval()
    try:
        model(x_clean)
        clean = dict(acts)
        model(x_triggered)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return {name: -(acts[name] - clean[name]) / (acts[name] + clean[name]).mean().clamp(min=1e-6) for name in layers}


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """A copy of ``model`` with each masked layer's ``weight`` scaled per unit: the model ``f_{theta, m}``."""
    scaled = copy.deepcopy(model)
    with torch.no_grad():
        for name, m in masks.items():
            layer = scaled.get_submodule(name)
            layer.weight.copy_(_scaled(layer.weight, m))
    return scaled


def prune(model: nn.Module, selection: dict[str, torch.Tensor]) -> nn.Module:
    """A copy of ``model`` with the selected units' scale zeroed (BN ``gamma_k = 0``; Linear/Conv row ``W_k = 0``)."""
    masks = {}
    for name, idx in selection.items():
        masks[name] = torch.ones(model.get_submodule(name).weight.shape[0])
        masks[name][idx] = 0.0
    return apply_masks(model, masks)


# --------------------------------------------------------------------------- the digits experiment

DEFAULTS = {
    "seeds": [0, 1, 2],
    "test_fraction": 0.3,
    "upsample": 1,
    "trigger_size": 3,
    "trigger_pattern": "solid",
    "target": 0,
    "poison_rate": 0.1,
    "defense_fraction": 0.1,
    "width": 64,
    "stages": 2,
    "blocks": 1,
    "train_epochs": 30,
    "train_lr": 0.05,
    "batch_size": 64,
    "unlearn_lr": 0.01,
    "clean_threshold": 0.2,
    "unlearn_max_epochs": 20,
    "unlearn_check_every_step": True,
    "mask_epochs": 20,
    "mask_lr": 0.2,
    "mask_alpha": 0.2,
    "defense_batch_size": 32,
    "prune_threshold": None,
    "prune_ratio": 0.12,
    "layer_cap": 0.25,
    "exclude": ["first"],
    "sweep_thresholds": [0.0, 0.05, 0.1, 0.2, 0.3],
    "sweep_ratios": [0.02, 0.05, 0.08, 0.1, 0.11, 0.12, 0.13, 0.15, 0.2],
}


def _validate(config: dict) -> dict:
    cfg = check_config(config, DEFAULTS, "rnp config")
    cfg["seeds"] = seeds_of(cfg)
    if not 0.0 < cfg["defense_fraction"] < 1.0:
        raise ValueError(f"rnp config: defense_fraction must be in (0, 1), got {cfg['defense_fraction']}")
    if (cfg["prune_threshold"] is None) == (cfg["prune_ratio"] is None):
        raise ValueError("rnp config: set only one of prune_threshold and prune_ratio (the other to null)")
    return cfg


def _resolve_exclude(names: list[str], layers: list[str]) -> list[str]:
    """``"first"``/``"last"`` name the first/last masked layer; other entries must be layer names."""
    alias = {"first": layers[0], "last": layers[-1]}
    return [alias.get(n, n) for n in names]


@dataclass
class Testbed:
    """A backdoored model with its data: the defender's clean subset and the clean test set."""

    model: nn.Module
    trigger: bd.Trigger
    x_defense: torch.Tensor
    y_defense: torch.Tensor
    x_test: np.ndarray
    y_test: np.ndarray
    n_poisoned: int

    def metrics(self, model: nn.Module, cfg: dict) -> dict:
        return bd.backdoor_metrics(model, self.x_test, self.y_test, self.trigger, cfg["target"])


def build_testbed(cfg: dict, seed: int) -> Testbed:
    """Poison digits (BadNets) and train a ResidualCNN on it; D_c is a clean random subset of the training images.

    D_c is drawn with its own generator, so its size does not change the poisoned set or the model.
    """
    torch.manual_seed(seed)
    trigger = bd.Trigger(cfg["trigger_size"], cfg["trigger_pattern"])
    x_tr, y_tr, x_te, y_te = bd.load_digits_images(cfg["test_fraction"], seed)
    x_tr, x_te = bd.upsample_images(x_tr, cfg["upsample"]), bd.upsample_images(x_te, cfg["upsample"])
    x_p, y_p, poisoned = bd.poison(x_tr, y_tr, trigger, cfg["poison_rate"], cfg["target"],
                                   np.random.default_rng(seed))
    n_defense = int(round(cfg["defense_fraction"] * len(y_tr)))
    defense_idx = np.random.default_rng([seed, 1]).choice(len(y_tr), size=n_defense, replace=False)
    model = bd.ResidualCNN(cfg["width"], cfg["stages"], cfg["blocks"])
    bd.train_backdoored(model, bd.to_tensor(x_p), torch.as_tensor(y_p), cfg["train_epochs"],
                        cfg["train_lr"], cfg["batch_size"], seed)
    return Testbed(model, trigger, bd.to_tensor(x_tr[defense_idx]),
                   torch.as_tensor(y_tr[defense_idx]), x_te, y_te, len(poisoned))


def defend(cfg: dict, bed: Testbed, seed: int) -> dict:
    """RNP on ``bed.model`` (left untouched): metrics before, after unlearning and after pruning, the sweep of
    pruning thresholds/ratios, and the same ratios ranked by :func:`trigger_scores` (the oracle baseline)."""
    model = bed.model
    unlearned = copy.deepcopy(model)
    unlearn_hist = unlearn(unlearned, bed.x_defense, bed.y_defense, cfg["unlearn_lr"], cfg["clean_threshold"],
                           cfg["unlearn_max_epochs"], cfg["defense_batch_size"], seed,
                           check_every_step=cfg["unlearn_check_every_step"])
    after_unlearn = bed.metrics(unlearned, cfg)
    layers = list(maskable_layers(model))
    masks, mask_hist = recover_masks(unlearned, bed.x_defense, bed.y_defense, layers, cfg["mask_epochs"],
                                     cfg["mask_lr"], cfg["mask_alpha"], cfg["defense_batch_size"], seed)
    after_recovery = bed.metrics(apply_masks(unlearned, masks), cfg)
    exclude = _resolve_exclude(cfg["exclude"], layers)
    selection = select_units(masks, cfg["prune_threshold"], cfg["prune_ratio"], cfg["layer_cap"], exclude)

    def pruned_metrics(scores, **by):
        sel = select_units(scores, by.get("threshold"), by.get("ratio"), cfg["layer_cap"], exclude)
        return {**by, "pruned": sum(len(v) for v in sel.values()), **bed.metrics(prune(model, sel), cfg)}

    sweep = [pruned_metrics(masks, **{key: float(v)}) for key in ("threshold", "ratio") for v in cfg[f"sweep_{key}s"]]
    oracle = trigger_scores(model, bd.to_tensor(bed.x_test), bd.to_tensor(bed.trigger.apply(bed.x_test)), layers)
    return {
        "seed": seed,
        "n_poisoned": bed.n_poisoned,
        "n_defense": len(bed.y_defense),
        "before": bed.metrics(model, cfg),
        "after_unlearning": after_unlearn,
        "unlearning_epochs": len(unlearn_hist),
        "unlearning": unlearn_hist,
        "mask_recovery": mask_hist,
        "after_recovery": after_recovery,
        "after": bed.metrics(prune(model, selection), cfg),
        "pruned_per_layer": {name: len(idx) for name, idx in selection.items()},
        "pruned_total": sum(len(idx) for idx in selection.values()),
        "units_total": sum(m.numel() for m in masks.values()),
        "masks": {name: m.tolist() for name, m in masks.items()},
        "sweep": sweep,
        "oracle_sweep": [pruned_metrics(oracle, ratio=float(v)) for v in cfg["sweep_ratios"]],
    }


def _plot(runs: list[dict], out_dir: pathlib.Path) -> list[str]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(21, 4))
    panels = (("sweep", "threshold", "RNP: prune by mask threshold"), ("sweep", "ratio", "RNP: prune by mask ratio"),
              ("oracle_sweep", "ratio", "oracle (knows the trigger): prune by ratio"))
    for ax, (field, key, title) in zip(axes[:3], panels):
        for r in runs:
            points = [s for s in r[field] if key in s]
            xs = [s[key] for s in points]
            (line,) = ax.plot(xs, [100 * s["asr"] for s in points], "o-", label=f"ASR seed {r['seed']}")
            ax.plot(xs, [100 * s["clean_acc"] for s in points], "s--", color=line.get_color(),
                    label=f"CA seed {r['seed']}")
        ax.set(xlabel=f"pruning {key}", ylabel="%", title=title)
        ax.legend(fontsize=7)
    for r in runs:
        values = np.sort(np.concatenate([np.asarray(v) for v in r["masks"].values()]))
        axes[3].plot(values, np.linspace(0, 1, len(values)), label=f"seed {r['seed']}")
    axes[3].set(xlabel="recovered mask value", ylabel="fraction of units", title="mask distribution (CDF)")
    axes[3].legend(fontsize=7)
    save_figure(fig, out_dir / "rnp_sweep.png")
    return ["rnp_sweep.png"]


def run_from_config(config: dict, out_dir: pathlib.Path) -> dict:
    """Run the RNP digits experiment for every seed; write ``rnp_sweep.png``; return the JSON-able report."""
    cfg = _validate(config)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = [defend(cfg, build_testbed(cfg, s), s) for s in tqdm(cfg["seeds"], desc="rnp seeds")]

    def mean(stage, key):
        return float(np.mean([r[stage][key] for r in runs]))

    summary = {stage: {key: mean(stage, key) for key in ("clean_acc", "asr")}
               for stage in ("before", "after_unlearning", "after_recovery", "after")}
    summary["clean_acc_drop_points"] = 100 * (summary["before"]["clean_acc"] - summary["after"]["clean_acc"])
    summary["max_asr_after"] = max(r["after"]["asr"] for r in runs)
    summary["max_clean_acc_drop_points"] = max(100 * (r["before"]["clean_acc"] - r["after"]["clean_acc"])
                                               for r in runs)
    return {"method": "rnp", "config": cfg, "summary": summary, "runs": runs, "plots": _plot(runs, out_dir)}
