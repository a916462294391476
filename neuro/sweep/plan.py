"""Trials of a sweep: one *unit* per (parameter set, seed), each with its own folder named by a hash.

A unit carries everything a worker needs (the resolved config, the command line). The hash covers the
command, the config, the extra arguments and the seed: a finished unit is reused by a later run only if
all of them match (metrics are read from its outputs afterwards, so changing them reruns nothing). The
units of a search live in the folder of their *study* (one run of the search with one search seed,
:meth:`Spec.studies`): ``<study>/s<seed>-<hash>``.
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
    """The parameter sets of a grid (in order); ``[{}]`` for seeds only. Searches: :func:`random_sets`."""
    if spec.grid:
        keys = list(spec.grid)
        return [dict(zip(keys, combo)) for combo in itertools.product(*spec.grid.values())]
    return [{}]


def random_sets(spec: Spec, seed: int) -> list[dict]:
    """The ``spec.samples`` parameter sets of a random search with search seed ``seed``, in order.
    (Bayesian optimisation proposes its sets while it runs.)"""
    rng = np.random.default_rng(seed)
    return [{key: sample(rng, *dist) for key, dist in spec.space.items()} for _ in range(spec.samples)]


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
    """Every unit known before the sweep runs, parameter set by parameter set: those of a grid or a
    seeds-only sweep, or of every random-search study (Bayesian optimisation's are proposed as it runs)."""
    if not spec.search:
        return [make_unit(spec, params, seed) for params in param_sets(spec) for seed in spec.seeds]
    return [make_unit(spec, params, seed, study) for study, kind, search_seed in spec.studies() if kind == "random"
            for params in random_sets(spec, search_seed) for seed in spec.seeds]


def make_unit(spec: Spec, params: dict, seed: int, study: str | None = None) -> dict:
    """The unit for ``params`` (dotted key -> value) at ``seed``, in the folder of ``study`` if given:
    ``name`` (its folder under ``trials/``), ``key``, ``config``, ``argv``, ``tail``, ``study``."""
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
    name = f"s{seed}-{key[:10]}"
    return {**body, "name": f"{study}/{name}" if study else name, "key": key, "seed": seed, "params": params,
            "study": study}


def label(params: dict) -> str:
    """A short, stable text for a parameter set (``key=value`` pairs)."""
    return ", ".join(f"{k}={_short(v)}" for k, v in params.items()) or "-"


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)
