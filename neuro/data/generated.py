"""Atomic, idempotent writing of generated datasets into a tonic-style folder.

A generator builds the whole folder in a temporary directory beside its final
place, writes a manifest (``neuro_manifest.json``: generator name, parameters,
per-file byte sizes) last, then renames the folder into place. So a folder
with a manifest is complete, a crash leaves no half-written dataset, and a
second call with the same parameters returns at once.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from neuro.io import write_json

MANIFEST = "neuro_manifest.json"


def read_manifest(folder) -> dict | None:
    """The manifest of a generated dataset folder, or ``None`` when there is none (e.g. real data)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: unreadable dataset manifest: {exc}") from None


def file_sizes(folder: Path, pattern: str) -> dict[str, int]:
    """Byte size of every file under ``folder`` matching ``pattern``, keyed by POSIX path relative to it."""
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.glob(pattern))}


def check_sample_counts(**counts) -> dict[str, int]:
    """Raise ``ValueError`` unless every count is a positive integer; return them as ints."""
    for name, value in counts.items():
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return {name: int(value) for name, value in counts.items()}


def build_dataset_folder(target, generator: str, params: dict, build: Callable[[Path], dict[str, int]],
                         overwrite: bool = False) -> Path:
    """Create ``target`` by calling ``build(tmp_folder)`` unless it already holds the same dataset.

    ``build`` fills the folder and returns ``{relative path: byte size}`` of the
    data files, which goes into the manifest. An existing ``target`` with the
    same generator and parameters is kept as is. One with other parameters is
    replaced only when ``overwrite`` is true; a folder without a manifest
    (for example the real dataset) is never touched.
    """
    target = Path(target)
    params = json.loads(json.dumps(params))  # normalise tuples etc. so comparisons are exact
    if target.exists():
        manifest = read_manifest(target)
        if manifest is None:
            raise ValueError(f"{target} exists and was not written by neuro's {generator} generator "
                             f"(no {MANIFEST}); refusing to overwrite it: choose another root")
        if manifest.get("generator") == generator and manifest.get("params") == params:
            return target
        if not overwrite:
            raise ValueError(f"{target} holds a dataset generated with other parameters "
                             f"({manifest.get('generator')}: {manifest.get('params')}); "
                             "pass overwrite=True (neuro train: --overwrite-data or data.overwrite: true) "
                             "or choose another root")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    old = None
    try:
        sizes = build(tmp)
        write_json(tmp / MANIFEST, {"generator": generator, "params": params, "files": sizes})
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / target.name)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return target


def write_placeholder_archive(path: Path, generator: str, contents: str) -> None:
    """A small valid zip standing in for a dataset's download archive (tonic only checks that it exists)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("README.txt", f"Placeholder written by neuro's {generator} generator: tonic only checks "
                                       f"that this file exists. The data is in {contents}.\n")
