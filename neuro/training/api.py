"""Train any ``nn.Module`` on any data: :func:`fit_model`, the loop behind ``neuro train``.

``fit_model(model, train, val, epochs=..., out=...)`` runs, per epoch: every batch
``(x, y)`` of ``train``, ``loss(model(x), y)`` (default cross-entropy), backward and the
optimizer step (default Adam, ``lr``), the scheduler step (if any), then the loss and
accuracy on ``val``. Epoch 0 is the untrained model on ``val``: the baseline to beat.

* ``train`` / ``val``: a ``torch.utils.data.DataLoader`` (a tonic dataset's loader plugs in
  directly) or any iterable of ``(x, y)`` batches, or a function ``epoch -> iterable``.
* ``time_first=True`` (for spiking models that take ``[T, B, ...]``, such as
  :class:`~neuro.training.model.SpikingNet`): batches ``x [B, T, ...]`` are transposed to
  ``[T, B, ...]``. ``False`` passes ``x`` unchanged (a plain torch model, or a loader that is
  already time-first). ``x`` is cast to the dtype of the model's parameters.
* ``out``: the folder for ``checkpoint.pt`` (every epoch: model, optimizer, scheduler, RNG
  states, history, ``config``, callback states), ``metrics.json`` / ``metrics.csv``,
  ``learning_curve.png`` and, after the last epoch, ``model.pt`` (the trained ``state_dict`` and
  ``config``; :func:`load_weights` puts it back into a model); all written atomically and
  checksummed (:mod:`neuro.training.checkpoint`).
* ``resume=True`` continues from ``out/checkpoint.pt`` with the next epoch; with the same
  ``config`` the result equals an uninterrupted run (the torch RNG, which a shuffling
  DataLoader draws its order from, is restored too).
* Under ``torch.distributed`` the model is wrapped in ``DistributedDataParallel``; each rank
  iterates its own ``train`` (give the loader a ``DistributedSampler``: its ``set_epoch`` is
  called), training metrics are summed over ranks, rank 0 evaluates ``val`` and writes files.
* ``callbacks``: objects with an optional ``after_batch()`` (called after every optimizer
  step) and, if they are modules, their ``state_dict`` is checkpointed (e.g.
  :class:`neuro.hlop.hooks.HebbianProjection`).

The model is trained in place and moved to ``device``; the history (one dict per epoch,
:data:`METRICS`) is returned.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from neuro.io import remove_stale_temps, save_figure, write_json, write_text
from neuro.training import checkpoint

log = logging.getLogger(__name__)

CHECKPOINT, MODEL = "checkpoint.pt", "model.pt"
METRICS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "samples_per_s")
STATE_KEYS = ("epoch", "config", "history", "model", "optimizer", "scheduler", "torch_rng", "cuda_rng")
FILES = (CHECKPOINT, MODEL, "metrics.json", "metrics.csv", "learning_curve.png")


class TrainingDiverged(ValueError):
    """The loss or the weights became NaN or infinite."""


def rank_world() -> tuple[int, int]:
    """``(rank, world size)`` of the torch.distributed group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def fit_model(model: nn.Module, train, val=None, *, epochs: int = 1, out=None,
              optimizer: torch.optim.Optimizer | None = None, lr: float = 1e-3, scheduler=None,
              loss: Callable | None = None, head: Callable | None = None, device="cpu", time_first: bool = True,
              resume: bool = False, stop_after: int | None = None, progress: bool = True, config=None,
              model_info: dict | None = None, callbacks: Iterable = ()) -> list[dict]:
    """Train ``model`` on ``train`` for ``epochs`` epochs, evaluating on ``val`` (module docstring).

    ``head(output)`` (optional) maps the model output to the logits the loss and the accuracy
    see (e.g. keep one task's classes). ``stop_after=k`` stops after epoch ``k`` (continue
    with ``resume=True``). ``config`` is stored in the checkpoint; ``resume`` refuses a
    checkpoint written with another one; ``model_info`` adds fields to ``model.pt``. Returns the history.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"fit_model: model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fit_model: epochs must be an integer >= 1, got {epochs!r}")
    if train is None:
        raise ValueError("fit_model: train must be a DataLoader, an iterable of (x, y) batches or epoch -> batches")
    device = torch.device(device)
    rank, world = rank_world()
    out = Path(out) if out is not None else None
    model.to(device)
    if optimizer is None:
        optimizer = adam(model, lr)
    run = _Run(model, optimizer, scheduler, list(callbacks), loss or nn.functional.cross_entropy, head,
               device, time_first, out, config)
    if out is not None and rank == 0:
        remove_stale_temps(out, FILES)
    if resume:
        start, history = run.restore()
    else:
        start, history = 1, [run.evaluate(val, 0, 0.0, None)]
    net = nn.parallel.DistributedDataParallel(model, forward_sync_buffers=False) if world > 1 else model
    last = epochs if stop_after is None else min(epochs, stop_after)
    for epoch in range(start, last + 1):
        t0 = time.perf_counter()
        sums = run.train_epoch(net, _batches(train, epoch), f"epoch {epoch}/{epochs}", progress and rank == 0,
                               world)
        lr_now = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()
        if rank == 0:
            seconds = time.perf_counter() - t0
            history.append(run.evaluate(val, epoch, seconds, sums, lr_now))
            _report(_describe(history[-1]), progress)
            if out is not None:
                run.save(epoch, history)
                write_metrics(out, history)
    if out is not None and rank == 0 and history[-1]["epoch"] == epochs:
        checkpoint.save(out / MODEL, {"state_dict": model.state_dict(), "config": config, **(model_info or {})})
    return history


def load_weights(model: nn.Module, path, device="cpu") -> nn.Module:
    """Load the weights :func:`fit_model` wrote (``path``: its ``out`` folder or the ``model.pt`` in it) into ``model``.

    ``model`` must be built as the trained one was (same class and sizes). The file is read with
    ``torch.load(weights_only=True)`` and its sha256 checksum verified; a missing, damaged or
    foreign file, or weights that do not fit ``model``, raise an error naming the file. The
    ``model.pt`` of ``neuro train`` loads the same way. Returns ``model``, on ``device``.
    """
    path = Path(path)
    path = path / MODEL if path.is_dir() else path
    state = checkpoint.load(path, ("state_dict",), device, "model file")
    try:
        model.load_state_dict(state["state_dict"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise checkpoint.CheckpointError(f"{path}: the weights do not fit this model ({exc})") from None
    return model.to(device)


def _batches(data, epoch: int):
    batches = data(epoch) if callable(data) and not isinstance(data, Iterable) else data
    sampler = getattr(batches, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    return batches


def _report(line: str, progress: bool) -> None:
    if progress:
        tqdm.write(line)
    else:
        log.info(line)


class _Run:
    """The state one :func:`fit_model` call threads through its epochs."""

    def __init__(self, model, optimizer, scheduler, callbacks, loss, head, device, time_first, out, config):
        self.model, self.optimizer, self.scheduler, self.callbacks = model, optimizer, scheduler, callbacks
        self.loss, self.head, self.device, self.time_first, self.out = loss, head, device, time_first, out
        self.config = config
        self.dtype = model_dtype(model)

    def batch(self, x, y):
        return prepare_batch(x, y, self.device, self.dtype, self.time_first)

    def logits(self, net, x):
        z = net(x)
        return self.head(z) if self.head is not None else z

    def train_epoch(self, net, batches, desc: str, progress: bool, world: int) -> torch.Tensor:
        """One pass over ``batches``; ``[loss sum, correct, samples]`` summed over ranks."""
        sums = torch.zeros(3, dtype=torch.float64)
        net.train()
        total = len(batches) if hasattr(batches, "__len__") else None
        for i, (x, y) in enumerate(tqdm(batches, desc=desc, total=total, disable=not progress, leave=False)):
            x, y = self.batch(x, y)
            self.optimizer.zero_grad(set_to_none=True)
            z = self.logits(net, x)
            loss = self.loss(z, y)
            if world == 1 and not math.isfinite(loss.item()):  # under DDP all ranks stop together below
                raise self.diverged(desc.split("/")[0], f"the training loss of batch {i + 1} is {loss.item()}")
            loss.backward()
            self.optimizer.step()
            for cb in self.callbacks:
                if hasattr(cb, "after_batch"):
                    cb.after_batch()
            sums += torch.tensor([loss.item() * len(y), _correct(z, y), len(y)], dtype=torch.float64)
        if world > 1:
            dist.all_reduce(sums)
        if sums[2] == 0:
            raise ValueError("fit_model: the training data yielded no batches")
        self.check_finite(desc.split("/")[0], sums[0].item())
        return sums

    @torch.no_grad()
    def evaluate(self, val, epoch: int, seconds: float, sums, lr=None) -> dict:
        """The history row of ``epoch``: training sums (if any) and loss/accuracy on ``val``."""
        test_loss = test_acc = None
        if val is not None:
            test_loss, test_acc = evaluate(self.model, _batches(val, epoch), self.loss, self.head, self.batch)
        lr = self.optimizer.param_groups[0]["lr"] if lr is None else lr
        if sums is None:
            return _row(epoch, None, None, test_loss, test_acc, lr, seconds, 0)
        return _row(epoch, sums[0] / sums[2], sums[1] / sums[2], test_loss, test_acc, lr, seconds,
                    sums[2] / max(seconds, 1e-12))

    def check_finite(self, epoch, loss_sum) -> None:
        if not math.isfinite(loss_sum):
            raise self.diverged(epoch, f"the training loss is {loss_sum}")
        for name, p in self.model.named_parameters():
            if not torch.isfinite(p).all():
                raise self.diverged(epoch, f"parameter {name!r} has NaN or infinite values")

    def diverged(self, epoch, what) -> TrainingDiverged:
        kept = f"; {self.out / CHECKPOINT} still holds the last finished epoch" if self.out is not None else ""
        return TrainingDiverged(f"training diverged in {epoch}: {what}. Stopped without saving this epoch"
                                f"{kept}. Try a smaller learning rate, or check dt, tau_mem and surrogate_slope")

    def save(self, epoch: int, history: list[dict]) -> None:
        state = {"epoch": epoch, "config": self.config, "history": history, "model": self.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(),
                 "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                 "torch_rng": torch.get_rng_state(),
                 "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                 "callbacks": [cb.state_dict() if isinstance(cb, nn.Module) else None for cb in self.callbacks]}
        checkpoint.save(self.out / CHECKPOINT, state)

    def restore(self) -> tuple[int, list[dict]]:
        """Load ``checkpoint.pt`` into the model, optimizer, scheduler, callbacks and RNG; next epoch, history."""
        path = None if self.out is None else self.out / CHECKPOINT
        if path is None or not path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {path} (train once without --resume first)")
        state = checkpoint.load(path, STATE_KEYS, self.device)
        if state["config"] != self.config:
            raise ValueError(f"--resume: {path} was written with a different config; use the same config or a "
                             "new output folder")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            for cb, cb_state in zip(self.callbacks, state.get("callbacks", [])):
                if isinstance(cb, nn.Module) and cb_state is not None:
                    cb.load_state_dict(cb_state)
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise checkpoint.CheckpointError(f"{path}: does not fit this model or optimizer ({exc})") from None
        torch.set_rng_state(state["torch_rng"].cpu())
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        return state["epoch"] + 1, state["history"]


def adam(model: nn.Module, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam over the model's parameters, as torch's fused kernel where it has one (all parameters floating
    point on CPU or CUDA): one pass per step instead of one op per term (about 4x faster on CPU for the
    default model), the same update to rounding."""
    params = list(model.parameters())
    fused = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating-point parameter (float32 without one)."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def prepare_batch(x, y, device, dtype, time_first: bool = True):
    """``(x, y)`` on ``device``: ``x [B, T, ...]`` made ``[T, B, ...]`` if ``time_first``, in ``dtype``; ``y`` long."""
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if time_first:
        if x.dim() < 3:
            raise ValueError(f"fit_model: time_first=True needs batches x [B, T, ...], got shape "
                             f"{tuple(x.shape)}; pass time_first=False for a model without a time axis")
        x = x.transpose(0, 1)
    # one copy that converts and reorders (a plain .to keeps the batch-major strides; the model then copies again)
    return x.to(device, dtype, memory_format=torch.contiguous_format), y.to(device).long()


