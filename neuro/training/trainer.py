"""Surrogate-gradient training (BPTT) of a :class:`SpikingNet` with checkpoints, metrics and exact resume.

Per epoch: the training set in the seeded order of :func:`neuro.training.data.epoch_batches`,
``loss = cross_entropy(model(x[T, B, ...]), y)``, Adam (optionally cosine-annealed
per epoch), then test loss/accuracy. Before the first epoch the untrained model
is evaluated (history entry ``epoch 0``), the baseline a learning run must beat.

Files written to ``out`` (all atomically, rank 0 only)::

    checkpoint.pt       after every epoch: model, optimizer, scheduler, RNG states, epoch, history, config
    metrics.json/.csv   one row per epoch: train/test loss and accuracy, lr, seconds, samples/s
    learning_curve.png  loss and accuracy against epoch
    model.pt            the final model: config, input shape, classes, state dict (:func:`load_model`)
    network.npz         the final model as a neuro.Network (when it converts; :mod:`neuro.training.convert`)

``resume=True`` restores everything from ``checkpoint.pt`` and continues with
the next epoch: the result is identical to an uninterrupted run (the batch
order depends only on seed and epoch). Under ``torch.distributed``
(:mod:`neuro.training.distributed`) the model is wrapped in
``DistributedDataParallel`` and each rank trains on its share of every batch.
"""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from neuro.io import remove_stale_temps, save_figure, write_json, write_text
from neuro.training import checkpoint
from neuro.training import config as train_config
from neuro.training.convert import to_network
from neuro.training.data import FrameData, epoch_batches, time_first

CHECKPOINT, MODEL, NETWORK = "checkpoint.pt", "model.pt", "network.npz"
METRICS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "samples_per_s")
EVAL_BATCH = 256
OUTPUTS = (CHECKPOINT, MODEL, NETWORK, "metrics.json", "metrics.csv", "learning_curve.png")
STATE_KEYS = ("epoch", "config", "history", "model", "optimizer", "scheduler", "torch_rng", "cuda_rng")


class TrainingDiverged(ValueError):
    """The loss or the weights became NaN or infinite."""


def select_device(name: str = "cpu") -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when available, else CPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available here; use --device cpu")
    return device


def _rank_world():
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device, dtype=torch.float32):
    """Mean cross-entropy and accuracy of ``model`` on ``x [N, T, ...]``, ``y [N]``."""
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(y), EVAL_BATCH):
        logits = model(time_first(x[i:i + EVAL_BATCH], device, dtype))
        target = y[i:i + EVAL_BATCH].to(device)
        loss += nn.functional.cross_entropy(logits, target, reduction="sum").item()
        correct += (logits.argmax(1) == target).sum().item()
    return loss / len(y), correct / len(y)


def fit(cfg: dict, data: FrameData, out=None, resume: bool = False, device="cpu", progress: bool = True,
        dtype=torch.float32, stop_after: int | None = None):
    """Train the model of ``cfg`` (resolved by :func:`neuro.training.config.resolve`) on ``data``.

    ``stop_after=k`` stops after epoch ``k`` (a time-limited job; continue with
    ``resume=True``). Returns ``(model, history)``; writes the files of the
    module docstring to ``out`` (if given); ``model.pt`` and ``network.npz``
    only when the last epoch is done.
    """
    device = torch.device(device)
    rank, world = _rank_world()
    out = Path(out) if out is not None else None
    seed, epochs, batch = cfg["seed"], cfg["epochs"], cfg["data"]["batch_size"]
    model = train_config.build_model(cfg["model"], data.input_shape, data.n_classes, seed).to(device, dtype)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["optim"]["lr"], weight_decay=cfg["optim"]["weight_decay"])
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
             if cfg["optim"]["schedule"] == "cosine" else None)
    history, start = [], 1
    if out is not None and rank == 0:
        remove_stale_temps(out, OUTPUTS)
    if resume:
        start, history = _restore(out, cfg, model, opt, sched, device)
    else:
        test_loss, test_acc = evaluate(model, data.x_test, data.y_test, device, dtype)
        history.append(_row(0, None, None, test_loss, test_acc, opt.param_groups[0]["lr"], 0.0, 0))
    net = nn.parallel.DistributedDataParallel(model, forward_sync_buffers=False) if world > 1 else model
    last = epochs if stop_after is None else min(epochs, stop_after)
    for epoch in range(start, last + 1):
        t0 = time.perf_counter()
        batches = epoch_batches(len(data.y_train), batch, seed, epoch, rank, world)
        sums = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, samples (this rank)
        net.train()
        for i, idx in enumerate(tqdm(batches, desc=f"epoch {epoch}/{epochs}", disable=not progress or rank != 0,
                                     leave=False)):
            x, y = time_first(data.x_train[idx], device, dtype), data.y_train[idx].to(device)
            opt.zero_grad(set_to_none=True)
            logits = net(x)
            loss = nn.functional.cross_entropy(logits, y)
            if world == 1 and not math.isfinite(loss.item()):  # under DDP all ranks stop together below
                raise _diverged(epoch, f"the training loss of batch {i + 1} is {loss.item()}", out)
            loss.backward()
            opt.step()
            sums += torch.tensor([loss.item() * len(y), (logits.argmax(1) == y).sum().item(), len(y)],
                                 dtype=torch.float64)
        if world > 1:
            dist.all_reduce(sums)
        _check_finite(epoch, sums[0].item(), model, out)
        lr = opt.param_groups[0]["lr"]
        if sched is not None:
            sched.step()
        seconds = time.perf_counter() - t0
        if rank == 0:
            test_loss, test_acc = evaluate(model, data.x_test, data.y_test, device, dtype)
            history.append(_row(epoch, sums[0] / sums[2], sums[1] / sums[2], test_loss, test_acc, lr, seconds,
                                sums[2] / seconds))
            if progress:
                tqdm.write(_describe(history[-1]))
            if out is not None:
                _save_checkpoint(out, cfg, model, opt, sched, epoch, history)
                write_metrics(out, history)
    if rank == 0 and out is not None and last == epochs:
        save_model(out / MODEL, cfg, model, data.input_shape, data.n_classes)
        _export_network(out, model, data.input_shape)
    return model, history


