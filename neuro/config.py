"""Build a :class:`Network` from a plain config mapping (YAML/TOML ``neuro simulate`` files).

Schema (every random draw uses the config's ``seed``)::

    dt: 1.0e-3                       # seconds
    seed: 0
    populations:
      - name: exc
        size: 800
        model: lif                   # lif | poisson | spike_source
        reset: soft                  # hard | soft | none
        params:                      # scalar, list (one per neuron) or a distribution:
          tau_mem: {dist: gamma, mean: 0.02, cv: 0.5, minimum: 0.001}
          v_th: 1.0
        initial: {v: {dist: uniform, low: 0.0, high: 1.0}}
    projections:
      - name: exc-exc
        pre: exc
        post: exc
        connectivity: {kind: bernoulli, p: 0.1}   # bernoulli | fixed_indegree (k) | small_world (k, beta)
                                                  # | all_to_all; autapses: false for recurrent ones
        weight: {dist: normal, mean: 0.1, std: 0.02}   # or a number; dist: normal|uniform|lognormal|exponential
        sign: 1                      # optional: force all weights to +|w| (1) or -|w| (-1)
        delay: 1                     # steps, or {dist: randint, low: 1, high: 5}
        receptor: exc                # exc | inh

Distributions for neuron parameters: ``gamma``, ``lognormal``, ``uniform``,
``fixed`` (:func:`neurons.sample_timescales`, keys ``mean``, ``cv``, ``low``,
``high``, ``minimum``) and ``normal`` (``mean``, ``std``).
"""

from __future__ import annotations

import numpy as np

import synapses as S
from neuro import checks
from neuro.io import ConfigError, check_keys
from neuro.network import Network, Population, Projection
from neurons import sample_timescales

POPULATION_KEYS = ("name", "size", "model", "reset", "params", "initial", "metadata")
PROJECTION_KEYS = ("name", "pre", "post", "connectivity", "weight", "sign", "delay", "receptor", "metadata")
CONNECTIVITY = {"bernoulli": ("p",), "fixed_indegree": ("k",), "small_world": ("k", "beta"), "all_to_all": ()}


SAMPLERS = {
    "normal": (("mean", "std"), lambda rng, n, mean=0.0, std=1.0: rng.normal(mean, std, n)),
    "exponential": (("mean",), lambda rng, n, mean: rng.exponential(mean, n)),
    "randint": (("low", "high"), lambda rng, n, low, high: rng.integers(low, high + 1, n)),
    "uniform": (("low", "high"), lambda rng, n, low, high: rng.uniform(low, high, n)),
}
TIMESCALE_KEYS = ("mean", "cv", "low", "high", "minimum")
UNIT = checks.number(0, 1)
#: Rules of the connectivity parameters (:mod:`neuro.checks`).
CONNECTIVITY_RULES = {"p": UNIT, "k": checks.NON_NEGATIVE_INT, "beta": UNIT, "autapses": checks.boolean}
SYNAPSE_BYTES = 64  # indices, weights, delays, mask and the temporaries of building them


def _draw(spec, n: int, rng: np.random.Generator, where: str) -> np.ndarray:
    """A scalar, a list of ``n`` values, or ``n`` draws from a distribution mapping."""
    if not isinstance(spec, dict):
        value = np.asarray(spec)
        if value.dtype.kind not in "iuf" or np.isnan(value.astype(np.float64)).any():
            raise ConfigError(f"{where}: expected a number, {n} numbers or a distribution mapping, got {spec!r}")
        value = value.astype(np.float64)
        if value.ndim and value.shape != (n,):
            raise ConfigError(f"{where}: expected a number or {n} values, got {value.shape[0]} values")
        return np.broadcast_to(value, (n,))
    checks.distribution(spec, where)
    spec = dict(spec)
    dist = spec.pop("dist", None)
    try:
        if dist in ("gamma", "lognormal", "fixed") or (dist == "uniform" and "mean" in spec):
            check_keys(spec, TIMESCALE_KEYS, where)
            return sample_timescales(n, spec.pop("mean"), dist, seed=rng, **spec)
        if dist in SAMPLERS:
            keys, sample = SAMPLERS[dist]
            check_keys(spec, keys, where)
            return np.asarray(sample(rng, n, **spec), dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: bad {dist!r} distribution: {exc}") from None
    raise ConfigError(f"{where}: unknown distribution {dist!r}; expected one of "
                      f"{sorted(SAMPLERS) + ['fixed', 'gamma', 'lognormal']}")


def _population(cfg: dict, rng, index: int) -> Population:
    where = f"populations[{index}]"
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where}: must be a mapping")
    check_keys(cfg, POPULATION_KEYS, where)
    for key in ("name", "size"):
        if key not in cfg:
            raise ConfigError(f"{where}: missing required key {key!r}")
    section = checks.optional(checks.mapping)
    checks.check_table(cfg, {"size": checks.POSITIVE_INT, "model": checks.text, "reset": checks.text,
                             "params": section, "initial": section}, where)
    size = cfg["size"]
    checks.check_memory(size * 200, f"{where}.size")  # ~13 parameters, state and records per neuron
    params = {k: _draw(v, size, rng, f"{where}.params.{k}") for k, v in (cfg.get("params") or {}).items()}
    initial = {k: _draw(v, size, rng, f"{where}.initial.{k}") for k, v in (cfg.get("initial") or {}).items()}
    return Population(str(cfg["name"]), size, cfg.get("model", "lif"), params, cfg.get("reset", "hard"), initial,
                      cfg.get("metadata") or {})