def _correct(z, y) -> int:
    """Correct argmax predictions, 0 when the output is not ``[B, classes]`` logits."""
    if isinstance(z, torch.Tensor) and z.dim() == 2 and z.shape[0] == len(y):
        return int((z.argmax(1) == y).sum())
    return 0


@torch.no_grad()
def evaluate(model: nn.Module, batches, loss=None, head=None, prepare=None) -> tuple[float, float]:
    """Mean loss (default cross-entropy) and accuracy of ``model`` over ``(x, y)`` batches.

    ``prepare(x, y)`` readies a batch (device, dtype, time axis); ``head`` maps outputs to logits.
    """
    loss = loss or nn.functional.cross_entropy
    model.eval()
    total, correct, n = 0.0, 0, 0
    for x, y in batches:
        x, y = prepare(x, y) if prepare is not None else (x, y)
        z = model(x)
        z = head(z) if head is not None else z
        total += float(loss(z, y)) * len(y)
        correct += _correct(z, y)
        n += len(y)
    if n == 0:
        raise ValueError("evaluate: the validation data yielded no batches")
    return total / n, correct / n


def _row(epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds, samples_per_s) -> dict:
    values = (epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds, samples_per_s)
    return {k: (None if v is None else float(v) if k != "epoch" else int(v)) for k, v in zip(METRICS, values)}


def _describe(row: dict) -> str:
    def f(key):
        return "-" if row[key] is None else f"{row[key]:.4f}"

    return (f"epoch {row['epoch']}: train loss {f('train_loss')} acc {f('train_acc')} | "
            f"test loss {f('test_loss')} acc {f('test_acc')} | {row['samples_per_s']:.0f} samples/s")


def write_metrics(out: Path, history: list[dict]) -> None:
    """``metrics.json``, ``metrics.csv`` and ``learning_curve.png`` from the per-epoch history."""
    write_json(out / "metrics.json", history)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRICS)
    writer.writeheader()
    writer.writerows(history)
    write_text(out / "metrics.csv", buf.getvalue())
    save_figure(learning_curve(history), out / "learning_curve.png")


def learning_curve(history: list[dict]):
    """Loss and accuracy (train and test) against epoch; epoch 0 is the untrained model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, what in zip(axes, ("loss", "acc")):
        for split, style in (("train", "o-"), ("test", "s--")):
            pts = [(r["epoch"], r[f"{split}_{what}"]) for r in history if r[f"{split}_{what}"] is not None]
            if pts:
                ax.plot(*zip(*pts), style, label=split, ms=3)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss" if what == "loss" else "accuracy")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig
