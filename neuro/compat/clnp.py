"""CLNP, continual learning via neural pruning (Golkar, Kagan & Cho 2019), on MLPs and spiking MLPs.

A multi-head network (one output slice of ``classes_per_task`` logits per task)
whose hidden neurons are *free* or *owned* by the task that kept them. Task ``t``:

1. Re-initialise every trainable row: the free neurons of each hidden layer
   (incoming weights and bias) and head ``t``.
2. Train with ``CE + alpha * sum_l mean_batch sum_j |a_lj|`` (L1 on activity ``a``:
   ReLU output, or firing rate for spiking layers). Only the free rows and head
   ``t`` get gradients; owned neurons' incoming weights/biases and old heads are
   frozen. Weights free(l) -> owned(l+1) and free -> old heads are 0 and stay 0
   (they belong to frozen rows), so earlier tasks' outputs cannot change at all;
   owned(l) -> free(l+1) weights are trainable (feature reuse).
3. Graceful forgetting: ``a_j = E_x[a_j(x)]`` over task ``t``'s training data for
   the neurons trained now; prune (zero incoming weights, bias and outgoing
   weights of) those with ``a_j <= theta`` for the largest ``theta`` (scanning up
   the sorted activities) that keeps validation accuracy ``>= base - margin``.
   The survivors become owned by ``t``; the pruned stay free. With ``threshold:
   relative`` each layer's activities are first divided by the mean activity of the
   layer's neurons trained now, so one ``theta`` compares the layers on one scale
   (with ``absolute``, the default, a layer whose activities run higher keeps more
   neurons: docs/compat-clnp.md, "Capacity").

Metrics (Lopez-Paz & Ranzato): ``R[i, j]`` = test accuracy on task ``j`` after
task ``i``; ``ACC = mean_j R[T-1, j]``, ``BWT = mean_{j<T-1} (R[T-1, j] - R[j, j])``.
Diagnostics per task and hidden layer: free neurons, and *reused* neurons (owned
by an earlier task, with a non-zero weight into a neuron or head of this task).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from neuro.compat.common import (
    MLP,
    Split,
    accuracy,
    check_config,
    load_digits_split,
    mean_std,
    seeds_of,
    select_classes,
    train_classifier,
)

FREE = -1
THRESHOLDS = ("absolute", "relative")


class HeadView(nn.Module):
    """The logits of one task's head: ``model(x)[:, start:stop]``."""

    def __init__(self, model: nn.Module, start: int, stop: int):
        super().__init__()
        self.model, self.start, self.stop = model, start, stop

    def forward(self, x):
        return self.model(x)[:, self.start:self.stop]


