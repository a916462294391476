"""The aggregate of a sweep: records -> tables (mean ± s.e.m. over seeds, paired differences, wins).

A *record* is one unit's metrics (or one row of them) with the unit's seed and axis values. Tables:

* ``cells``: one row per combination of all axes (grid keys, the parameter set of a search, row axes);
* ``by_axis``: with two or more axes, one table per axis (each value pooled over the other axes);
* ``compare``: for ``compare: {axis, reference}``, per group of the other axes and per other value of the
  axis, the paired difference ``reference - value`` over seeds (mean, s.e.m.) and the reference's wins
  for metrics with ``better`` (as :func:`neuro.lnp.compare.aggregate` pairs LNP with each baseline);
* ``best``: the cell with the best objective, when the SPEC names one.
"""

from __future__ import annotations

import json

import numpy as np

from neuro.sweep.plan import label, plan_units
from neuro.sweep.runner import finished_sets
from neuro.sweep.spec import Spec
from neuro.sweep.trial import read_metrics, read_result


def collect(spec: Spec, trials) -> tuple[list[dict], list[str]]:
    """Records of the finished units in a fixed order, and the names of the units without a result."""
    if spec.search == "bayes":
        units = [r for group in finished_sets(spec, trials).values() for r in group]
    else:
        units = plan_units(spec)
    records, missing = [], []
    for unit in units:
        result = read_result(trials / unit["name"])
        if result is None or result.get("status") != "ok":
            missing.append(unit["name"])
            continue
        axes = {"params": label(unit["params"]), "values": unit["params"]} if spec.search else dict(unit["params"])
        for row in read_metrics(trials / unit["name"], spec.result, spec.metrics, spec.rows, spec.row_axes):
            records.append({"seed": unit["seed"], **axes, **row})
    return records, missing


def stats(values) -> dict:
    """``{mean, sem, n}`` of the values that are not None (sem None for fewer than two)."""
    v = np.array([x for x in values if x is not None], dtype=float)
    if not len(v):
        return {"mean": None, "sem": None, "n": 0}
    sem = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else None
    return {"mean": float(v.mean()), "sem": sem, "n": int(len(v))}


def aggregate(spec: Spec, records: list[dict], failed: list) -> dict:
    """All tables of the module docstring, as one JSON-ready mapping."""
    axes = spec.axes
    table = {"command": spec.command, "metrics": spec.metrics, "objective": spec.objective, "axes": axes,
             "seeds": spec.seeds, "records": len(records), "cells": _table(spec, records, axes), "failed": failed}
    if len(axes) > 1:
        table["by_axis"] = {axis: _table(spec, records, [axis]) for axis in axes}
    if spec.compare:
        table["compare"], table["compare_axis"] = _compare(spec, records), spec.compare["axis"]
    if spec.objective and table["cells"]:
        name, sign = spec.objective["metric"], 1 if spec.objective["mode"] == "min" else -1
        scored = [c for c in table["cells"] if c[name]["mean"] is not None]
        table["best"] = min(scored, key=lambda c: sign * c[name]["mean"]) if scored else None
    return table


def _key(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _groups(records, axes) -> dict:
    groups: dict[str, list] = {}
    for r in records:
        groups.setdefault(_key([r.get(a) for a in axes]), []).append(r)
    return groups


def _table(spec, records, axes) -> list[dict]:
    rows = []
    for members in _groups(records, axes).values():
        exact = {"values": members[0]["values"]} if "params" in axes else {}  # a search's parameter values
        rows.append({**{a: members[0].get(a) for a in axes}, **exact,
                     **{m: stats(r.get(m) for r in members) for m in spec.metrics}})
    if spec.objective and axes == ["params"]:
        name, sign = spec.objective["metric"], 1 if spec.objective["mode"] == "min" else -1
        rows.sort(key=lambda c: (c[name]["mean"] is None, sign * (c[name]["mean"] or 0.0)))
    return rows


def _compare(spec, records) -> list[dict]:
    axis, ref = spec.compare["axis"], spec.compare["reference"]
    others = [a for a in spec.axes if a != axis]
    out = []
    for members in _groups(records, others).values():
        by_value: dict[str, dict] = {}
        for r in members:
            by_value.setdefault(_key(r[axis]), {})[r["seed"]] = r
        reference = by_value.get(_key(ref), {})
        for value_key, by_seed in by_value.items():
            if value_key == _key(ref):
                continue
            entry = {**{a: members[0].get(a) for a in others}, axis: json.loads(value_key), "reference": ref}
            for m, meta in spec.metrics.items():
                seeds = [s for s in by_seed if s in reference and by_seed[s].get(m) is not None
                         and reference[s].get(m) is not None]
                diff = np.array([reference[s][m] - by_seed[s][m] for s in seeds], dtype=float)
                entry[m] = stats(diff)
                if meta["better"] and len(diff):
                    wins = diff < 0 if meta["better"] == "lower" else diff > 0
                    entry[m]["wins"] = [int(wins.sum()), int(len(diff))]
            out.append(entry)
    return out
