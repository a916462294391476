"""Seconds per epoch of ``neuro train`` on its default config, optionally beside another checkout of neuro.

Each run is a fresh process that trains the default config (``neuro.training.config.resolve``) for
``--epochs`` epochs on one torch thread and reports the ``seconds`` of every epoch after the first
(the first pays for compiling and warming up), as the trainer's history (``metrics.csv``) records them:
wall-clock seconds, and CPU seconds (the same epoch clock read from ``time.process_time``, which a
shared machine inflates much less than wall time). With ``--baseline PATH`` (a checkout of another
revision, e.g. ``git worktree add /tmp/base 827887a``) the two are run alternately, ``--rounds``
times each, and the ratio of the medians is printed. ``--accuracy 0 1 2`` also trains the default config
in full (its own number of epochs) with those seeds on each side and prints the test accuracies.

    .venv/bin/python benchmarks/train_epoch.py [--epochs 3 --rounds 3 --baseline /tmp/base --accuracy 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
clock = sys.argv[1]
if clock == "cpu":
    time.perf_counter = time.process_time  # the trainer's epoch clock, as CPU time of this process
import torch
torch.set_num_threads(1)
from neuro.training import config, data, trainer
cfg = config.resolve({"seed": int(sys.argv[3]), **({"epochs": int(sys.argv[2])} if int(sys.argv[2]) else {})})
frames = data.load_frames(cfg["data"], progress=False)
_, history = trainer.fit(cfg, frames, progress=False)
print(json.dumps({"seconds": [row["seconds"] for row in history[2:]], "test_acc": history[-1]["test_acc"]}))
"""


def run(checkout: Path, clock: str, epochs: int, seed: int) -> dict:
    """One training run in a fresh process importing neuro from ``checkout`` (``epochs=0``: the config's own)."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, clock, str(epochs), str(seed)], env=env, cwd=checkout,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"training in {checkout} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is not counted)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per checkout and clock")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline", type=Path, help="another checkout of neuro to compare with")
    parser.add_argument("--accuracy", type=int, nargs="*", default=[], metavar="SEED",
                        help="also train the default config in full with these seeds and print test accuracy")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is not counted)")
    sides = {"this": ROOT}
    if args.baseline is not None:
        if not (args.baseline / "neuro" / "training").is_dir():
            parser.error(f"--baseline {args.baseline} is not a checkout of neuro (no neuro/training)")
        sides["baseline"] = args.baseline.resolve()
    seconds = {(side, clock): [] for side in sides for clock in ("cpu", "wall")}
    for r in range(args.rounds):
        for clock in ("cpu", "wall"):
            for side, checkout in sides.items():
                before = load()
                result = run(checkout, clock, args.epochs, args.seed)
                seconds[side, clock] += result["seconds"]
                print(f"round {r + 1} {clock:4s} {side:8s} load {before}-{load()}: epochs "
                      f"{' '.join(f'{s:.3f}' for s in result['seconds'])} s, test accuracy {result['test_acc']:.4f}",
                      flush=True)
    for clock in ("cpu", "wall"):
        medians = {side: statistics.median(seconds[side, clock]) for side in sides}
        line = ", ".join(f"{side} {m:.3f} s (range {min(seconds[side, clock]):.3f}-{max(seconds[side, clock]):.3f})"
                         for side, m in medians.items())
        ratio = f"; baseline / this = {medians['baseline'] / medians['this']:.2f}x" if "baseline" in medians else ""
        print(f"{clock} seconds per epoch, median: {line}{ratio}")
    for seed in args.accuracy:
        print(f"seed {seed}, default epochs, test accuracy: " + ", ".join(
            f"{side} {run(checkout, 'wall', 0, seed)['test_acc']:.4f}" for side, checkout in sides.items()), flush=True)


if __name__ == "__main__":
    main()
