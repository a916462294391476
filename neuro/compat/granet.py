"""GraNet (Liu et al., NeurIPS 2021): gradual magnitude pruning with zero-cost neuroregeneration.

Masks live on every ``nn.Linear``/``nn.Conv{1,2,3}d`` weight as a buffer
``weight_mask`` (so ``model.state_dict()`` carries them). After each optimiser
step :meth:`Masks.apply` zeroes masked weights and their optimiser state
(SGD momentum, Adam moments). Every ``prune_every`` steps ``t`` from
``prune_start`` on, with ``k = t // prune_every`` (``k0``, ``kf`` for the start
and end steps):

1. **Gradual magnitude pruning** (Zhu & Gupta cubic schedule), global over layers,
   for ``k0 <= k <= kf``: keep the ``(1 - s_k) N`` weights of largest ``|w|``, with
   ``s_k = s_i + (s_f - s_i) (1 - (1 - (k - k0) / (kf - k0))^3)``, so the last
   event lands exactly on the final sparsity ``s_f``.
2. **Zero-cost neuroregeneration**, per layer, at every event until training ends:
   drop the ``ceil(r_t nnz)`` active weights of smallest ``|w|`` and regrow as many
   inactive connections of largest ``|dL/dw|`` (the dense mini-batch gradient;
   for a spiking net trained by BPTT it is ``sum_t dL/dw``). Regrown weights and
   their optimiser state start at exactly 0; each layer's non-zero count is kept.
   ``r_t = r_min + (r_0 - r_min)(1 + cos(pi t / T)) / 2`` (cosine decay).

Variants: dense-to-sparse (``init_density = 1``), sparse-to-sparse (random ERK
mask at ``init_density``, then the same schedule), GMP (regeneration off), and
static sparse training (random ERK mask at the final density, never changed).
ERK gives layer ``l`` density ``p_l = eps * sum(shape_l) / prod(shape_l)``,
layers with ``p_l > 1`` made dense and ``eps`` re-solved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from neuro.compat.common import (
    MLP,
    accuracy,
    check_config,
    load_digits_split,
    mean_std,
    seeds_of,
    train_classifier,
)

MASKABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
METHODS = ("dense", "static", "gmp", "granet", "granet_s2s")


def erk_densities(shapes: dict, density: float) -> dict:
    """Erdos-Renyi-kernel densities per layer whose weighted mean is ``density`` (module doc)."""
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    raw = {name: sum(shape) / sizes[name] for name, shape in shapes.items()}
    dense: set = set()
    while True:
        budget = density * sum(sizes.values()) - sum(sizes[n] for n in dense)
        eps = budget / sum(raw[n] * sizes[n] for n in raw if n not in dense)
        over = {n for n in raw if n not in dense and eps * raw[n] > 1.0}
        if not over:
            return {n: 1.0 if n in dense else eps * raw[n] for n in raw}
        dense |= over


class Masks:
    """Binary masks on the weights of every maskable module of ``model`` (buffers ``weight_mask``).

    Existing ``weight_mask`` buffers (e.g. loaded from a checkpoint) are reused; new
    ones start dense. To restore a checkpoint: build the model, ``Masks(model)``,
    then ``model.load_state_dict(state)``.
    """

    def __init__(self, model: nn.Module):
        self.modules = {name: m for name, m in model.named_modules() if isinstance(m, MASKABLE)}
        if not self.modules:
            raise ValueError("model has no nn.Linear/nn.Conv weights to mask")
        for m in self.modules.values():
            if not hasattr(m, "weight_mask"):
                m.register_buffer("weight_mask", torch.ones_like(m.weight))

    def mask(self, name: str) -> torch.Tensor:
        return self.modules[name].weight_mask

    def weight(self, name: str) -> torch.Tensor:
        return self.modules[name].weight

    def shapes(self) -> dict:
        return {name: tuple(m.weight.shape) for name, m in self.modules.items()}

    def nnz(self) -> dict:
        """Active connections per layer (mask sums)."""
        return {name: int(m.weight_mask.sum()) for name, m in self.modules.items()}

    def size(self) -> int:
        return sum(m.weight.numel() for m in self.modules.values())

    def density(self) -> float:
        return sum(self.nnz().values()) / self.size()

    @torch.no_grad()
    def randomize(self, densities: dict, generator: torch.Generator) -> None:
        """Random masks with exactly ``round(p_l * n_l)`` active entries in layer ``l``."""
        for name, p in densities.items():
            mask = self.mask(name)
            keep = torch.randperm(mask.numel(), generator=generator)[:round(p * mask.numel())]
            mask.zero_().view(-1)[keep] = 1.0

    @torch.no_grad()
    def apply(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """``w *= mask`` and the same for every weight-shaped optimiser state (momentum, Adam moments)."""
        for m in self.modules.values():
            m.weight.mul_(m.weight_mask)
            for state in _weight_states(optimizer, m.weight):
                state.mul_(m.weight_mask)

    @torch.no_grad()
    def zero_entries(self, name: str, where: torch.Tensor, optimizer=None) -> None:
        """Set weight and optimiser state to 0 where ``where`` (bool, weight-shaped) is true."""
        weight = self.weight(name)
        weight[where] = 0.0
        for state in _weight_states(optimizer, weight):
            state[where] = 0.0


def _weight_states(optimizer, weight: torch.Tensor):
    if optimizer is None:
        return []
    return [v for v in optimizer.state.get(weight, {}).values()
            if torch.is_tensor(v) and v.shape == weight.shape]


def cubic_sparsity(k: int, k0: int, kf: int, s_i: float, s_f: float) -> float:
    """Zhu & Gupta's cubic schedule at pruning event ``k`` (``s_i`` at ``k0``, ``s_f`` from ``kf`` on)."""
    if kf <= k0:
        return s_f
    frac = min(max((k - k0) / (kf - k0), 0.0), 1.0)
    return s_i + (s_f - s_i) * (1.0 - (1.0 - frac) ** 3)