class CLNP:
    """Neuron ownership and freezing for a model with ``layers`` (``nn.Linear``) and ``run(x) -> (logits, inputs)``.

    ``owner[l]`` holds, for hidden layer ``l`` (output of ``layers[l]``), the task
    owning each neuron or ``FREE``.
    """

    def __init__(self, model: nn.Module, classes_per_task: int, generator: torch.Generator):
        self.model, self.classes_per_task, self.generator = model, classes_per_task, generator
        layers = model.layers
        n_out = layers[-1].out_features
        if n_out % classes_per_task:
            raise ValueError(f"output size {n_out} is not a multiple of classes_per_task={classes_per_task}")
        self.n_tasks = n_out // classes_per_task
        self.owner = [torch.full((layer.out_features,), FREE) for layer in layers[:-1]]

    def head_rows(self, task: int) -> slice:
        return slice(task * self.classes_per_task, (task + 1) * self.classes_per_task)

    def head(self, task: int) -> HeadView:
        rows = self.head_rows(task)
        return HeadView(self.model, rows.start, rows.stop)

    def trainable_rows(self, task: int) -> list[torch.Tensor]:
        """Per Linear layer, which output rows task ``task`` may train."""
        rows = [owner == FREE for owner in self.owner]
        head = torch.zeros(self.model.layers[-1].out_features, dtype=torch.bool)
        head[self.head_rows(task)] = True
        return rows + [head]

    @torch.no_grad()
    def reinitialise(self, task: int) -> None:
        """Fresh ``nn.Linear``-style init (``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``) of the trainable rows."""
        for layer, rows in zip(self.model.layers, self.trainable_rows(task)):
            bound = 1.0 / math.sqrt(layer.in_features)
            n = int(rows.sum())
            layer.weight[rows] = (torch.rand(n, layer.in_features, generator=self.generator) * 2 - 1) * bound
            layer.bias[rows] = (torch.rand(n, generator=self.generator) * 2 - 1) * bound
        # interference weights free(l) -> frozen rows of l+1 are 0 (pruning zeroed them); keep that explicit
        for prev_owner, layer, rows in zip(self.owner, self.model.layers[1:], self.trainable_rows(task)[1:]):
            layer.weight[(~rows)[:, None] & (prev_owner == FREE)[None, :]] = 0.0

    def mask_gradients(self, task: int) -> None:
        """Zero the gradients of frozen rows (call between ``backward()`` and ``optimizer.step()``)."""
        for layer, rows in zip(self.model.layers, self.trainable_rows(task)):
            layer.weight.grad[~rows] = 0.0
            layer.bias.grad[~rows] = 0.0

    @torch.no_grad()
    def activity(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Mean activity ``E_x[a_j(x)]`` of every hidden neuron (ReLU output or firing rate)."""
        was_training = self.model.training
        self.model.eval()
        _, inputs = self.model.run(x)
        self.model.train(was_training)
        return [a.mean(0) for a in inputs[1:]]

    @torch.no_grad()
    def prune(self, neurons: list[torch.Tensor]) -> None:
        """Zero incoming weights, bias and outgoing weights of the neurons flagged in ``neurons[l]``."""
        layers = self.model.layers
        for index, flagged in enumerate(neurons):
            layers[index].weight[flagged] = 0.0
            layers[index].bias[flagged] = 0.0
            layers[index + 1].weight[:, flagged] = 0.0

    def graceful_prune(self, task: int, x_train, x_val, y_val, margin: float, max_candidates: int = 64,
                       threshold: str = "absolute") -> dict:
        """Prune this task's inactive neurons at the largest safe threshold (module doc, step 3); claim the rest.

        ``threshold``: ``absolute`` (one threshold on the activities) or ``relative`` (on each layer's
        activities divided by the mean over the layer's neurons trained now)."""
        if threshold not in THRESHOLDS:
            raise ValueError(f"clnp: threshold must be one of {THRESHOLDS}, got {threshold!r}")
        trained = [owner == FREE for owner in self.owner]
        activity = self.activity(x_train)
        if threshold == "relative":
            activity = [a / a[t].mean() if t.any() and a[t].mean() > 0 else a for a, t in zip(activity, trained)]
        head = self.head(task)
        base = accuracy(head, x_val, y_val)
        values = torch.cat([a[t] for a, t in zip(activity, trained)])
        candidates = torch.unique(values)
        if len(candidates) > max_candidates:
            candidates = torch.quantile(values, torch.linspace(0, 1, max_candidates)).unique()
        saved = {k: v.clone() for k, v in self.model.state_dict().items()}
        theta, val_after = None, base
        for candidate in candidates:
            self.prune([t & (a <= candidate) for a, t in zip(activity, trained)])
            acc = accuracy(head, x_val, y_val)
            self.model.load_state_dict(saved)
            if acc < base - margin:
                break
            theta, val_after = float(candidate), acc
        pruned = [t & (a <= theta) if theta is not None else torch.zeros_like(t) for a, t in zip(activity, trained)]
        self.prune(pruned)
        for owner, t, p in zip(self.owner, trained, pruned):
            owner[t & ~p] = task
        return {"threshold": theta, "val_before": base, "val_after": val_after,
                "pruned": [int(p.sum()) for p in pruned],
                "kept": [int((t & ~p).sum()) for t, p in zip(trained, pruned)]}

    def free_counts(self) -> list[int]:
        return [int((owner == FREE).sum()) for owner in self.owner]

    def reuse_counts(self, task: int) -> list[int]:
        """Per hidden layer: neurons owned by earlier tasks with a non-zero weight into this task's units."""
        counts = []
        for index, owner in enumerate(self.owner):
            nxt = self.model.layers[index + 1]
            targets = (self.owner[index + 1] == task) if index + 1 < len(self.owner) else self._head_mask(task)
            old = (owner >= 0) & (owner < task)
            used = (nxt.weight[targets] != 0).any(0)
            counts.append(int((old & used).sum()))
        return counts

    def _head_mask(self, task: int) -> torch.Tensor:
        mask = torch.zeros(self.model.layers[-1].out_features, dtype=torch.bool)
        mask[self.head_rows(task)] = True
        return mask


def split_tasks(split: Split, n_tasks: int, classes_per_task: int) -> list[Split]:
    """Tasks ``t`` = classes ``[t*c, (t+1)*c)``, labels relabelled to ``0..c-1`` (split digits)."""
    if n_tasks * classes_per_task > 10:
        raise ValueError(f"{n_tasks} tasks x {classes_per_task} classes exceed the 10 digit classes")
    return [select_classes(split, range(t * classes_per_task, (t + 1) * classes_per_task))
            for t in range(n_tasks)]


def activity_l1_loss(alpha: float):
    """``loss(model, x, y) = CE + alpha * sum_l mean_batch sum_j |a_lj|`` on the hidden activities."""
    def loss(head: HeadView, x, y):
        logits, inputs = head.model.run(x)
        penalty = sum(a.abs().sum(1).mean() for a in inputs[1:])
        return F.cross_entropy(logits[:, head.start:head.stop], y) + alpha * penalty
    return loss


def build_model(cfg: dict, n_features: int, n_outputs: int, seed: int) -> nn.Module:
    sizes = [n_features, *cfg["hidden"], n_outputs]
    if cfg["model"] == "mlp":
        return MLP(sizes, seed=seed)
    if cfg["model"] == "snn":
        from neuro.compat.spiking import SpikingMLP

        return SpikingMLP(sizes, steps=cfg["steps"], seed=seed)
    raise ValueError(f"clnp: model must be 'mlp' or 'snn', got {cfg['model']!r}")


def run_sequence(tasks: list[Split], cfg: dict, seed: int, method: str = "clnp") -> dict:
    """Train the tasks in order with ``clnp`` or ``naive`` fine-tuning; accuracy matrix and diagnostics."""
    if method not in ("clnp", "naive"):
        raise ValueError(f"method must be 'clnp' or 'naive', got {method!r}")
    c = cfg["classes_per_task"]
    model = build_model(cfg, tasks[0].n_features, c * len(tasks), seed)
    gen = torch.Generator().manual_seed(seed + 104729)
    clnp = CLNP(model, c, gen)
    R = np.full((len(tasks), len(tasks)), np.nan)
    log = []
    for t, task in enumerate(tasks):
        n_val = max(1, round(cfg["val_fraction"] * len(task.x_train)))
        order = torch.randperm(len(task.x_train), generator=gen)
        val, train = order[:n_val], order[n_val:]
        if method == "clnp":
            clnp.reinitialise(t)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
        train_classifier(clnp.head(t), task.x_train[train], task.y_train[train], optimizer,
                         epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=seed + t,
                         loss_fn=activity_l1_loss(cfg["alpha"]), desc=f"{method} task {t} seed {seed}",
                         after_backward=(lambda _s, t=t: clnp.mask_gradients(t)) if method == "clnp" else None)
        entry = {"task": t}
        if method == "clnp":
            entry.update(clnp.graceful_prune(t, task.x_train[train], task.x_train[val], task.y_train[val],
                                             cfg["margin"], threshold=cfg["threshold"]),
                         free=clnp.free_counts(), reused=clnp.reuse_counts(t))
        for j in range(t + 1):
            R[t, j] = accuracy(clnp.head(j), tasks[j].x_test, tasks[j].y_test)
        log.append(entry)
    T = len(tasks)
    return {"method": method, "seed": seed, "R": R.tolist(), "acc": float(R[-1].mean()),
            "bwt": float(np.mean([R[-1, j] - R[j, j] for j in range(T - 1)])) if T > 1 else 0.0,
            "tasks": log}


DEFAULTS = {
    "seeds": [0, 1, 2],
    "model": "mlp",
    "hidden": [200, 200],
    "steps": 16,
    "n_tasks": 5,
    "classes_per_task": 2,
    "epochs": 30,
    "batch_size": 32,
    "lr": 1e-3,
    "alpha": 1e-3,
    "margin": 0.01,
    "threshold": "absolute",  # or "relative": per-layer activities over their mean (docs/compat-clnp.md)
    "val_fraction": 0.2,
    "baseline": True,
}


def run_from_config(config: dict, out_dir: Path) -> dict:
    """CLNP (and naive fine-tuning) on split digits over seeds; plots into ``out_dir``."""
    cfg = check_config(config, DEFAULTS, "clnp")
    seeds = seeds_of(cfg)
    tasks = split_tasks(load_digits_split(seed=0), cfg["n_tasks"], cfg["classes_per_task"])
    runs = [run_sequence(tasks, cfg, seed, "clnp") for seed in seeds]
    if cfg["baseline"]:
        runs += [run_sequence(tasks, cfg, seed, "naive") for seed in seeds]
    summary = {}
    for method in ("clnp", "naive"):
        chosen = [r for r in runs if r["method"] == method]
        if chosen:
            summary[method] = {"acc": mean_std([r["acc"] for r in chosen]),
                               "bwt": mean_std([r["bwt"] for r in chosen])}
    report = {"config": cfg, "runs": runs, "summary": summary}
    _plot(report, Path(out_dir))
    return report


def _plot(report: dict, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuro.io import save_figure

    clnp_run = next(r for r in report["runs"] if r["method"] == "clnp")
    naive_run = next((r for r in report["runs"] if r["method"] == "naive"), None)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    tasks = clnp_run["tasks"]
    for layer in range(len(tasks[0]["free"])):
        axes[0].plot([e["free"][layer] for e in tasks], marker="o", label=f"free, layer {layer + 1}")
        axes[0].plot([e["reused"][layer] for e in tasks], marker="s", ls="--", label=f"reused, layer {layer + 1}")
    axes[0].set(xlabel="task", ylabel="neurons", title=f"CLNP neurons (seed {clnp_run['seed']})")
    axes[0].legend(fontsize=7)
    for ax, run in zip(axes[1:], [clnp_run, naive_run]):
        if run is None:
            ax.axis("off")
            continue
        image = ax.imshow(100 * np.array(run["R"], dtype=float), vmin=50, vmax=100, cmap="viridis")
        ax.set(xlabel="evaluated task j", ylabel="after training task i",
               title=f"{run['method']}: R[i, j] (%), BWT {100 * run['bwt']:+.2f}")
        fig.colorbar(image, ax=ax)
    save_figure(fig, out_dir / "clnp.png")
