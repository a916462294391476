"""The aggregate as files: ``aggregate.json``, ``aggregate.csv`` (long form), ``aggregate.md`` and
``aggregate.png`` (each metric per cell, mean ± s.e.m.; for a search with an objective, the best so far
against the number of parameter sets evaluated, per study)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from neuro.io import save_figure, write_json, write_text
from neuro.sweep.plan import label

CSV_COLUMNS = ("table", "group", "metric", "mean", "sem", "n", "wins", "passes")
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
                wins, passes = ("/".join(map(str, s[k])) if k in s else "" for k in ("wins", "passes"))
                writer.writerow([name, _group(row, axes), metric, _num(s["mean"]), _num(s["sem"]), s["n"], wins,
                                 passes])
    search = table.get("searches")
    for entry in search["summary"] if search else []:
        s = entry["best"]
        writer.writerow(["searches", f"search={entry['search']}", f"best {search['metric']}", _num(s["mean"]),
                         _num(s["sem"]), s["n"], ""])
    if search and "versus" in search:
        s, wins = search["versus"]["bayes_minus_random"], search["versus"]["bayes_wins"]
        writer.writerow(["searches", "bayes - random", f"best {search['metric']}", _num(s["mean"]), _num(s["sem"]),
                         s["n"], f"{wins[0]}/{wins[1]}"])
    return buf.getvalue()


def _num(value) -> str:
    return "" if value is None else repr(value)


def _cell(s: dict) -> str:
    if s["mean"] is None:
        return "-"
    text = f"{s['mean']:.4g}" + (f" ± {s['sem']:.2g}" if s["sem"] is not None else "") + f" (n={s['n']})"
    text += f", wins {s['wins'][0]}/{s['wins'][1]}" if "wins" in s else ""
    return text + (f", passes {s['passes'][0]}/{s['passes'][1]}" if "passes" in s else "")


def to_markdown(table: dict) -> str:
    metrics = list(table["metrics"])
    lines = [f"# Sweep of `neuro {table['command']}`", "",
             f"{table['records']} record(s) over seeds {table['seeds']}; mean ± s.e.m. (n)."]
    criteria = table.get("criteria") or {}
    if criteria:
        lines += ["", "Criteria (a record passes within every bound): " + "; ".join(
            f"{m} {_bounds(b)}" for m, b in criteria.items()) + "."]
    for name, axes, rows in _sections(table):
        head = list(axes) or ["group"]
        met = ["criteria met"] if criteria and name != "compare" else []
        title = "paired difference, reference minus value, per seed; wins of the reference"
        lines += ["", f"## {title if name == 'compare' else name}", "",
                  "| " + " | ".join(head + metrics + met) + " |", "|" + "---|" * (len(head) + len(metrics) + len(met))]
        for row in rows:
            keys = [str(row.get(a)) for a in axes] if axes else ["all"]
            passed = ["{}/{}".format(*row["criteria_met"])] if met else []
            lines.append("| " + " | ".join(keys + [_cell(row[m]) for m in metrics] + passed) + " |")
    if table.get("best"):
        best = table["best"]
        metric = table["objective"]["metric"]
        lines += ["", "## Best", "", f"{_group(best, table['axes'])}: {metric} {_cell(best[metric])}"]
    if table.get("searches"):
        lines += _search_lines(table["searches"])
    if table["failed"]:
        lines += ["", "## Failed trials", ""] + [f"- {f['trial']}: {f['error'][:300]}" for f in table["failed"]]
    return "\n".join(lines) + "\n"


def _bounds(bounds: dict) -> str:
    if bounds.get("min") == bounds.get("max"):
        return f"= {bounds['min']:g}"
    return " and ".join(f"{'>=' if k == 'min' else '<='} {v:g}" for k, v in bounds.items())


def _search_lines(search: dict) -> list[str]:
    metric = search["metric"]
    lines = ["", f"## Searches: best {metric} found with {search['budget']} parameter set(s) per study "
             f"({search['mode']}imised)", "", f"| study | search seed | sets | best {metric} | best parameters |",
             "|---|---|---|---|---|"]
    for s in search["studies"]:
        best = "-" if s["best"] is None else f"{s['best']:.4g}"
        lines.append(f"| {s['study']} | {s['seed']} | {s['sets']} | {best} | {label(s['best_params'] or {})} |")
    lines += ["", f"| search | best {metric}, mean ± s.e.m. over studies (n) |", "|---|---|"]
    lines += [f"| {e['search']} | {_cell(e['best'])} |" for e in search["summary"]]
    if "versus" in search:
        wins = search["versus"]["bayes_wins"]
        lines += ["", f"bayes - random, study by study (same search seed): "
                      f"{_cell(search['versus']['bayes_minus_random'])}; Bayesian optimisation better in "
                      f"{wins[0]} of {wins[1]}."]
    return lines


def plot(table: dict, path: Path) -> Path:
    """One bar panel per metric (first :data:`PLOT_METRICS`): each cell's mean ± s.e.m.; for a search
    with an objective, :func:`plot_searches`."""
    if table.get("searches"):
        return plot_searches(table["searches"], path)
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


def plot_searches(search: dict, path: Path) -> Path:
    """The best objective so far against the number of parameter sets evaluated: a thin line per study,
    a thick one for the mean over the studies of each kind of search."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, kind in enumerate(dict.fromkeys(s["search"] for s in search["studies"])):
        curves = [s["curve"] for s in search["studies"] if s["search"] == kind and s["curve"]]
        color = f"C{i}"
        for curve in curves:
            ax.plot(range(1, len(curve) + 1), curve, color=color, lw=0.8, alpha=0.5)
        length = min((len(c) for c in curves), default=0)
        if length:
            mean = np.mean([c[:length] for c in curves], axis=0)
            ax.plot(range(1, length + 1), mean, color=color, lw=2.5, label=f"{kind} (mean of {len(curves)})")
    ax.set_xlabel("parameter sets evaluated")
    ax.set_ylabel(f"best {search['metric']} so far")
    ax.set_title(f"{search['mode']}imising {search['metric']}: best so far per study")
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)
