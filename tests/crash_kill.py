"""Crash test (a script, not collected by pytest): SIGKILL ``neuro train`` and ``neuro prune`` at random moments.

    .venv/bin/python tests/crash_kill.py [KILLS] [SEED]

After every kill the output folder must be readable: the train checkpoint loads (checksum) and its
history has every finished epoch; the prune folder is absent or complete (report.json matches
pruned.npz). The next run (``--resume`` for train) must finish and leave no temporary files.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's neuro, not an installed one
TRAIN = {"epochs": 4, "data": {"n_train": 120, "n_test": 40, "batch_size": 40, "time_bins": 4},
         "model": {"layers": [{"type": "dense", "size": 16}]}}
PRUNE = {"network": {"n": 60, "k": 6}, "task": "none", "spectrum": {"k": 3, "steps": 200},
         "lnp": {"lyapunov": {"steps": 200, "warmup": 50}, "iterations": 2, "pivots": 8, "probes": 1}}


def _neuro(*args):
    return [sys.executable, "-m", "neuro.cli", *args]


def _killed(cmd, rng, low, high):
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(low, high))
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.glob(f".{folder.name}.*")) + \
        sorted(p.name for p in folder.glob(".*")) if folder.exists() else []


def _check_train(out: Path, problems: list, finished: int) -> int:
    from neuro.training import checkpoint

    if not (out / "checkpoint.pt").exists():
        return finished
    state = checkpoint.load(out / "checkpoint.pt", ("epoch", "history"))
    epochs = [r["epoch"] for r in state["history"]]
    if epochs != list(range(state["epoch"] + 1)) or state["epoch"] < finished:
        problems.append(f"train: history {epochs} after epoch {finished}")
    return state["epoch"]


def _check_prune(out: Path, problems: list) -> None:
    from neuro.network import Network

    if not out.exists():
        return
    report = json.loads((out / "report.json").read_text())
    net = Network.load(out / "pruned.npz")
    n = sum(p.size for p in net.populations if p.name in ("exc", "inh"))
    if n != report["pruned"]["neurons"]:
        problems.append(f"prune: report says {report['pruned']['neurons']} neurons, pruned.npz has {n}")


def main(kills: int = 20, seed: int = 0) -> int:
    rng, problems = random.Random(seed), []
    tmp = Path(tempfile.mkdtemp(prefix="neuro-crash-"))
    (tmp / "train.yaml").write_text(yaml.safe_dump({**TRAIN, "data": {**TRAIN["data"], "root": str(tmp / "data")}}))
    (tmp / "prune.yaml").write_text(yaml.safe_dump(PRUNE))
    out = tmp / "train"
    subprocess.run(_neuro("train", str(tmp / "train.yaml"), "--out", str(out), "--stop-after", "1", "--no-progress"),
                   cwd=ROOT, check=True, capture_output=True)
    finished = 1
    for _ in range(kills):
        _killed(_neuro("train", str(tmp / "train.yaml"), "--out", str(out), "--resume", "--no-progress"), rng, 2, 9)
        finished = _check_train(out, problems, finished)
        if finished >= TRAIN["epochs"]:  # start over so that every kill lands in a run
            subprocess.run(["rm", "-rf", str(out)], check=True)
            subprocess.run(_neuro("train", str(tmp / "train.yaml"), "--out", str(out), "--stop-after", "1",
                                  "--no-progress"), cwd=ROOT, check=True, capture_output=True)
            finished = 1
    done = subprocess.run(_neuro("train", str(tmp / "train.yaml"), "--out", str(out), "--resume", "--no-progress"),
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode or _temps(out):
        problems.append(f"train: final resume rc {done.returncode} {done.stderr[-300:]} temps {_temps(out)}")
    pout = tmp / "prune"
    for i in range(kills):
        _killed(_neuro("prune", str(tmp / "prune.yaml"), "--out", str(pout), "--seed", str(i), "--no-progress"),
                rng, 1, 12)
        _check_prune(pout, problems)
    done = subprocess.run(_neuro("prune", str(tmp / "prune.yaml"), "--out", str(pout), "--no-progress"), cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode or _temps(pout):
        problems.append(f"prune: final run rc {done.returncode} {done.stderr[-300:]} temps {_temps(pout)}")
    print(f"{kills} kills of train and of prune: {len(problems)} problem(s)")
    for p in problems:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*(int(a) for a in sys.argv[1:3])))