def _check_finite(epoch, loss_sum, model, out) -> None:
    if not math.isfinite(loss_sum):
        raise _diverged(epoch, f"the training loss is {loss_sum}", out)
    for name, p in model.named_parameters():
        if not torch.isfinite(p).all():
            raise _diverged(epoch, f"parameter {name!r} has NaN or infinite values", out)


def _diverged(epoch, what, out) -> TrainingDiverged:
    kept = f"; {out / CHECKPOINT} still holds the last finished epoch" if out is not None else ""
    return TrainingDiverged(f"training diverged in epoch {epoch}: {what}. Stopped without saving this epoch"
                            f"{kept}. Try a smaller optim.lr, or check model.dt, tau_mem and surrogate_slope")


def _row(epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds, samples_per_s) -> dict:
    values = (epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds, samples_per_s)
    return {k: (None if v is None else float(v) if k != "epoch" else int(v)) for k, v in zip(METRICS, values)}


def _describe(row: dict) -> str:
    return (f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f} | "
            f"test loss {row['test_loss']:.4f} acc {row['test_acc']:.4f} | {row['samples_per_s']:.0f} samples/s")


# --- files ------------------------------------------------------------------------------------------
def _save_checkpoint(out: Path, cfg, model, opt, sched, epoch, history):
    state = {"epoch": epoch, "config": cfg, "history": history, "model": model.state_dict(),
             "optimizer": opt.state_dict(), "scheduler": None if sched is None else sched.state_dict(),
             "torch_rng": torch.get_rng_state(),
             "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
    checkpoint.save(out / CHECKPOINT, state)


def _restore(out, cfg, model, opt, sched, device):
    """Load ``checkpoint.pt``; returns the next epoch and the history so far."""
    path = None if out is None else out / CHECKPOINT
    if path is None or not path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {path} (train once without --resume first)")
    state = checkpoint.load(path, STATE_KEYS, device)
    if state["config"] != cfg:
        raise ValueError(f"--resume: {path} was written with a different config; use the same config or a new "
                         "output folder")
    try:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None:
            sched.load_state_dict(state["scheduler"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise checkpoint.CheckpointError(f"{path}: does not fit the model of its config ({exc})") from None
    torch.set_rng_state(state["torch_rng"].cpu())
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
    return state["epoch"] + 1, state["history"]


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
        ax.set_ylabel("cross-entropy" if what == "loss" else "accuracy")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def save_model(path: Path, cfg, model, input_shape, n_classes) -> Path:
    return checkpoint.save(path, {"config": cfg, "input_shape": list(input_shape), "n_classes": int(n_classes),
                                  "state_dict": model.state_dict()})


def load_model(path, device="cpu"):
    """The :class:`SpikingNet` saved in ``model.pt``; returns ``(model, config, input_shape)``."""
    state = checkpoint.load(path, ("config", "input_shape", "n_classes", "state_dict"), device, "model file",
                            unverified_ok=True)
    cfg = train_config.resolve(state["config"])  # files of older versions lack newer keys: their defaults
    model = train_config.build_model(cfg["model"], state["input_shape"], state["n_classes"], cfg["seed"])
    try:
        model.load_state_dict(state["state_dict"])
    except (RuntimeError, TypeError, AttributeError, KeyError) as exc:
        raise checkpoint.CheckpointError(f"{path}: the weights do not fit the model its config describes "
                                         f"({type(exc).__name__})") from None
    return model.to(device), cfg, tuple(state["input_shape"])


def _export_network(out: Path, model, input_shape) -> None:
    try:
        net = to_network(model, input_shape)
    except ValueError as exc:
        tqdm.write(f"network.npz not written: {exc}")
        return
    net.save(out / NETWORK)