def cosine_decay(t: int, total: int, r0: float, r_min: float = 0.0) -> float:
    """``r_min + (r0 - r_min)(1 + cos(pi t / total)) / 2``, held at ``r_min`` after ``total``."""
    return r_min + (r0 - r_min) * 0.5 * (1.0 + math.cos(math.pi * min(t / total, 1.0)))


@torch.no_grad()
def global_magnitude_prune(masks: Masks, n_keep: int, optimizer=None) -> None:
    """Keep the ``n_keep`` active weights of largest ``|w|`` over all layers; mask the rest."""
    names = list(masks.modules)
    scores = torch.cat([torch.where(masks.mask(n) > 0, masks.weight(n).abs(), -1.0).flatten() for n in names])
    keep = torch.zeros_like(scores)
    keep[torch.topk(scores, n_keep).indices] = 1.0
    offset = 0
    for n in names:
        mask = masks.mask(n)
        mask.copy_(keep[offset:offset + mask.numel()].view_as(mask))
        offset += mask.numel()
    masks.apply(optimizer)


@torch.no_grad()
def regenerate(masks: Masks, rate: float, optimizer=None) -> dict:
    """Neuroregeneration (module doc, step 2); returns the number of connections regrown per layer."""
    grown = {}
    for name in masks.modules:
        mask, weight = masks.mask(name), masks.weight(name)
        if weight.grad is None:
            raise ValueError(f"regenerate needs the gradient of {name}.weight; call it after backward()")
        active = mask.flatten() > 0
        n_move = math.ceil(rate * int(active.sum()))
        if n_move == 0:
            grown[name] = 0
            continue
        drop = torch.topk(torch.where(active, weight.abs().flatten(), math.inf), n_move, largest=False).indices
        active[drop] = False
        grow = torch.topk(torch.where(active, -1.0, weight.grad.abs().flatten()), n_move).indices
        active[grow] = True
        mask.copy_(active.view_as(mask).to(mask.dtype))
        regrown = torch.zeros_like(active)
        regrown[grow] = True
        masks.zero_entries(name, regrown.view_as(mask), optimizer)
        grown[name] = n_move
    masks.apply(optimizer)
    return grown


