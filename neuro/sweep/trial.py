"""Run one unit in a worker, and read its metrics back.

A unit folder ``trials/<name>/`` holds ``config.yaml``, ``out/`` (the command's outputs), and
``result.json``, written last: a folder with ``result.json`` is finished. Each attempt runs the command
in ``attempts/<k>/`` (log and worker pid included); only a successful attempt is renamed to ``out/``,
so a crash leaves no half-written outputs where a finished trial's would be.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from neuro.io import ConfigError, write_json, write_text
from neuro.sweep.dotted import get_dotted

LOG_TAIL = 3  # lines of the command's log quoted in an error


class TrialCrash(RuntimeError):
    """The command died (signal or unexpected exit code): worth another attempt."""


def read_result(folder: Path) -> dict | None:
    """The ``result.json`` of a finished unit, or None."""
    path = Path(folder) / "result.json"
    return json.loads(path.read_text()) if path.is_file() else None


def run_unit(unit: dict, trials: str, cwd: str, env: dict) -> dict:
    """Run ``unit`` in ``trials/<name>`` unless finished; its ``result.json`` record.

    A command that exits with 1 or 2 (neuro's error exits) gives a record with ``status: failed``
    (rerunning would fail again); one killed by a signal or exiting otherwise raises :class:`TrialCrash`,
    which the runner retries, as it does when this worker itself dies.
    """
    folder = Path(trials) / unit["name"]
    done = read_result(folder)
    if done is not None:
        return done
    write_text(folder / "config.yaml", yaml.safe_dump(unit["config"], sort_keys=False))
    attempts = folder / "attempts"
    attempts.mkdir(parents=True, exist_ok=True)
    k = 1 + sum(1 for p in attempts.iterdir() if p.is_dir())
    work = attempts / str(k)
    work.mkdir()
    write_text(work / "worker.pid", str(os.getpid()))
    cmd = [sys.executable, "-m", "neuro.cli", *unit["argv"], str(folder / "config.yaml"),
           "--out", str(work / "out"), *unit["tail"]]
    t0 = time.perf_counter()
    with open(work / "log.txt", "w") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                            env={**os.environ, **env}, preexec_fn=_die_with_parent).returncode
    wall = time.perf_counter() - t0
    record = {"name": unit["name"], "key": unit["key"], "seed": unit["seed"], "params": unit["params"],
              "attempts": k, "wall_s": round(wall, 3),
              "command": ["neuro", *unit["argv"], "config.yaml", *unit["tail"]]}
    if rc in (1, 2):
        return {**record, "status": "failed", "error": f"exit code {rc}: {_tail(work / 'log.txt')}"}
    if rc != 0:
        raise TrialCrash(f"{unit['name']}: attempt {k} exited with {rc}: {_tail(work / 'log.txt')}")
    os.replace(work / "log.txt", work / "out" / "log.txt")
    if (folder / "out").exists():
        shutil.rmtree(folder / "out")
    os.replace(work / "out", folder / "out")
    write_json(folder / "result.json", {**record, "status": "ok", "finished": time.time()})
    shutil.rmtree(attempts, ignore_errors=True)
    return read_result(folder)


def _die_with_parent() -> None:
    """In the child: be killed when the worker that started it dies (Linux; elsewhere a no-op)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _tail(path: Path) -> str:
    """The last lines of a log (progress bars' carriage returns end lines too)."""
    text = path.read_text(errors="replace") if path.is_file() else ""
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return " | ".join(lines[-LOG_TAIL:]) or "(no output)"


def read_metrics(folder: Path, result: str, metrics: dict, rows=None, row_axes=()) -> list[dict]:
    """Metrics of a finished unit: one dict, or one per row of ``rows = (file, key)``.

    Without rows every metric must be a number in ``out/<result>``; in a row a missing metric is None
    (rows of different kinds carry different metrics).
    """
    file = rows[0] if rows else result
    path = Path(folder) / "out" / file
    if not path.is_file():
        raise ConfigError(f"{folder.name}: the trial wrote no {file} (set 'result' or 'rows' in the SPEC)")
    data = json.loads(path.read_text())
    if not rows:
        return [{name: metric_value(data, m, str(path)) for name, m in metrics.items()}]
    table = get_dotted(data, rows[1], str(path))
    if not isinstance(table, list) or not all(isinstance(r, dict) for r in table):
        raise ConfigError(f"{path}: {rows[1]!r} is not a list of rows")
    out = []
    for i, row in enumerate(table):
        missing = [a for a in row_axes if a not in row]
        if missing:
            raise ConfigError(f"{path}: row {i} has no field(s) {missing} (rows.axes)")
        values = {}
        for name, m in metrics.items():
            try:
                values[name] = metric_value(row, m, f"{path}: row {i}")
            except ConfigError:
                values[name] = None
        out.append({**{a: row[a] for a in row_axes}, **values})
    return out


def metric_value(data, metric: dict, where: str) -> float:
    """A metric of the SPEC from one result mapping: the number at ``path``, minus the one at ``minus`` or
    divided by the one at ``over`` when the metric names them."""
    value = _number(get_dotted(data, metric["path"], where), f"{where}: {metric['path']}")
    if metric.get("minus"):
        return value - _number(get_dotted(data, metric["minus"], where), f"{where}: {metric['minus']}")
    if metric.get("over"):
        return value / _number(get_dotted(data, metric["over"], where), f"{where}: {metric['over']}")
    return value


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} is not a number: {value!r}")
    return float(value)