def _projection(cfg: dict, sizes: dict, rng, index: int) -> Projection:
    where = f"projections[{index}]"
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where}: must be a mapping")
    check_keys(cfg, PROJECTION_KEYS, where)
    for key in ("pre", "post", "connectivity"):
        if key not in cfg:
            raise ConfigError(f"{where}: missing required key {key!r}")
    pre, post = cfg["pre"], cfg["post"]
    for key, end in (("pre", pre), ("post", post)):
        if not isinstance(end, str) or end not in sizes:
            raise ConfigError(f"{where}.{key}: unknown population {end!r}; known: {sorted(sizes)}")
    if not isinstance(cfg["connectivity"], dict):
        raise ConfigError(f"{where}.connectivity must be a mapping with 'kind', got {cfg['connectivity']!r}")
    conn = dict(cfg["connectivity"])
    kind = conn.pop("kind", None)
    if not isinstance(kind, str) or kind not in CONNECTIVITY:
        raise ConfigError(f"{where}.connectivity: unknown kind {kind!r}; expected one of {sorted(CONNECTIVITY)}")
    check_keys(conn, CONNECTIVITY[kind] + ("autapses",), f"{where}.connectivity")
    missing = [k for k in CONNECTIVITY[kind] if k not in conn]
    if missing:
        raise ConfigError(f"{where}.connectivity: {kind} needs {missing}")
    checks.check_table(conn, CONNECTIVITY_RULES, f"{where}.connectivity")

    def weight(r, n):
        w = _draw(cfg.get("weight", 1.0), n, r, f"{where}.weight")
        sign = cfg.get("sign")
        if isinstance(sign, bool) or sign not in (None, 1, -1):
            raise ConfigError(f"{where}.sign must be 1 or -1, got {sign!r}")
        return w if sign is None else sign * np.abs(w)

    def delay(r, n):
        return _draw(cfg.get("delay", 1), n, r, f"{where}.delay")

    n_pre, n_post = sizes[pre], sizes[post]
    expected = {"bernoulli": conn.get("p", 0) * n_pre * n_post, "all_to_all": n_pre * n_post}.get(
        kind, n_pre * conn.get("k", 0))
    checks.check_memory(expected * SYNAPSE_BYTES, f"{where}.connectivity (about {expected:.3g} synapses)")
    if kind == "small_world" and n_pre != n_post:
        raise ConfigError(f"{where}: small_world needs a recurrent projection (equal sizes)")
    try:
        if kind == "small_world":
            csr = S.small_world(n_pre, conn["k"], conn["beta"], weight, delay, seed=rng)
        else:
            builder = {"bernoulli": S.bernoulli, "fixed_indegree": S.fixed_indegree, "all_to_all": S.all_to_all}[kind]
            args = [conn.pop(k) for k in CONNECTIVITY[kind]]
            csr = builder(n_pre, n_post, *args, weight, delay, autapses=conn.get("autapses", True), seed=rng)
    except ValueError as exc:  # ConfigError included: the builders' own checks, named by projection
        raise ConfigError(f"{where}: {exc}" if not str(exc).startswith(where) else str(exc)) from None
    if csr.nnz:  # the simulator keeps (max delay + 1) steps of input per target neuron
        longest = int(csr.delays.max())
        checks.check_memory((longest + 1) * n_post * 16, f"{where}.delay (max {longest} steps)")
    name = cfg.get("name", f"{pre}-{post}")
    return Projection(str(name), pre, post, csr, cfg.get("receptor", "exc"), metadata=cfg.get("metadata") or {})


def network_from_config(cfg: dict, seed: int | None = None) -> Network:
    """The network a config describes; ``seed`` overrides ``cfg['seed']``."""
    if not isinstance(cfg.get("populations"), list) or not cfg["populations"]:
        raise ConfigError("config needs a non-empty list 'populations'")
    checks.check_table({"seed": cfg.get("seed", 0) if seed is None else seed, "dt": cfg.get("dt", 1e-3)},
                {"seed": checks.NON_NEGATIVE_INT, "dt": checks.POSITIVE})
    rng = np.random.default_rng(cfg.get("seed", 0) if seed is None else seed)
    try:
        pops = [_population(p, rng, i) for i, p in enumerate(cfg["populations"])]
        sizes = {p.name: p.size for p in pops}
        projs = [_projection(p, sizes, rng, i) for i, p in enumerate(cfg.get("projections") or [])]
        return Network(pops, projs, dt=float(cfg.get("dt", 1e-3)), metadata=cfg.get("metadata") or {})
    except KeyError as exc:
        raise ConfigError(f"missing key {exc}") from None
