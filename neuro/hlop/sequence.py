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

With ``out``, ``tasks.pt`` is written there (atomically, checksummed:
:mod:`neuro.training.checkpoint`) after every task: the model, the HLOP state (subspaces, task
counter), the accuracy rows so far, the initial accuracies, the torch RNG (a shuffling
``DataLoader`` draws its order from it) and the HLOP generator. ``resume=True`` continues with
the next task and ends with the same result as an uninterrupted run. No optimizer is kept: each
task starts a fresh one. ``stop_after=k`` stops after ``k`` tasks (a time-limited job).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from neuro.hlop.hooks import HebbianProjection
from neuro.hlop.metrics import continual_metrics
from neuro.hlop.projection import continual_parameters
from neuro.hlop.tasks import restrict_logits
from neuro.training import checkpoint
from neuro.training.api import evaluate, fit_model, model_dtype, prepare_batch

CHECKPOINT = "tasks.pt"
STATE_KEYS = ("done", "config", "model", "hlop", "matrix", "initial", "drift", "torch_rng", "generator")


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
              progress: bool = False, out=None, resume: bool = False, stop_after: int | None = None) -> dict:
    """Train ``tasks`` in order on ``model`` (module docstring); returns ``matrix``, ``initial``, ACC/BWT/FWT.

    ``hlop``: None or False (fine-tuning), True (:class:`HebbianProjection` with its defaults),
    a dict of its options, or one already attached to ``model``. ``optimizer(params)`` replaces
    the default ``SGD(params, lr, momentum)``. ``out`` / ``resume`` / ``stop_after``: the
    checkpoint after every task (module docstring). ``tasks_done`` counts the tasks trained;
    after ``stop_after`` the result holds only their rows and no ACC/BWT/FWT.
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
    out = Path(out) if out is not None else None
    config = {"tasks": [t.name for t in tasks], "epochs": epochs, "lr": lr, "momentum": momentum, "seed": seed,
              "time_first": time_first, "hlop": hlop if hlop is None or isinstance(hlop, bool | dict) else "attached",
              "optimizer": None if optimizer is None else getattr(optimizer, "__qualname__", repr(optimizer))}

    def prepare(x, y):
        return prepare_batch(x, y, device, dtype, time_first)

    def accuracies():
        return [evaluate(model, t.test, head=h, prepare=prepare)[1] for t, h in zip(tasks, heads)]

    matrix = np.zeros((len(tasks), len(tasks)))
    if resume:
        done, initial, drift = _restore(out, config, model, projection, generator, matrix, device)
    else:
        done, initial, drift = 0, accuracies(), []
    last = len(tasks) if stop_after is None else min(len(tasks), stop_after)
    for i in range(done, last):
        if projection is not None:
            projection.begin_task(generator)
        params = continual_parameters(model, i)
        opt = optimizer(params) if optimizer is not None else torch.optim.SGD(params, lr=lr, momentum=momentum)
        fit_model(model, tasks[i].train, None, epochs=epochs, optimizer=opt, head=heads[i], device=device,
                  time_first=time_first, progress=progress, callbacks=[] if projection is None else [projection])
        if projection is not None:
            drift.append(projection.end_task())
        matrix[i] = accuracies()
        if out is not None:
            checkpoint.save(out / CHECKPOINT, {
                "done": i + 1, "config": config, "model": model.state_dict(),
                "hlop": None if projection is None else projection.state_dict(),
                "matrix": matrix[:i + 1].tolist(), "initial": list(initial),
                "drift": drift, "torch_rng": torch.get_rng_state(), "generator": generator.get_state()})
    done = max(done, last)
    result = {"names": [t.name for t in tasks], "matrix": matrix[:done], "initial": np.array(initial),
              "tasks_done": done}
    if done == len(tasks):
        result.update(continual_metrics(matrix, initial))
    if projection is not None:
        result["orthonormality_error_before_merge"] = drift
        if not isinstance(hlop, HebbianProjection):
            projection.remove()
    return result


def _restore(out, config, model, projection, generator, matrix, device) -> tuple[int, list[float], list]:
    """Load ``out/tasks.pt`` into the model, HLOP, generator, torch RNG and ``matrix``; ``(done, initial, drift)``."""
    path = None if out is None else out / CHECKPOINT
    if path is None or not path.is_file():
        raise FileNotFoundError(f"fit_tasks(resume=True): no checkpoint at {path} (run once with out= first)")
    state = checkpoint.load(path, STATE_KEYS, device, "task-sequence checkpoint")
    if state["config"] != config:
        raise ValueError(f"fit_tasks(resume=True): {path} was written for another run ({state['config']}); "
                         "use the same tasks and options or a new out folder")
    try:
        model.load_state_dict(state["model"])
        if projection is not None:
            projection.load_state_dict(state["hlop"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise checkpoint.CheckpointError(f"{path}: does not fit this model ({exc})") from None
    done = state["done"]
    matrix[:done] = state["matrix"]
    torch.set_rng_state(state["torch_rng"].cpu())
    generator.set_state(state["generator"].cpu())
    return done, state["initial"], state["drift"]


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
