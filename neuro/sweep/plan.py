"""Trials of a sweep: one *unit* per (parameter set, seed), each with its own folder named by a hash.

A unit carries everything a worker needs (the resolved config, the command line). The hash covers the
command, the config, the extra arguments and the seed: a finished unit is reused by a later run only if
all of them match (metrics are read from its outputs afterwards, so changing them reruns nothing).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json

import numpy as np

from neuro.sweep.dotted import set_dotted
from neuro.sweep.spec import NO_PROGRESS, Spec


def param_sets(spec: Spec) -> list[dict]:
    """The parameter sets of a grid (in order) or a random search (sampled with ``random.seed``);
    ``[{}]`` for seeds only. Bayesian optimisation proposes its sets while it runs."""
    if spec.grid:
        keys = list(spec.grid)
        return [dict(zip(keys, combo)) for combo in itertools.product(*spec.grid.values())]
    if spec.search == "random":
        rng = np.random.default_rng(spec.search_seed)
        return [{key: sample(rng, *dist) for key, dist in spec.space.items()} for _ in range(spec.samples)]
    return [{}]


def sample(rng: np.random.Generator, name: str, args: list):
    """One draw of a search-space distribution (plain Python value)."""
    if name == "uniform":
        return float(rng.uniform(args[0], args[1]))
    if name == "loguniform":
        return float(np.exp(rng.uniform(np.log(args[0]), np.log(args[1]))))
    if name == "randint":
        return int(rng.integers(args[0], args[1]))
    return args[int(rng.integers(len(args)))]


def plan_units(spec: Spec) -> list[dict]:
    """Every unit of a grid, random search or seeds-only sweep, parameter set by parameter set."""
    return [make_unit(spec, params, seed) for params in param_sets(spec) for seed in spec.seeds]


def make_unit(spec: Spec, params: dict, seed: int) -> dict:
    """The unit for ``params`` (dotted key -> value) at ``seed``: ``name``, ``key``, ``config``, ``argv``."""
    config = copy.deepcopy(spec.base)
    for key, value in params.items():
        set_dotted(config, key, value, f"{spec.source}: key {key!r}")
    argv = [spec.command] + ([spec.method] if spec.method else [])
    tail = list(spec.args) + (["--no-progress"] if spec.command in NO_PROGRESS else [])
    if spec.seed_key:
        set_dotted(config, spec.seed_key, [seed] if spec.seed_list else seed, f"{spec.source}: seeds.key")
    else:
        tail = [spec.seed_flag(), str(seed)] + tail
    body = {"argv": argv, "tail": tail, "config": config}
    key = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {**body, "name": f"s{seed}-{key[:10]}", "key": key, "seed": seed, "params": params}


def label(params: dict) -> str:
    """A short, stable text for a parameter set (``key=value`` pairs)."""
    return ", ".join(f"{k}={_short(v)}" for k, v in params.items()) or "-"


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)
