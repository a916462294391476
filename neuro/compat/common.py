"""Shared helpers of the compatibility layer: digits data, a small MLP, a training loop, accuracy, seeds.

Stable API (other compat modules import it):

- :func:`load_digits_split` -> :class:`Split` of float tensors, pixels scaled to [0, 1];
- :func:`select_classes` keeps some classes (optionally relabelled 0..k-1), for task splits;
- :class:`MLP` (``Linear -> ReLU -> ... -> Linear``) whose :meth:`MLP.run` also returns every
  ``Linear``'s input, so activity statistics need no hooks;
- :func:`train_classifier` is plain mini-batch training with two callbacks;
- :func:`accuracy` and :func:`minibatches`; :func:`check_config` merges a config over defaults;
- :func:`single_thread` runs a block with one torch thread (tiny models only contend otherwise).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from neuro.checks import check_like
from neuro.io import check_keys


@dataclass(frozen=True)
class Split:
    """Train/test tensors: ``x_*`` float32 ``[n, features]``, ``y_*`` int64 ``[n]``."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]


def load_digits_split(seed: int = 0, test_fraction: float = 0.25) -> Split:
    """scikit-learn's 8x8 digits (1797 images, 10 classes), pixels / 16, stratified split with ``seed``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x / 16.0, y, test_size=test_fraction, random_state=seed, stratify=y)
    as_x = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    as_y = lambda a: torch.as_tensor(a, dtype=torch.int64)  # noqa: E731
    return Split(as_x(x_tr), as_y(y_tr), as_x(x_te), as_y(y_te))


def select_classes(split: Split, classes, relabel: bool = True) -> Split:
    """The part of ``split`` whose labels are in ``classes``; ``relabel`` maps ``classes[i] -> i``."""
    classes = [int(c) for c in classes]
    lookup = torch.full((int(max(split.y_train.max(), split.y_test.max())) + 1,), -1, dtype=torch.int64)
    for i, c in enumerate(classes):
        lookup[c] = i if relabel else c

    def keep(x, y):
        sel = lookup[y] >= 0
        return x[sel], lookup[y[sel]]

    return Split(*keep(split.x_train, split.y_train), *keep(split.x_test, split.y_test))


class MLP(nn.Module):
    """``Linear -> ReLU -> ... -> Linear`` with layer sizes ``sizes`` (input first, logits last)."""

    def __init__(self, sizes, seed: int = 0):
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"MLP sizes must be >= 2 positive ints, got {sizes}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(logits, inputs)``: ``inputs[l]`` is what ``layers[l]`` received (``inputs[0] = x``)."""
        inputs = []
        for i, layer in enumerate(self.layers):
            inputs.append(x)
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x, inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)[0]


def minibatches(n: int, batch_size: int, generator: torch.Generator):
    """Shuffled index batches covering ``range(n)`` once."""
    order = torch.randperm(n, generator=generator)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Fraction of ``x`` classified as ``y`` (model in eval mode for the call)."""
    was_training = model.training
    model.eval()
    correct = sum(int((model(x[i:i + batch_size]).argmax(-1) == y[i:i + batch_size]).sum())
                  for i in range(0, len(x), batch_size))
    model.train(was_training)
    return correct / max(len(x), 1)


def cross_entropy_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y)


def train_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer, *,
                     epochs: int, batch_size: int, seed: int,
                     loss_fn: Callable = cross_entropy_loss,
                     after_backward: Callable | None = None, after_step: Callable | None = None,
                     scheduler=None, desc: str | None = None) -> list[float]:
    """Mini-batch training; returns the mean loss of each epoch.

    Per batch: ``loss_fn(model, xb, yb).backward()``, ``after_backward(step)``,
    ``optimizer.step()``, ``after_step(step)`` (``step`` counts batches from 0).
    ``scheduler.step()`` runs once per epoch. ``desc`` shows a tqdm bar.
    """
    generator = torch.Generator().manual_seed(seed)
    model.train()
    history, step = [], 0
    for _ in tqdm(range(epochs), desc=desc, disable=desc is None, leave=False):
        total = 0.0
        batches = minibatches(len(x), batch_size, generator)
        for idx in batches:
            optimizer.zero_grad(set_to_none=False)
            loss = loss_fn(model, x[idx], y[idx])
            loss.backward()
            if after_backward is not None:
                after_backward(step)
            optimizer.step()
            if after_step is not None:
                after_step(step)
            total += float(loss.detach())
            step += 1
        if scheduler is not None:
            scheduler.step()
        history.append(total / len(batches))
    return history


def check_config(config: dict | None, defaults: dict, where: str) -> dict:
    """``defaults`` updated with ``config``; unknown keys and values of another kind than the default
    (text for a number, NaN, a negative count: :func:`neuro.checks.like`) raise :class:`neuro.io.ConfigError`."""
    config = dict(config or {})
    check_keys(config, defaults, where)
    check_like(config, defaults, where)
    return {**defaults, **config}


def seeds_of(config: dict) -> list[int]:
    """``config['seeds']`` as a non-empty list of ints."""
    seeds = config["seeds"]
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    if not seeds or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f"seeds must be an int or a non-empty list of ints, got {config['seeds']!r}")
    return seeds


def mean_std(values) -> dict:
    """``{"mean", "std", "values"}`` of a list of numbers (population std)."""
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std()), "values": arr.tolist()}


@contextlib.contextmanager
def single_thread():
    """Run the block with ``torch.set_num_threads(1)``, restoring the previous count afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