@dataclass(frozen=True)
class GraNetSchedule:
    """When and how much to prune/regenerate (module doc). Steps count optimiser steps from 1."""

    total_steps: int
    final_density: float
    init_density: float = 1.0
    prune_every: int = 50
    prune_start: int = 0
    prune_end: int | None = None
    regen_rate: float = 0.5
    regen_min: float = 0.0
    regenerate: bool = True

    def __post_init__(self):
        if not 0.0 < self.final_density <= self.init_density <= 1.0:
            raise ValueError(f"need 0 < final_density <= init_density <= 1, got {self.final_density}, "
                             f"{self.init_density}")
        if self.prune_every < 1 or self.total_steps < 1:
            raise ValueError("prune_every and total_steps must be >= 1")
        if not 0.0 <= self.regen_min <= self.regen_rate <= 1.0:
            raise ValueError(f"need 0 <= regen_min <= regen_rate <= 1, got {self.regen_min}, {self.regen_rate}")

    @property
    def end(self) -> int:
        return self.total_steps // 2 if self.prune_end is None else self.prune_end


class GraNet:
    """Drives :class:`Masks` through a :class:`GraNetSchedule`; call :meth:`step` after ``optimizer.step()``.

    A schedule with ``init_density < 1`` starts from a random ERK mask at that density
    (drawn with ``generator``). ``history`` records ``(step, density, regrown)`` at every event.
    """

    def __init__(self, model: nn.Module, optimizer, schedule: GraNetSchedule, generator: torch.Generator):
        self.masks, self.optimizer, self.schedule = Masks(model), optimizer, schedule
        if schedule.init_density < 1.0:
            self.masks.randomize(erk_densities(self.masks.shapes(), schedule.init_density), generator)
        self.masks.apply(optimizer)
        self.history: list[dict] = []

    def target_density(self, step: int) -> float:
        s = self.schedule
        k, k0, kf = step // s.prune_every, s.prune_start // s.prune_every, s.end // s.prune_every
        return 1.0 - cubic_sparsity(k, k0, kf, 1.0 - s.init_density, 1.0 - s.final_density)

    def step(self, step: int) -> None:
        """Mask weights/state; at event steps prune to the schedule and regenerate (``step`` from 1)."""
        s = self.schedule
        self.masks.apply(self.optimizer)
        if step < s.prune_start or step % s.prune_every:
            return
        if step // s.prune_every <= s.end // s.prune_every:
            n_keep = round(self.target_density(step) * self.masks.size())
            if n_keep < sum(self.masks.nnz().values()):
                global_magnitude_prune(self.masks, n_keep, self.optimizer)
        regrown = {}
        if s.regenerate:
            regrown = regenerate(self.masks, cosine_decay(step, s.total_steps, s.regen_rate, s.regen_min),
                                 self.optimizer)
        self.history.append({"step": step, "density": self.masks.density(), "regrown": sum(regrown.values())})


def method_schedule(method: str, total_steps: int, density: float, cfg: dict) -> GraNetSchedule | None:
    """The schedule of one compared method (``dense`` -> None)."""
    if method not in METHODS:
        raise ValueError(f"unknown GraNet method {method!r}; expected one of {METHODS}")
    if method == "dense":
        return None
    end = round(cfg["prune_end_fraction"] * total_steps)
    common = dict(total_steps=total_steps, final_density=density, prune_every=cfg["prune_every"],
                  prune_start=round(cfg["prune_start_fraction"] * total_steps), prune_end=end,
                  regen_rate=cfg["regen_rate"])
    if method == "static":
        return GraNetSchedule(**{**common, "prune_start": total_steps + 1}, init_density=density,
                              regenerate=False)
    if method == "gmp":
        return GraNetSchedule(**common, regenerate=False)
    if method == "granet":
        return GraNetSchedule(**common)
    return GraNetSchedule(**common, init_density=max(cfg["s2s_init_density"], density))


def train_one(model: nn.Module, split, method: str, density: float, cfg: dict, seed: int, desc=None) -> dict:
    """Train ``model`` on ``split`` with one method; returns accuracy, density, nnz per layer, events."""
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                                weight_decay=cfg["weight_decay"], nesterov=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg["epochs"])
    steps_per_epoch = math.ceil(len(split.x_train) / cfg["batch_size"])
    schedule = method_schedule(method, cfg["epochs"] * steps_per_epoch, density, cfg)
    granet = None
    if schedule is not None:
        granet = GraNet(model, optimizer, schedule, torch.Generator().manual_seed(seed + 7919))
    train_classifier(model, split.x_train, split.y_train, optimizer, epochs=cfg["epochs"],
                     batch_size=cfg["batch_size"], seed=seed, scheduler=scheduler, desc=desc,
                     after_step=None if granet is None else (lambda step: granet.step(step + 1)))
    result = {"method": method, "target_density": density if granet else 1.0,
              "test_accuracy": accuracy(model, split.x_test, split.y_test)}
    if granet is not None:
        result.update(density=granet.masks.density(), nnz=granet.masks.nnz(), events=granet.history)
    return result


