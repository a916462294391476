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
shared by all tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

KINDS = ("permuted_digits", "split_digits", "event_digits")


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


def permuted(x_train, y_train, x_test, y_test, n_tasks: int, seed: int, prefix: str) -> list[Task]:
    """``n_tasks`` tasks, each permuting the last axis (pixels or channels) with its own seeded permutation."""
    rng = np.random.default_rng(seed)
    tasks = []
    for j in range(n_tasks):
        perm = rng.permutation(x_train.shape[-1])
        tasks.append(_task(f"{prefix}{j}", x_train[..., perm], y_train, x_test[..., perm], y_test, range(10)))
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
                event: dict | None = None) -> list[Task]:
    """The task sequence ``kind`` (module docstring); ``seed`` fixes the split and the permutations.

    ``event`` (for ``event_digits``) holds ``root``, ``n_train``, ``n_test``,
    ``spatial_factor``, ``clip`` and ``split`` (True: split classes, False:
    permuted channels); frames have ``steps`` time bins.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown task sequence {kind!r}; expected one of {KINDS}")
    if n_tasks < 1:
        raise ValueError(f"n_tasks must be >= 1, got {n_tasks}")
    if kind == "event_digits":
        event = dict(event or {})
        arrays = event_digit_arrays(steps=steps, seed=seed, test_fraction=test_fraction, **{
            k: v for k, v in event.items() if k != "split"})
        if event.get("split", False):
            return split(*arrays, n_tasks, "event-split-")
        return permuted(*arrays, n_tasks, seed, "event-perm-")
    arrays = _digits(test_fraction, seed)
    if kind == "split_digits":
        return split(*arrays, n_tasks, "split-")
    return permuted(*arrays, n_tasks, seed, "perm-")


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
