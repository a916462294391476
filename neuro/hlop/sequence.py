"""Continual learning of any model on any task sequence: :func:`fit_tasks`, HLOP or plain fine-tuning.

A task is :class:`LoaderTask` ``(name, train, test, classes)``: two loaders of ``(x, y)``
batches (anything :func:`neuro.training.api.fit_model` takes) and, optionally, the classes
it uses: then the loss and the accuracy see only those logits (task-incremental); without
them the whole output layer competes (domain- or class-incremental). Labels may be any
class index of the model's output, so a sequence can hold any number of classes.

Per task ``i``: ``hlop.begin_task()``, a fresh optimizer (default SGD with momentum, as
HLOP needs: Adam's per-weight scaling is not a projection) over all parameters on task 0
and only the weights (>= 2-D) afterwards, ``epochs`` epochs of ``fit_model``,
``hlop.end_task()``, then row ``i`` of the accuracy matrix ``A`` (test accuracy on every
task). ACC, BWT and FWT follow :mod:`neuro.hlop.metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from neuro.hlop.hooks import HebbianProjection
from neuro.hlop.metrics import continual_metrics
from neuro.hlop.projection import continual_parameters
from neuro.hlop.tasks import restrict_logits
from neuro.training.api import evaluate, fit_model, model_dtype, prepare_batch


@dataclass
class LoaderTask:
    """One task of a sequence: training and test batches, and optionally the classes it uses."""

    name: str
    train: object
    test: object
    classes: tuple[int, ...] | None = None


def _head(classes):
    if classes is None:
        return None
    classes = tuple(int(c) for c in classes)

    def head(z):
        mask = torch.zeros(z.shape[-1], dtype=torch.bool, device=z.device)
        if max(classes) >= len(mask):
            raise ValueError(f"task class {max(classes)} needs more than the model's {len(mask)} outputs")
        mask[list(classes)] = True
        return restrict_logits(z, mask)
    return head


def fit_tasks(model: nn.Module, tasks: list[LoaderTask], *, hlop=None, epochs: int = 1, lr: float = 0.05,
              momentum: float = 0.9, optimizer=None, time_first: bool = True, device="cpu", seed: int = 0,
              progress: bool = False) -> dict:
    """Train ``tasks`` in order on ``model`` (module docstring); returns ``matrix``, ``initial``, ACC/BWT/FWT.

    ``hlop``: None or False (fine-tuning), True (:class:`HebbianProjection` with its defaults),
    a dict of its options, or one already attached to ``model``. ``optimizer(params)`` replaces
    the default ``SGD(params, lr, momentum)``.
    """
    if not tasks:
        raise ValueError("fit_tasks: need at least one task")
    for t in tasks:
        if not isinstance(t, LoaderTask):
            raise TypeError(f"fit_tasks: tasks must be LoaderTask(name, train, test, classes), got {type(t).__name__}")
    projection = _projection(model, hlop)
    model.to(device)
    generator = torch.Generator().manual_seed(seed)
    heads = [_head(t.classes) for t in tasks]
    dtype = model_dtype(model)

    def prepare(x, y):
        return prepare_batch(x, y, device, dtype, time_first)

    def accuracies():
        return [evaluate(model, t.test, head=h, prepare=prepare)[1] for t, h in zip(tasks, heads)]

    initial = accuracies()
    matrix = np.zeros((len(tasks), len(tasks)))
    drift = []
    for i, task in enumerate(tasks):
        if projection is not None:
            projection.begin_task(generator)
        params = continual_parameters(model, i)
        opt = optimizer(params) if optimizer is not None else torch.optim.SGD(params, lr=lr, momentum=momentum)
        fit_model(model, task.train, None, epochs=epochs, optimizer=opt, head=heads[i], device=device,
                  time_first=time_first, progress=progress, callbacks=[] if projection is None else [projection])
        if projection is not None:
            drift.append(projection.end_task())
        matrix[i] = accuracies()
    out = {"names": [t.name for t in tasks], "matrix": matrix, "initial": np.array(initial),
           **continual_metrics(matrix, initial)}
    if projection is not None:
        out["orthonormality_error_before_merge"] = drift
        if not isinstance(hlop, HebbianProjection):
            projection.remove()
    return out


def _projection(model, hlop) -> HebbianProjection | None:
    if hlop is None or hlop is False:
        return None
    if hlop is True:
        return HebbianProjection(model)
    if isinstance(hlop, dict):
        return HebbianProjection(model, **hlop)
    if isinstance(hlop, HebbianProjection):
        return hlop
    raise TypeError(f"fit_tasks: hlop must be None, True, a dict of HebbianProjection options or a "
                    f"HebbianProjection, got {type(hlop).__name__}")
