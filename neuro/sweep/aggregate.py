"""The aggregate of a sweep: records -> tables (mean ± s.e.m. over seeds, paired differences, wins).

A *record* is one unit's metrics (or one row of them) with the unit's seed and axis values. Tables:

* ``cells``: one row per combination of all axes (grid keys, the parameter set of a search, row axes);
* ``by_axis``: with two or more axes, one table per axis (each value pooled over the other axes);
* ``compare``: for ``compare: {axis, reference}``, per group of the other axes and per other value of the
  axis, the paired difference ``reference - value`` over seeds (mean, s.e.m.) and the reference's wins
  for metrics with ``better`` (as :func:`neuro.lnp.compare.aggregate` pairs LNP with each baseline);
* with ``criteria``, each cell's metrics with bounds carry ``passes = [records within them, records]`` and
  the cell ``criteria_met = [records within every bound, records]`` (a seed, or a row, is one record);
* ``best``: the cell with the best objective, when the SPEC names one;
* ``searches`` (a search with an objective): per study (:meth:`Spec.studies`) the objective of each
  parameter set in the order evaluated, the best so far after each and the best found; per kind of
  search the best found over its studies (mean ± s.e.m.); with ``versus``, the paired difference
  ``bayes - random`` of the best found, study by study (same search seed), and Bayesian optimisation's wins.
"""

from __future__ import annotations

import json

import numpy as np

from neuro.sweep.plan import label, plan_units
from neuro.sweep.runner import finished_sets
from neuro.sweep.spec import Spec
from neuro.sweep.trial import read_metrics, read_result


def _units(spec: Spec, trials) -> list[dict]:
    """The units to aggregate: those planned, and in each Bayesian study the sets finished at every seed
    in the order they finished; study by study."""
    planned = plan_units(spec)
    if not spec.search:
        return planned
    units = []
    for study, kind, _ in spec.studies():
        units += ([u for u in planned if u["study"] == study] if kind == "random" else
                  [{**r, "study": study} for group in finished_sets(spec, trials, study).values() for r in group])
    return units


def collect(spec: Spec, trials) -> tuple[list[dict], list[str]]:
    """Records of the finished units in a fixed order, and the names of the units without a result."""
    units = _units(spec, trials)
    records, missing = [], []
    for unit in units:
        result = read_result(trials / unit["name"])
        if result is None or result.get("status") != "ok":
            missing.append(unit["name"])
            continue
        axes = ({"params": label(unit["params"]), "values": unit["params"], "study": unit["study"]} if spec.search
                else dict(unit["params"]))
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
    table = {"command": spec.command, "metrics": spec.metrics, "objective": spec.objective,
             "criteria": spec.criteria, "axes": axes, "seeds": spec.seeds, "records": len(records),
             "cells": _table(spec, records, axes), "failed": failed}
    if len(axes) > 1:
        table["by_axis"] = {axis: _table(spec, records, [axis]) for axis in axes}
    if spec.compare:
        table["compare"], table["compare_axis"] = _compare(spec, records), spec.compare["axis"]
    if spec.objective and table["cells"]:
        name, sign = spec.objective["metric"], 1 if spec.objective["mode"] == "min" else -1
        scored = [c for c in table["cells"] if c[name]["mean"] is not None]
        table["best"] = min(scored, key=lambda c: sign * c[name]["mean"]) if scored else None
    if spec.search and spec.objective:
        table["searches"] = searches(spec, records)
    return table


def searches(spec: Spec, records: list[dict]) -> dict:
    """The ``searches`` table of the module docstring from the records of a search (in evaluation order)."""
    name, sign = spec.objective["metric"], 1 if spec.objective["mode"] == "min" else -1
    values: dict[str, dict[str, list]] = {}  # study -> parameter-set label -> objective per seed
    exact = {}
    for r in records:
        values.setdefault(r["study"], {}).setdefault(r["params"], []).append(r[name])
        exact[r["params"]] = r["values"]
    studies = []
    for study, kind, seed in spec.studies():
        # a set counts once finished at every seed (a random study may draw a discrete set twice: one folder)
        sets = [(k, float(np.mean(v))) for k, v in values.get(study, {}).items() if len(v) % len(spec.seeds) == 0]
        curve = list(sign * np.minimum.accumulate([sign * v for _, v in sets])) if sets else []
        best = min(sets, key=lambda kv: sign * kv[1]) if sets else (None, None)
        studies.append({"study": study, "search": kind, "seed": seed, "sets": len(sets),
                        "objective": [v for _, v in sets], "curve": [float(c) for c in curve], "best": best[1],
                        "best_params": exact.get(best[0])})
    kinds = list(dict.fromkeys(s["search"] for s in studies))
    out = {"metric": name, "mode": spec.objective["mode"], "budget": spec.samples, "studies": studies,
           "summary": [{"search": k, "best": stats(s["best"] for s in studies if s["search"] == k)} for k in kinds]}
    if spec.versus:
        best = {(s["search"], s["seed"]): s["best"] for s in studies}
        diff = np.array([best["bayes", seed] - best["random", seed] for _, kind, seed in spec.studies()
                         if kind == "bayes" and None not in (best["bayes", seed], best["random", seed])])
        out["versus"] = {"bayes_minus_random": stats(diff), "bayes_wins": [int((sign * diff < 0).sum()), len(diff)]}
    return out


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
        row = {**{a: members[0].get(a) for a in axes}, **exact,
               **{m: stats(r.get(m) for r in members) for m in spec.metrics}}
        if spec.criteria:
            met = [{m: within(r.get(m), bounds) for m, bounds in spec.criteria.items()} for r in members]
            for m in spec.criteria:
                row[m]["passes"] = [sum(ok[m] for ok in met), len(members)]
            row["criteria_met"] = [sum(all(ok.values()) for ok in met), len(members)]
        rows.append(row)
    if spec.objective and axes == ["params"]:
        name, sign = spec.objective["metric"], 1 if spec.objective["mode"] == "min" else -1
        rows.sort(key=lambda c: (c[name]["mean"] is None, sign * (c[name]["mean"] or 0.0)))
    return rows


def within(value, bounds: dict) -> bool:
    """Whether ``value`` (None: no value, fails) lies within ``bounds = {min, max}`` (inclusive, optional)."""
    return value is not None and bounds.get("min", value) <= value <= bounds.get("max", value)


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
