"""Task sequences for continual learning, built from scikit-learn's 8x8 digits (1797 images, 10 classes).

* ``permuted_digits``: every task is all ten classes with its own fixed
  random permutation of the 64 pixels (domain-incremental, one shared head).
* ``split_digits``: task ``j`` holds classes ``{2j, 2j+1}`` (``n_tasks <= 5``);
  training and evaluation restrict the logits to the task's classes
  (task-incremental, a masked shared head).
* ``event_digits``: the event-camera version of the digits
  (:mod:`neuro.data.digits_nmnist`, N-MNIST format) binned into frames, a
  sequence input ``[N, T, 2 H W]``; split like ``split_digits`` or permuted
  over input channels like ``permuted_digits``.

Pixels are scaled to ``[0, 1]``; one seeded stratified train/test split is
shared by all tasks. ``labels="disjoint"`` gives permuted task ``j`` the classes
``10 j .. 10 j + 9`` (``10 n_tasks`` classes in all; the model grows its output layer).

Any other sequence: ``kind = "package.module:function"`` names a function called as
``function(n_tasks=..., seed=..., test_fraction=..., steps=...)`` that returns a list of
:class:`Task` (any classes, any number of tasks), or pass the list itself to
:func:`neuro.hlop.harness.run_experiment`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

KINDS = ("permuted_digits", "split_digits", "event_digits")
LABELS = ("shared", "disjoint")


@dataclass(frozen=True)
class Task:
    """One task: tensors ``x[N, n]`` (or ``[N, T, n]``), labels ``y[N]``, and the classes it uses."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[int, ...]

    def output_mask(self, n_outputs: int) -> torch.Tensor:
        """Boolean mask ``[n_outputs]``: True for this task's classes."""
        if max(self.classes) >= n_outputs:
            raise ValueError(f"task {self.name}: class {max(self.classes)} needs more than {n_outputs} outputs")
        mask = torch.zeros(n_outputs, dtype=torch.bool)
        mask[list(self.classes)] = True
        return mask


def restrict_logits(z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Logits ``z[..., C]`` with the classes outside ``mask`` (``[C]`` or ``[batch, C]``) pushed to -1e9."""
    return z.masked_fill(~mask, -1e9)


def _digits(test_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(x, data.target, test_size=test_fraction,
                                                        random_state=seed, stratify=data.target)
    return x_train, y_train, x_test, y_test


def _task(name, x_tr, y_tr, x_te, y_te, classes) -> Task:
    return Task(name, torch.as_tensor(x_tr), torch.as_tensor(y_tr, dtype=torch.long), torch.as_tensor(x_te),
                torch.as_tensor(y_te, dtype=torch.long), tuple(int(c) for c in classes))


def permuted(x_train, y_train, x_test, y_test, n_tasks: int, seed: int, prefix: str,
             labels: str = "shared") -> list[Task]:
    """``n_tasks`` tasks, each permuting the last axis (pixels or channels) with its own seeded permutation;
    ``labels="disjoint"`` shifts task ``j``'s labels by ``10 j``."""
    if labels not in LABELS:
        raise ValueError(f"tasks labels must be one of {LABELS}, got {labels!r}")
    rng = np.random.default_rng(seed)
    tasks = []
    for j in range(n_tasks):
        perm = rng.permutation(x_train.shape[-1])
        shift = 10 * j if labels == "disjoint" else 0
        tasks.append(_task(f"{prefix}{j}", x_train[..., perm], y_train + shift, x_test[..., perm], y_test + shift,
                           range(shift, shift + 10)))
    return tasks


def split(x_train, y_train, x_test, y_test, n_tasks: int, prefix: str) -> list[Task]:
    """Task ``j`` = classes ``{2j, 2j+1}``."""
    if not 1 <= n_tasks <= 5:
        raise ValueError(f"split tasks: n_tasks must be 1..5 (two classes each), got {n_tasks}")
    tasks = []
    for j in range(n_tasks):
        classes = (2 * j, 2 * j + 1)
        tr, te = np.isin(y_train, classes), np.isin(y_test, classes)
        tasks.append(_task(f"{prefix}{classes[0]}{classes[1]}", x_train[tr], y_train[tr], x_test[te], y_test[te],
                           classes))
    return tasks


def build_tasks(kind: str, n_tasks: int = 5, seed: int = 0, test_fraction: float = 0.3, *, steps: int = 8,
                event: dict | None = None, labels: str = "shared") -> list[Task]:
    """The task sequence ``kind`` (module docstring); ``seed`` fixes the split and the permutations.

    ``event`` (for ``event_digits``) holds ``root``, ``n_train``, ``n_test``,
    ``spatial_factor``, ``clip`` and ``split`` (True: split classes, False:
    permuted channels); frames have ``steps`` time bins.
    """
    if n_tasks < 1:
        raise ValueError(f"n_tasks must be >= 1, got {n_tasks}")
    if ":" in kind:
        return user_tasks(kind, n_tasks=n_tasks, seed=seed, test_fraction=test_fraction, steps=steps)
    if kind not in KINDS:
        raise ValueError(f"unknown task sequence {kind!r}; expected one of {KINDS} or 'package.module:function'")
    if kind == "event_digits":
        event = dict(event or {})
        arrays = event_digit_arrays(steps=steps, seed=seed, test_fraction=test_fraction, **{
            k: v for k, v in event.items() if k != "split"})
        if event.get("split", False):
            return split(*arrays, n_tasks, "event-split-")
        return permuted(*arrays, n_tasks, seed, "event-perm-", labels)
    arrays = _digits(test_fraction, seed)
    if kind == "split_digits":
        return split(*arrays, n_tasks, "split-")
    return permuted(*arrays, n_tasks, seed, "perm-", labels)


def user_tasks(path: str, **kwargs) -> list[Task]:
    """The tasks returned by the function ``"package.module:function"`` called with ``kwargs``; checked."""
    import importlib

    module, _, name = path.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"task sequence {path!r}: cannot import it ({exc})") from None
    tasks = fn(**kwargs)
    return check_tasks(tasks, path)


