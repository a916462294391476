"""Numba's on-disk cache, keyed by the source of every kernel file.

Numba invalidates a cached kernel only when the file that defines it changes, not when a
function it inlines from another file does (``neuro.simulator`` inlines ``neurons.lif``):
after an upgrade or an edit of ``neurons/`` a stale kernel would run silently. So the cache
lives in a folder named by a hash of every project file that holds a Numba kernel
(``~/.cache/neuro/numba/<hash>``, or ``$XDG_CACHE_HOME``); a user's own ``NUMBA_CACHE_DIR`` wins.
Called by ``neurons/__init__.py`` before any kernel is compiled.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

PACKAGES = ("neurons", "synapses", "neuro")


def kernel_sources(root: Path) -> list[Path]:
    """The project's ``.py`` files under ``root`` that define Numba kernels, in a fixed order."""
    files = sorted(p for pkg in PACKAGES for p in (root / pkg).rglob("*.py"))
    return [p for p in files if "njit" in p.read_text(encoding="utf-8", errors="replace")]


def source_hash(root: Path) -> str:
    h = hashlib.sha256()
    for path in kernel_sources(root):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def configure() -> Path | None:
    """Point Numba's cache at the folder of this source hash (unless ``NUMBA_CACHE_DIR`` is set)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    from numba.core import config

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "neuro" / "numba"
    folder = base / source_hash(Path(__file__).resolve().parent.parent)
    config.CACHE_DIR = str(folder)
    return folder
