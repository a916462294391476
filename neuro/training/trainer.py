"""``neuro train``'s run: the model of a config trained on :class:`FrameData` by :func:`fit_model`.

:func:`fit` builds the :class:`SpikingNet` of the config, Adam (optionally cosine-annealed
per epoch), the seeded batches of :func:`neuro.training.data.epoch_batches` and the test
batches, and hands them to :func:`neuro.training.api.fit_model` (checkpoints, metrics,
learning curve, exact resume, DDP). Files written to ``out`` (atomically, rank 0 only)::

    checkpoint.pt       after every epoch: model, optimizer, scheduler, RNG states, epoch, history, config
    metrics.json/.csv   one row per epoch: train/test loss and accuracy, lr, seconds, samples/s
    learning_curve.png  loss and accuracy against epoch
    model.pt            the final model: config, input shape, classes, state dict (:func:`load_model`)
    network.npz         the final model as a neuro.Network (when it converts; :mod:`neuro.training.convert`)

The batch order of an epoch depends only on (seed, epoch), so ``resume=True`` gives the
same result as an uninterrupted run; under ``torch.distributed``
(:mod:`neuro.training.distributed`) each rank trains on its share of every batch.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from neuro.io import remove_stale_temps
from neuro.training import checkpoint
from neuro.training import config as train_config
from neuro.training.api import (  # noqa: F401  (re-exported: the names neuro train's users know)
    CHECKPOINT,
    METRICS,
    STATE_KEYS,
    TrainingDiverged,
    adam,
    evaluate,
    fit_model,
    learning_curve,
    rank_world,
    write_metrics,
)
from neuro.training.convert import to_network
from neuro.training.data import FrameData, epoch_batches

log = logging.getLogger(__name__)

MODEL, NETWORK = "model.pt", "network.npz"
EVAL_BATCH = 256
OUTPUTS = (CHECKPOINT, MODEL, NETWORK, "metrics.json", "metrics.csv", "learning_curve.png")


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


def fit(cfg: dict, data: FrameData, out=None, resume: bool = False, device="cpu", progress: bool = True,
        dtype=torch.float32, stop_after: int | None = None):
    """Train the model of ``cfg`` (resolved by :func:`neuro.training.config.resolve`) on ``data``.

    ``stop_after=k`` stops after epoch ``k`` (a time-limited job; continue with
    ``resume=True``). Returns ``(model, history)``; writes the files of the
    module docstring to ``out`` (if given); ``model.pt`` and ``network.npz``
    only when the last epoch is done.
    """
    device = torch.device(device)
    rank, world = rank_world()
    out = Path(out) if out is not None else None
    cfg = {**cfg, "data": {k: v for k, v in cfg["data"].items() if k != "overwrite"}}  # not part of the run
    seed, epochs, batch = cfg["seed"], cfg["epochs"], cfg["data"]["batch_size"]
    model = train_config.build_model(cfg["model"], data.input_shape, data.n_classes, seed).to(device, dtype)
    opt = adam(model, cfg["optim"]["lr"], cfg["optim"]["weight_decay"])
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
             if cfg["optim"]["schedule"] == "cosine" else None)

    def train(epoch):
        return [(data.x_train.index_select(0, idx), data.y_train.index_select(0, idx))  # (x[idx] is 20x slower)
                for idx in epoch_batches(len(data.y_train), batch, seed, epoch, rank, world)]

    test = [(data.x_test[i:i + EVAL_BATCH], data.y_test[i:i + EVAL_BATCH]) for i in range(0, len(data.y_test),
                                                                                       EVAL_BATCH)]
    if out is not None and rank == 0:
        remove_stale_temps(out, (MODEL, NETWORK))
    history = fit_model(model, train, test, epochs=epochs, out=out, optimizer=opt, scheduler=sched, device=device,
                        resume=resume, stop_after=stop_after, progress=progress, config=cfg,
                        model_info={"input_shape": list(data.input_shape), "n_classes": int(data.n_classes)})
    if rank == 0 and out is not None and history[-1]["epoch"] == epochs:
        _export_network(out, model, data.input_shape)
    return model, history


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
        log.warning("network.npz not written: %s", exc)
        return
    net.save(out / NETWORK)