def check_tasks(tasks, where: str = "tasks") -> list[Task]:
    """``tasks`` as a non-empty list of :class:`Task` whose inputs agree in shape and labels lie in its classes."""
    tasks = list(tasks) if isinstance(tasks, list | tuple) else tasks
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, Task) for t in tasks):
        raise ValueError(f"{where}: must give a non-empty list of neuro.hlop.tasks.Task")
    for t in tasks:
        if t.x_train.shape[1:] != tasks[0].x_train.shape[1:] or t.x_test.shape[1:] != tasks[0].x_train.shape[1:]:
            raise ValueError(f"{where}: task {t.name} has inputs {list(t.x_train.shape[1:])}, task "
                             f"{tasks[0].name} {list(tasks[0].x_train.shape[1:])}; all tasks need one shape")
        outside = set(torch.cat([t.y_train, t.y_test]).tolist()) - set(t.classes)
        if outside:
            raise ValueError(f"{where}: task {t.name} has labels {sorted(outside)} outside its classes {t.classes}")
    return tasks


def n_outputs(tasks: list[Task]) -> int:
    """Outputs a model needs for ``tasks``: the largest class + 1 (at least 10, the digits)."""
    return max(10, 1 + max(max(t.classes) for t in tasks))


def event_digit_arrays(root, n_train: int, n_test: int, spatial_factor: float, clip: float, steps: int, seed: int,
                       test_fraction: float):
    """Digits-as-N-MNIST (:mod:`neuro.data.digits_nmnist`, generated under ``root`` if missing) as arrays.

    Frames come from :func:`neuro.data.frames.make_frame_loaders` (``steps``
    time bins, ``spatial_factor`` pooling); the per-bin event counts become
    input currents ``min(count, clip) / clip`` of shape ``[N, steps, 2 H W]``.
    """
    from neuro.data import digits_nmnist
    from neuro.data.frames import make_frame_loaders

    if clip <= 0:
        raise ValueError(f"event clip must be positive, got {clip}")
    root = Path(root) / f"seed{seed}"
    digits_nmnist.generate(root, n_train=n_train, n_test=n_test, seed=seed, test_fraction=test_fraction,
                           progress=False)
    data = make_frame_loaders(root, "nmnist", n_time_bins=steps, batch_size=256, seed=seed,
                              spatial_factor=spatial_factor)
    out = []
    for loader in (data.train, data.test):
        frames, labels = zip(*loader)
        x = torch.cat([f.flatten(2).transpose(0, 1) for f in frames]).clamp(max=clip) / clip
        out += [x.numpy(), torch.cat(labels).numpy()]
    return tuple(out)
