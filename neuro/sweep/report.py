"""The aggregate as files: ``aggregate.json``, ``aggregate.csv`` (long form), ``aggregate.md`` and
``aggregate.png`` (each metric per cell, mean ± s.e.m.)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from neuro.io import save_figure, write_json, write_text

CSV_COLUMNS = ("table", "group", "metric", "mean", "sem", "n", "wins")
PLOT_METRICS = 4  # at most this many panels


def write_all(table: dict, out: Path) -> list[Path]:
    """Write the four files into ``out``; their paths."""
    return [write_json(out / "aggregate.json", table), write_text(out / "aggregate.csv", to_csv(table)),
            write_text(out / "aggregate.md", to_markdown(table)), plot(table, out / "aggregate.png")]


def _group(row: dict, axes) -> str:
    return "; ".join(f"{a}={row.get(a)}" for a in axes) or "all"


def _sections(table: dict):
    """``(name, axes, rows)`` of every table, cells first."""
    yield "cells", table["axes"], table["cells"]
    for axis, rows in table.get("by_axis", {}).items():
        yield f"by {axis}", [axis], rows
    if "compare" in table:
        axis = table["compare_axis"]
        yield "compare", [a for a in table["axes"] if a != axis] + [axis, "reference"], table["compare"]


def to_csv(table: dict) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for name, axes, rows in _sections(table):
        for row in rows:
            for metric in table["metrics"]:
                s = row[metric]
                wins = "/".join(map(str, s["wins"])) if "wins" in s else ""
                writer.writerow([name, _group(row, axes), metric, _num(s["mean"]), _num(s["sem"]), s["n"], wins])
    return buf.getvalue()


def _num(value) -> str:
    return "" if value is None else repr(value)


def _cell(s: dict) -> str:
    if s["mean"] is None:
        return "-"
    text = f"{s['mean']:.4g}" + (f" ± {s['sem']:.2g}" if s["sem"] is not None else "") + f" (n={s['n']})"
    return text + (f", wins {s['wins'][0]}/{s['wins'][1]}" if "wins" in s else "")


def to_markdown(table: dict) -> str:
    metrics = list(table["metrics"])
    lines = [f"# Sweep of `neuro {table['command']}`", "",
             f"{table['records']} record(s) over seeds {table['seeds']}; mean ± s.e.m. (n)."]
    for name, axes, rows in _sections(table):
        head = list(axes) or ["group"]
        title = "paired difference, reference minus value, per seed; wins of the reference"
        lines += ["", f"## {title if name == 'compare' else name}", "",
                  "| " + " | ".join(head + metrics) + " |", "|" + "---|" * (len(head) + len(metrics))]
        for row in rows:
            keys = [str(row.get(a)) for a in axes] if axes else ["all"]
            lines.append("| " + " | ".join(keys + [_cell(row[m]) for m in metrics]) + " |")
    if table.get("best"):
        best = table["best"]
        metric = table["objective"]["metric"]
        lines += ["", "## Best", "", f"{_group(best, table['axes'])}: {metric} {_cell(best[metric])}"]
    if table["failed"]:
        lines += ["", "## Failed trials", ""] + [f"- {f['trial']}: {f['error'][:300]}" for f in table["failed"]]
    return "\n".join(lines) + "\n"


def plot(table: dict, path: Path) -> Path:
    """One bar panel per metric (first :data:`PLOT_METRICS`): each cell's mean ± s.e.m."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(table["metrics"])[:PLOT_METRICS]
    cells = table["cells"]
    fig, axes = plt.subplots(len(metrics), 1, figsize=(max(4.0, 0.45 * len(cells) + 2), 2.6 * len(metrics)),
                             squeeze=False)
    names = [_group(c, table["axes"]) for c in cells]
    for ax, metric in zip(axes[:, 0], metrics):
        mean = [c[metric]["mean"] if c[metric]["mean"] is not None else float("nan") for c in cells]
        sem = [c[metric]["sem"] or 0.0 for c in cells]
        ax.bar(range(len(cells)), mean, yerr=sem, capsize=3, color="tab:blue")
        ax.set_ylabel(metric)
        ax.set_xticks(range(len(cells)), names if ax is axes[-1, 0] else [""] * len(cells), rotation=60,
                      ha="right", fontsize=7)
    axes[0, 0].set_title(f"neuro {table['command']} sweep: mean ± s.e.m. over seeds")
    fig.tight_layout()
    return save_figure(fig, path)
