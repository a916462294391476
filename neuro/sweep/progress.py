"""Progress of a sweep: a line on stdout per finished, retried or failed trial (a Ray Tune callback)."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from pathlib import Path

from neuro.sweep.plan import label

try:
    from ray.tune import Callback
except ImportError:  # ray missing: the command says so before it gets here
    Callback = object


def say(text: str) -> None:
    """A progress line on stdout (Tune pickles its callbacks: no function is kept in one)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def plain(value):
    """A numpy scalar from Tune as a plain Python value."""
    return value.item() if hasattr(value, "item") else value


class Progress(Callback):
    """One line per finished, failed or retried trial: counts and elapsed time."""

    def __init__(self, total: int):
        self.total, self.t0 = total, time.perf_counter()
        self.done, self.retried, self.failures = 0, 0, []

    def _name(self, trial) -> str:
        return str(trial.config.get("unit") or label({k: plain(v) for k, v in trial.config.items()}))

    def _line(self, text: str) -> None:
        say(f"sweep: [{self.done + len(self.failures)}/{self.total}] {text} "
            f"({len(self.failures)} failed, {self.retried} retried, {time.perf_counter() - self.t0:.0f} s)")

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = trial.last_result or {}
        if result.get("ok", True) and not (isinstance(result.get("objective"), float)
                                           and math.isnan(result["objective"])):
            self.done += 1
            extra = f", objective {result['objective']:.4g}" if "objective" in result else ""
            self._line(f"{self._name(trial)} done{extra}")
        else:
            self._fail(trial, result.get("error") or "no result")

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.retried += 1
        self._line(f"{self._name(trial)} died; retrying")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._fail(trial, _error_text(trial))

    def _fail(self, trial, error: str) -> None:
        self.failures.append({"trial": self._name(trial), "error": error})
        self._line(f"{self._name(trial)} FAILED: {error[:300]}")


def _error_text(trial) -> str:
    with contextlib.suppress(Exception):
        path = Path(trial.local_path or "") / "error.txt"
        if path.is_file():
            return path.read_text().strip().splitlines()[-1]
    return "the trial's worker died (retries used up)"
