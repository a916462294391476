"""Heat maps of accuracy matrices (mean over seeds), one panel per method."""

from __future__ import annotations

import numpy as np


def mean_matrices(report: dict) -> dict[str, np.ndarray]:
    """Seed-mean accuracy matrix per method; the multitask bound is one row."""
    out = {}
    for method, runs in report["runs"].items():
        key = "matrix" if "matrix" in runs[0] else "accuracies"
        out[method] = np.mean([np.atleast_2d(r[key]) for r in runs], axis=0)
    return out


def plot_matrices(report: dict):
    """A figure with one annotated heat map ``A[i, j]`` (in %) per method, titled with ACC and BWT."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrices = mean_matrices(report)
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.6 * len(matrices), 3.8), squeeze=False)
    for ax, (method, m) in zip(axes[0], matrices.items()):
        ax.imshow(100 * m, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(100 * m):
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=8, color="w" if v < 60 else "k")
        s = report["summary"][method]
        title = f"{method}\nACC {100 * s['ACC']['mean']:.1f}"
        if "BWT" in s:
            title += f"  BWT {100 * s['BWT']['mean']:+.1f}"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("evaluated on task j")
        ax.set_ylabel("after training task i" if m.shape[0] > 1 else "joint training")
        ax.set_xticks(range(m.shape[1]))
        ax.set_yticks(range(m.shape[0]))
    fig.suptitle(f"accuracy matrices (%), mean over seeds {report['config']['seeds']}", fontsize=10)
    fig.tight_layout()
    return fig
