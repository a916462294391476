"""The Guo et al. (2022) ablation: hard reset vs soft reset vs soft reset + MPR, same data and budget, several seeds.

Arms differ only in ``model.reset`` and ``model.use_mpr``; everything else is
the given config (default: the built-in ``neuro train`` run). Every arm and
seed writes a normal training folder ``OUT/<arm>/seed<k>/``; the summary
(``OUT/ablation.json``, ``OUT/ablation.md``, ``OUT/ablation.png``) is rebuilt
from all folders present, so arms may run in separate processes::

    python -m neuro.training.ablation --out runs/ablation --seeds 0 1 2 [--arms soft] [--config CFG]
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np

ARMS = {"hard": {"reset": "hard", "use_mpr": False},
        "soft": {"reset": "soft", "use_mpr": False},
        "soft_mpr": {"reset": "soft", "use_mpr": True}}


def arm_config(cfg: dict, arm: str, seed: int) -> dict:
    out = copy.deepcopy(cfg)
    out["model"].update(ARMS[arm])
    out["seed"] = seed
    return out


def summarize(out: Path) -> dict:
    """Final and best test accuracy per arm (mean, sample sd, per seed) from ``OUT/<arm>/seed*/metrics.json``."""
    summary = {}
    for arm in ARMS:
        runs = sorted((out / arm).glob("seed*/metrics.json"))
        histories = {p.parent.name: json.loads(p.read_text()) for p in runs}
        if not histories:
            continue
        final = {k: h[-1]["test_acc"] for k, h in histories.items()}
        top = {k: max(r["test_acc"] for r in h if r["epoch"] >= 1) for k, h in histories.items()}
        summary[arm] = {"epochs": {k: h[-1]["epoch"] for k, h in histories.items()}, "final_test_acc": final,
                        "best_test_acc": top, **_stats("final", final), **_stats("best", top),
                        "curves": {k: [r["test_acc"] for r in h] for k, h in histories.items()}}
    return summary


def _stats(prefix, values):
    v = np.array(list(values.values()))
    return {f"{prefix}_mean": float(v.mean()), f"{prefix}_sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0}


def table(summary: dict) -> str:
    lines = ["| arm | reset | MPR | seeds | final test acc (mean ± sd) | best epoch acc (mean ± sd) "
             "| per seed (final) |", "|---|---|---|---|---|---|---|"]
    for arm, s in summary.items():
        per_seed = ", ".join(f"{v:.4f}" for v in s["final_test_acc"].values())
        lines.append(f"| {arm} | {ARMS[arm]['reset']} | {'yes' if ARMS[arm]['use_mpr'] else 'no'} | "
                     f"{len(s['final_test_acc'])} | {s['final_mean']:.4f} ± {s['final_sd']:.4f} | "
                     f"{s['best_mean']:.4f} ± {s['best_sd']:.4f} | {per_seed} |")
    return "\n".join(lines) + "\n"


def plot(summary: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (arm, s), color in zip(summary.items(), ("tab:red", "tab:blue", "tab:green")):
        for i, curve in enumerate(s["curves"].values()):
            ax.plot(range(len(curve)), curve, color=color, alpha=0.7, label=arm if i == 0 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0.8, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(title="arm (one line per seed)")
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    from neuro.io import load_config, save_figure, write_json, write_text
    from neuro.training import config
    from neuro.training.data import load_frames
    from neuro.training.trainer import fit

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", help="base train config (default: the built-in one)")
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int)
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    raw = load_config(a.config) if a.config else {}
    if a.epochs is not None:
        raw["epochs"] = a.epochs
    cfg = config.resolve(raw)
    out = Path(a.out)
    data = load_frames(cfg["data"], not a.no_progress)
    for arm in a.arms:
        for seed in a.seeds:
            _, history = fit(arm_config(cfg, arm, seed), data, out / arm / f"seed{seed}", progress=not a.no_progress)
            print(f"{arm} seed {seed}: test acc {history[-1]['test_acc']:.4f}", flush=True)
    summary = summarize(out)
    write_json(out / "ablation.json", summary)
    write_text(out / "ablation.md", table(summary))
    save_figure(plot(summary), out / "ablation.png")
    print(table(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