DEFAULTS = {
    "seeds": [0, 1, 2],
    "sparsities": [0.9, 0.95, 0.98],
    "methods": list(METHODS),
    "hidden": [300, 100],
    "epochs": 100,
    "batch_size": 64,
    "lr": 0.05,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "prune_every": 50,
    "prune_start_fraction": 0.0,
    "prune_end_fraction": 0.5,
    "regen_rate": 0.5,
    "s2s_init_density": 0.5,
    "snn": {
        "enabled": True,
        "hidden": [256],
        "steps": 16,
        "epochs": 20,
        "lr": 0.05,
        "sparsities": [0.9, 0.98],
        "methods": ["dense", "static", "gmp", "granet"],
    },
    "network": {
        "enabled": False,
        "dataset": "rate_digits",
        "time_steps": 16,
        "hidden": [256],
        "epochs": 20,
        "lr": 0.05,
        "sparsities": [0.9, 0.95, 0.98],
        "methods": ["dense", "static", "gmp", "granet"],
        "timing_repeats": 3,
    },
}
SNN_KEYS = DEFAULTS["snn"]
NETWORK_KEYS = DEFAULTS["network"]


def _compare(build, split, cfg: dict, seeds, sparsities, methods, label: str, extra=None) -> list[dict]:
    """Every (method, sparsity, seed) run; ``build(seed)`` makes a fresh model, ``extra(model)`` adds fields."""
    rows = []
    for method in methods:
        for density in ([1.0] if method == "dense" else [1.0 - s for s in sparsities]):
            for seed in seeds:
                model = build(seed)
                row = train_one(model, split, method, density, cfg, seed,
                                desc=f"{label} {method} d={density:.2f} seed {seed}")
                row.update(seed=seed, sparsity=round(1.0 - density, 6), **(extra(model) if extra else {}))
                rows.append(row)
    return rows


def summarize(rows: list[dict], fields=("test_accuracy",)) -> dict:
    """Mean/std over seeds of ``fields`` for each (method, sparsity)."""
    groups: dict = {}
    for row in rows:
        groups.setdefault(f"{row['method']}@{row['sparsity']:g}", []).append(row)
    return {key: {f: mean_std([r[f] for r in group]) for f in fields} for key, group in groups.items()}


def run_from_config(config: dict, out_dir: Path) -> dict:
    """Dense vs static sparse vs GMP vs GraNet on a digits MLP, a spiking MLP, an event-driven Network; plots."""
    cfg = check_config(config, DEFAULTS, "granet")
    snn = check_config(cfg["snn"], SNN_KEYS, "granet.snn")
    network = check_config(cfg["network"], NETWORK_KEYS, "granet.network")
    seeds = seeds_of(cfg)
    unknown = sorted((set(cfg["methods"]) | set(snn["methods"]) | set(network["methods"])) - set(METHODS))
    if unknown:
        raise ValueError(f"granet: unknown method(s) {unknown}; expected some of {list(METHODS)}")
    split = load_digits_split(seed=0)
    sizes = [split.n_features, *cfg["hidden"], 10]
    rows = _compare(lambda seed: MLP(sizes, seed=seed), split, cfg, seeds, cfg["sparsities"], cfg["methods"], "mlp")
    report = {"config": cfg, "mlp_sizes": sizes, "runs": rows, "summary": summarize(rows)}
    if network["enabled"]:
        report["network"] = _compare_on_network(cfg, network, seeds, Path(out_dir))
        report["summary"].update({f"network/{k}": v for k, v in report["network"]["summary"].items()})
    if snn["enabled"]:
        from neuro.compat.spiking import SpikingMLP, synaptic_operations

        snn_cfg = {**cfg, "epochs": snn["epochs"], "lr": snn["lr"]}
        snn_sizes = [split.n_features, *snn["hidden"], 10]
        snn_rows = _compare(lambda seed: SpikingMLP(snn_sizes, steps=snn["steps"], seed=seed), split, snn_cfg,
                            seeds, snn["sparsities"], snn["methods"], "snn",
                            extra=lambda model: synaptic_operations(model, split.x_test))
        report["snn"] = {"sizes": snn_sizes, "runs": snn_rows,
                         "summary": summarize(snn_rows, ("test_accuracy", "sops"))}
    if rows or "snn" in report:
        _plot(report, Path(out_dir))
    return report


