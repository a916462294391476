"""Checksummed, atomic torch files (``checkpoint.pt``, ``model.pt``).

:func:`save` adds the sha256 of every value of the state (tensor bytes, dtypes, shapes and the
plain values: config, history, epoch) under ``"sha256"`` and writes atomically, removing the
temporary files that earlier, killed writes left. :func:`load` reads with
``torch.load(weights_only=True)`` and refuses, with one :class:`CheckpointError` naming the file,
a file that is truncated, corrupt, foreign, lacks a key, or whose values no longer match the checksum.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch

from neuro.io import atomic_path, remove_stale_temps

DIGEST = "sha256"


class CheckpointError(ValueError):
    """A checkpoint or model file that cannot be trusted."""


def digest(obj) -> str:
    """sha256 over ``obj``: nested dicts, lists and tuples, tensors (dtype, shape, bytes) and plain values."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _feed(h, obj) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{obj.dtype}{tuple(obj.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}|".encode())
        for key in sorted(obj, key=repr):
            _feed(h, key)
            _feed(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)}|".encode())
        for value in obj:
            _feed(h, value)
    else:
        h.update(f"V{type(obj).__name__}:{obj!r}|".encode())


def save(path, state: dict) -> Path:
    """Write ``state`` plus its checksum to ``path`` atomically; stale temporaries of ``path`` are removed."""
    path = Path(path)
    remove_stale_temps(path.parent, [path.name])
    with atomic_path(path) as tmp:
        torch.save({**state, DIGEST: digest(state)}, tmp)
    return path


def load(path, keys=(), device="cpu", what: str = "checkpoint", unverified_ok: bool = False) -> dict:
    """The state saved by :func:`save`, checked: readable, checksum matches, ``keys`` present.

    ``unverified_ok`` accepts a file written before checksums existed (loaded safely with
    ``weights_only=True``, its keys checked) with a warning that it could not be verified.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no {what} file")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols; the error below says it
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # zip, pickle and OS errors; torch's own message may advise unsafe loading
        raise CheckpointError(f"{path}: not a readable {what} (truncated, corrupt or not written by neuro; "
                              f"{type(exc).__name__}); delete it or train again without --resume") from None
    if isinstance(state, dict) and DIGEST not in state and unverified_ok:
        warnings.warn(f"{path}: {what} has no checksum (written by an older neuro); its contents are not verified",
                      stacklevel=2)
    elif not isinstance(state, dict) or DIGEST not in state:
        raise CheckpointError(f"{path}: not a neuro {what} (no checksum; written by another program or an older "
                              "neuro); train again without --resume")
    elif state.pop(DIGEST) != digest(state):
        raise CheckpointError(f"{path}: {what} is damaged (its contents do not match the stored sha256 "
                              "checksum); delete it or train again without --resume")
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(f"{path}: {what} lacks {missing}")
    return state
