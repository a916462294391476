"""Continual-learning methods as strategies the harness calls around each task.

* ``finetune``: plain sequential training (the lower bound).
* ``hlop``: before task ``j`` add ``k_j`` lateral neurons per layer, run the
  Hebbian rule on every training batch, project every weight gradient from
  task 1 on, merge the subspaces after the task (:mod:`neuro.hlop.lateral`).
* ``ewc`` (Kirkpatrick et al., PNAS 2017): after task ``k`` store the weights
  ``theta_k`` and the diagonal empirical Fisher ``F_k = mean_n (d log p(y_n |
  x_n) / d theta)^2`` over ``fisher_samples`` training samples; later tasks add
  ``(lambda / 2) sum_k sum_i F_k,i (theta_i - theta_k,i)^2`` to the loss.

The multitask upper bound (one model on the union of all tasks) is run by
the harness itself.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from neuro.hlop.model import SpikingMLP
from neuro.hlop.tasks import Task, restrict_logits


class Strategy:
    """Plain fine-tuning; the base the other methods refine."""

    name = "finetune"
    hebbian = False

    def projects(self, task_index: int) -> bool:
        return False

    def before_task(self, model: SpikingMLP, task_index: int, generator: torch.Generator) -> None:
        pass

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        return None

    def after_task(self, model: SpikingMLP, task: Task, training: str, rng: np.random.Generator) -> None:
        pass

    def diagnostics(self) -> dict:
        return {}


class HLOP(Strategy):
    """Hebbian lateral-circuit orthogonal projection (module docstring)."""

    name = "hlop"
    hebbian = True

    def __init__(self, lateral_first: list[int], lateral_increment: list[int]):
        self.first, self.increment = list(lateral_first), list(lateral_increment)
        self.counts: list[list[int]] = []
        self.drift: list[list[float]] = []

    def projects(self, task_index: int) -> bool:
        return task_index > 0

    def before_task(self, model, task_index, generator):
        counts = self.first if task_index == 0 else self.increment
        model.add_subspace(counts, generator)
        self.counts.append([lateral.size for lateral in model.laterals])

    def after_task(self, model, task, training, rng):
        self.drift.append(model.merge_subspace())

    def diagnostics(self) -> dict:
        return {"lateral_neurons_per_task": self.counts, "orthonormality_error_before_merge": self.drift}


class EWC(Strategy):
    """Elastic weight consolidation with one quadratic penalty per past task (module docstring)."""

    name = "ewc"

    def __init__(self, strength: float, fisher_samples: int):
        if strength < 0 or fisher_samples < 1:
            raise ValueError(f"ewc: need strength >= 0 and fisher_samples >= 1, got {strength}, {fisher_samples}")
        self.strength, self.fisher_samples = strength, fisher_samples
        self.anchors: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []

    def penalty(self, model):
        if not self.anchors:
            return None
        params = list(model.parameters())
        total = sum((f * (p - p0) ** 2).sum() for fisher, theta in self.anchors
                    for p, f, p0 in zip(params, fisher, theta))
        return 0.5 * self.strength * total

    def after_task(self, model, task, training, rng):
        params = list(model.parameters())
        fisher = [torch.zeros_like(p) for p in params]
        idx = rng.choice(len(task.y_train), size=min(self.fisher_samples, len(task.y_train)), replace=False)
        mask = task.output_mask(model.sizes[-1])
        for n in idx:
            model.zero_grad()
            z = restrict_logits(model(task.x_train[n:n + 1], training), mask)
            model.loss(z, task.y_train[n:n + 1], training).backward()
            for f, p in zip(fisher, params):
                if p.grad is not None:
                    f += p.grad.detach() ** 2 / len(idx)
        model.zero_grad()
        self.anchors.append((fisher, [p.detach().clone() for p in params]))


def make_strategy(name: str, config: dict) -> Strategy:
    """The strategy ``name`` with its section of the resolved config."""
    if name == "finetune":
        return Strategy()
    if name == "hlop":
        return HLOP(config["hlop"]["lateral_first"], config["hlop"]["lateral_increment"])
    if name == "ewc":
        return EWC(config["ewc"]["strength"], config["ewc"]["fisher_samples"])
    raise ValueError(f"unknown sequential method {name!r}; expected finetune, hlop or ewc")