NETWORK_FIELDS = ("test_accuracy", "event_accuracy", "spike_agreement", "prediction_agreement", "n_synapses",
                  "sops", "sim_seconds_per_sample", "dense_storage_seconds_per_sample", "storage_speedup")


def _compare_on_network(cfg: dict, network: dict, seeds, out_dir: Path) -> dict:
    """Each method on a ``neuro.training`` spiking net, evaluated as a sparse ``Network`` in the event simulator."""
    from neuro.compat import granet_network as GN

    data = GN.load_event_split(network["dataset"], network["time_steps"])
    sizes = [data.x_train.shape[-1], *network["hidden"], 10]
    train_cfg = {**cfg, "epochs": network["epochs"], "lr": network["lr"]}
    rows = _compare(lambda seed: GN.spiking_net(sizes[0], sizes[1:-1], sizes[-1], seed), data, train_cfg, seeds,
                    network["sparsities"], network["methods"], "network",
                    extra=lambda model: GN.event_metrics(model, data.x_test, data.y_test, network["timing_repeats"]))
    GN.plot_network_runs(rows, out_dir)
    return {"sizes": sizes, "runs": rows, "summary": summarize(rows, NETWORK_FIELDS)}


def _plot(report: dict, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuro.io import save_figure

    panels = [("mlp", report["summary"])] + ([("snn", report["snn"]["summary"])] if "snn" in report else [])
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(5 * (len(panels) + 1), 4))
    for ax, (label, summary) in zip(axes, panels):
        _accuracy_panel(ax, summary, label)
    granet_run = next((r for r in report["runs"] if r["method"] == "granet"), None)
    if granet_run is not None:
        ev = granet_run["events"]
        size = sum(granet_run["nnz"].values()) / granet_run["density"]  # all maskable weights
        axes[-1].plot([e["step"] for e in ev], [e["density"] for e in ev], label="density")
        axes[-1].plot([e["step"] for e in ev], [e["regrown"] / (e["density"] * size) for e in ev],
                      label="regrown / nnz (regeneration rate)")
        axes[-1].set(xlabel="optimiser step", title=f"GraNet schedule (sparsity {granet_run['sparsity']:g})")
        axes[-1].legend()
    save_figure(fig, out_dir / "granet_accuracy.png")
    if "snn" in report:
        fig, ax = plt.subplots(figsize=(5, 4))
        groups: dict = {}
        for row in report["snn"]["runs"]:
            groups.setdefault(f"{row['method']}@{row['sparsity']:g}", []).append(row)
        for label, rows in groups.items():
            ax.scatter([r["sops"] for r in rows], [100 * r["test_accuracy"] for r in rows], label=label)
        ax.legend(fontsize=7)
        ax.set(xscale="log", xlabel="synaptic operations per sample", ylabel="test accuracy (%)",
               title="spiking MLP: accuracy vs SOPs")
        save_figure(fig, out_dir / "granet_snn_sops.png")


def _accuracy_panel(ax, summary: dict, label: str) -> None:
    by_method: dict = {}
    for key, stats in summary.items():
        method, sparsity = key.split("@")
        by_method.setdefault(method, []).append((float(sparsity), stats["test_accuracy"]))
    for method, points in sorted(by_method.items()):
        points.sort()
        xs = np.array([p[0] for p in points])
        ys = np.array([100 * p[1]["mean"] for p in points])
        es = np.array([100 * p[1]["std"] for p in points])
        if method == "dense":
            ax.axhline(ys[0], color="k", ls="--", label="dense")
        else:
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=method)
    ax.set(xlabel="sparsity", ylabel="test accuracy (%)", title=f"{label}: accuracy vs sparsity")
    ax.legend()


__all__ = ["GraNet", "GraNetSchedule", "Masks", "cosine_decay", "cubic_sparsity", "erk_densities",
           "global_magnitude_prune", "regenerate", "run_from_config", "DEFAULTS"]
