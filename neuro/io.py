"""Safe, atomic file I/O shared by every command: nothing a user made is half-written or executed."""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
import yaml


@contextlib.contextmanager
def atomic_path(path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    On error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp",
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a finished file gets the usual mode
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def remove_stale_temps(folder, names) -> list[Path]:
    """Delete the temporary files that :func:`atomic_path` writes of ``names`` left in ``folder`` when killed.

    Only names of that exact form (``.NAME.`` + 8 random characters + a suffix) are removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = re.compile("|".join(rf"\.{re.escape(str(n))}\.[a-z0-9_]{{8}}(\.[A-Za-z0-9]+)?" for n in names))
    removed = []
    for entry in folder.iterdir():
        if pattern.fullmatch(entry.name) and entry.is_file():
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed.append(entry)
    return removed


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where that is unavailable."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


@contextlib.contextmanager
def staged_folder(path, owned) -> Iterator[Path]:
    """Yield an empty staging folder beside ``path``; on success it replaces ``path`` as a whole.

    A reader therefore sees either the old complete folder or the new one, never a mix. ``path`` may
    hold only names in ``owned`` (earlier results; anything else is refused, never deleted). Staging
    folders that killed runs left beside ``path`` are removed first; on error the staging folder goes.
    """
    path, owned = Path(path), set(owned)
    if path.exists() and not path.is_dir():
        raise ValueError(f"output folder {str(path)!r} cannot be created: it exists and is not a folder")
    output_folder(path.parent)
    olds = sorted(path.parent.glob(f".{path.name}.old-*"))
    if not path.exists() and olds:  # a run killed between the two renames of the fallback below
        os.rename(olds[-1], path)
    for left in sorted(path.parent.glob(f".{path.name}.staging-*")) + olds:
        shutil.rmtree(left, ignore_errors=True)
    if path.is_dir():
        foreign = sorted(e.name for e in path.iterdir() if e.name not in owned
                         and not any(e.name.startswith(f".{o}.") for o in owned))
        if foreign:
            raise ValueError(f"output folder {str(path)!r} holds files this command did not write ({foreign[:5]}); "
                             "choose a new or empty folder")
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.staging-", dir=path.parent))
    os.chmod(staging, 0o777 & ~_UMASK)
    try:
        yield staging
        if not path.exists():
            os.rename(staging, path)
        elif not _exchange(staging, path):
            old = path.parent / f".{path.name}.old-{staging.name.rsplit('-', 1)[-1]}"
            os.rename(path, old)
            os.rename(staging, path)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def output_folder(path) -> Path:
    """Create the output folder ``path`` (and its parents) up front, so that a path that cannot be a
    folder fails before any work, with a clear error rather than at the first write."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise ValueError(f"output folder {str(path)!r} cannot be created: {exc.filename!r} exists and is "
                         "not a folder") from None
    return path


def write_text(path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def _plain(obj):
    """Plain JSON values: numpy arrays and scalars unpacked, NaN and infinities as ``null`` (JSON has none)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return _plain(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path, data: Any) -> Path:
    """Atomically write ``data`` as indented, strict JSON (numpy arrays and scalars allowed; NaN/inf -> null)."""
    return write_text(path, json.dumps(_plain(data), indent=2, allow_nan=False) + "\n")


def save_figure(fig, path, dpi: int = 120) -> Path:
    """Atomically save a matplotlib figure (format from the suffix) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


class ConfigError(ValueError):
    """A configuration file that cannot be read or does not make sense."""


def load_config(path) -> dict:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) config with safe loaders.

    Raises :class:`ConfigError` naming the file for a missing file, a syntax
    error, or a top level that is not a mapping.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, not a config file")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as a text config ({exc})") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise ConfigError(f"{path}: unknown config format {path.suffix!r} (use .yaml, .yml or .toml)")
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: malformed config: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def check_keys(section: dict, allowed, where: str) -> None:
    """Raise :class:`ConfigError` for keys of ``section`` not in ``allowed`` (catches typos)."""
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def merge_config(user: dict | None, defaults: dict, where: str) -> dict:
    """A deep copy of ``defaults`` updated by ``user``: top-level keys, and the keys inside mapping sections.

    Unknown keys at either level and a non-mapping given for a section raise :class:`ConfigError` naming ``where``.
    """
    import copy

    user = dict(user or {})
    check_keys(user, defaults, where)
    out = copy.deepcopy(defaults)
    for key, value in user.items():
        if isinstance(defaults[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {key!r} must be a mapping, got {type(value).__name__}")
            check_keys(value, defaults[key], f"{where} [{key}]")
            out[key].update(value)
        else:
            out[key] = value
    return out
