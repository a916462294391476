"""The sweep SPEC: a YAML file naming a command, a base config and the axes (format in docs/sweep.md).

:func:`load_spec` safe-loads and checks it; every error is a :class:`~neuro.io.ConfigError` naming the
key. The result is a plain :class:`Spec` that the planner, the runner and the aggregate share.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from neuro.io import ConfigError, check_keys, load_config
from neuro.sweep.dotted import set_dotted

COMMANDS = ("simulate", "train", "prune", "continual", "compat")
# The JSON a trial's metrics are read from, relative to its output folder.
RESULT_FILES = {"simulate": "summary.json", "train": "metrics.json", "prune": "report.json",
                "continual": "report.json", "compat": "report.json"}
# Where a trial's seed goes when SPEC does not say: a command-line flag, or a config key (a list).
SEED_FLAGS = {"simulate": "--seed", "train": "--seed", "prune": "--seed", "continual": "--seeds"}
NO_PROGRESS = ("simulate", "train", "continual")  # commands with --no-progress
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")
TOP_KEYS = ("command", "method", "config", "set", "args", "result", "metrics", "seeds", "grid", "random", "bayes",
            "objective", "versus", "criteria", "rows", "compare", "cpus_per_trial", "retries")


@dataclass
class Spec:
    """A checked SPEC. ``base`` is the base config with ``set`` applied; ``space`` the search space."""

    command: str
    method: str | None
    base: dict
    args: list[str]
    result: str
    metrics: dict  # name -> {"path": dotted, "better": "lower" | "higher" | None, "minus"/"over": dotted | None}
    seeds: list[int]
    seed_key: str | None  # dotted config key or None: the command's seed flag
    seed_list: bool  # the key gets [seed] rather than seed
    grid: dict = field(default_factory=dict)  # dotted key -> list of values
    search: str | None = None  # None | "random" | "bayes"
    samples: int = 0
    search_seed: int = 0
    repeats: int = 1  # studies of the search, with search seeds search_seed, search_seed + 1, ...
    versus: str | None = None  # "random": as many random-search studies with the same budget and seeds
    space: dict = field(default_factory=dict)  # dotted key -> (distribution, args)
    objective: dict | None = None  # {"metric": name, "mode": "min" | "max"}
    rows: tuple[str, str] | None = None  # (file, dotted key of a list of row mappings)
    row_axes: list[str] = field(default_factory=list)
    compare: dict | None = None  # {"axis": name, "reference": value}
    criteria: dict = field(default_factory=dict)  # metric -> {"min": x, "max": y} (inclusive; either optional)
    cpus_per_trial: int = 1
    retries: int = 2
    source: str = "spec"

    @property
    def axes(self) -> list[str]:
        """Axes of the aggregate besides the seed: grid keys, ``params`` for a search, then row axes."""
        return list(self.grid) + (["params"] if self.search else []) + self.row_axes

    def seed_flag(self) -> str | None:
        return None if self.seed_key else SEED_FLAGS.get(self.command)

    def studies(self) -> list[tuple[str, str, int]]:
        """``(name, kind, search seed)`` of every study of a search: ``repeats`` runs of the search with
        search seeds ``seed, seed + 1, ...`` (names ``bayes-0``, ``bayes-1``, ...), then, with ``versus``,
        as many random searches with the same seeds and budget (``random-0``, ...); none without a search."""
        kinds = [self.search, self.versus] if self.versus else [self.search]
        return [(f"{kind}-{r}", kind, self.search_seed + r) for kind in kinds if kind for r in range(self.repeats)]


def load_spec(path) -> Spec:
    """Read and check the SPEC at ``path``."""
    raw = load_config(path)
    if Path(path).suffix not in (".yaml", ".yml"):
        raise ConfigError(f"{path}: a sweep SPEC is a YAML file (.yaml or .yml)")
    return parse_spec(raw, str(path))


def parse_spec(raw: dict, where: str = "spec") -> Spec:
    """Check a loaded SPEC mapping (see :func:`load_spec`)."""
    check_keys(raw, TOP_KEYS, where)
    command = _choice(raw, "command", COMMANDS, where)
    method = raw.get("method")
    if command == "compat":
        from neuro.compat import METHODS

        method = _choice(raw, "method", METHODS, where)
    elif method is not None:
        raise ConfigError(f"{where}: 'method' is only for command compat")
    base = _base_config(raw.get("config"), command, method, where)
    fixed = raw.get("set") or {}
    if not isinstance(fixed, dict):
        raise ConfigError(f"{where}: 'set' must map dotted config keys to values, got {fixed!r}")
    for key, value in fixed.items():
        set_dotted(base, str(key), value, f"{where}: set.{key}")
    seeds, seed_key, seed_list = _seeds(raw.get("seeds", [0]), command, method, where)
    spec = Spec(command=command, method=method, base=base, args=_args(raw.get("args", []), where),
                result=_string(raw.get("result", RESULT_FILES[command]), "result", where),
                metrics=_metrics(raw.get("metrics"), where), seeds=seeds, seed_key=seed_key,
                seed_list=seed_list, grid=_grid(raw.get("grid"), where),
                cpus_per_trial=_positive(raw, "cpus_per_trial", 1, where),
                retries=_count(raw, "retries", 2, where), source=where)
    searches = [k for k in ("random", "bayes") if raw.get(k) is not None]
    if len(searches) > 1 or (searches and spec.grid):
        raise ConfigError(f"{where}: give one of 'grid', 'random' and 'bayes', not several")
    if searches:
        spec.search = searches[0]
        spec.samples, spec.search_seed, spec.repeats, spec.space = _search(raw[spec.search], spec.search, where)
    spec.objective = _objective(raw.get("objective"), spec.metrics, where)
    if spec.search == "bayes" and spec.objective is None:
        raise ConfigError(f"{where}: 'bayes' needs 'objective' (the metric to optimise and its mode)")
    if raw.get("versus") is not None:
        if spec.search != "bayes" or raw["versus"] != "random":
            raise ConfigError(f"{where}: 'versus' takes 'random' (random search at the same budget), with 'bayes'; "
                              f"got {raw['versus']!r}")
        spec.versus = "random"
    spec.rows, spec.row_axes = _rows(raw.get("rows"), where)
    if spec.rows and spec.search == "bayes":
        raise ConfigError(f"{where}: 'bayes' optimises one number per trial; it does not take 'rows'")
    spec.compare = _compare(raw.get("compare"), spec, where)
    spec.criteria = _criteria(raw.get("criteria"), spec.metrics, where)
    for key in list(spec.grid) + list(spec.space):
        set_dotted(copy.deepcopy(spec.base), key, None, f"{where}: key {key!r}")  # reachable in the base
    return spec


def _choice(raw, key, allowed, where):
    value = raw.get(key)
    if value not in allowed:
        raise ConfigError(f"{where}: {key!r} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _string(value, key, where) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {key!r} must be a non-empty string, got {value!r}")
    return value


def _positive(raw, key, default, where) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: {key!r} must be a positive integer, got {value!r}")
    return value


def _count(raw, key, default, where) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: {key!r} must be an integer >= 0, got {value!r}")
    return value


def _base_config(path, command, method, where) -> dict:
    if path is None:
        if command == "simulate":
            raise ConfigError(f"{where}: 'config' is required for command simulate")
        return {method: {}} if command == "compat" else {}
    base = load_config(_string(path, "config", where))
    if command == "compat":
        from neuro.commands.compat import section_of

        base = {method: section_of(base, method, path)}
    return base


def _args(value, where) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(a, (str, int, float)) for a in value):
        raise ConfigError(f"{where}: 'args' must be a list of command-line arguments, got {value!r}")
    args = [str(a) for a in value]
    if any(a in ("--out", "--seed", "--seeds") for a in args):
        raise ConfigError(f"{where}: 'args' must not set --out or the seed; the sweep sets them per trial")
    return args


def _metrics(value, where) -> dict:
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{where}: 'metrics' must map names to dotted keys of the result JSON, "
                          f"e.g. {{rate: populations.exc.mean_rate_hz}}; got {value!r}")
    out = {}
    for name, entry in value.items():
        entry = {"path": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: metrics.{name} must be a dotted key or {{path, better}}")
        check_keys(entry, ("path", "better", "minus", "over"), f"{where}: metrics.{name}")
        if entry.get("better") not in (None, "lower", "higher"):
            raise ConfigError(f"{where}: metrics.{name}.better must be lower or higher, got {entry['better']!r}")
        if "minus" in entry and "over" in entry:
            raise ConfigError(f"{where}: metrics.{name} takes 'minus' or 'over', not both")
        out[str(name)] = {"path": _string(entry.get("path"), f"metrics.{name}.path", where),
                          "better": entry.get("better")}
        for op in ("minus", "over"):
            if op in entry:
                out[str(name)][op] = _string(entry[op], f"metrics.{name}.{op}", where)
    return out


def _criteria(value, metrics, where) -> dict:
    """``{metric: {min: x, max: y}}``: the bounds (inclusive) a record must meet to pass."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{where}: 'criteria' must map metrics to {{min: x}}, {{max: y}} or both")
    out = {}
    for name, bounds in value.items():
        here = f"{where}: criteria.{name}"
        if name not in metrics:
            raise ConfigError(f"{here}: not one of the metrics {sorted(metrics)}")
        if not isinstance(bounds, dict) or not bounds:
            raise ConfigError(f"{here} must be {{min: x}}, {{max: y}} or both")
        check_keys(bounds, ("min", "max"), here)
        if any(isinstance(b, bool) or not isinstance(b, (int, float)) for b in bounds.values()):
            raise ConfigError(f"{here}: bounds must be numbers, got {bounds!r}")
        out[str(name)] = {k: float(v) for k, v in bounds.items()}
    return out


def _int_list(value, key, where) -> list[int]:
    if (not isinstance(value, list) or not value
            or any(isinstance(v, bool) or not isinstance(v, int) for v in value)):
        raise ConfigError(f"{where}: {key!r} must be a non-empty list of integers, got {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: {key!r} has repeated values: {value!r}")
    return list(value)


def _seeds(value, command, method, where):
    """(seeds, key, as_list): key None means the command's seed flag."""
    key, as_list = (f"{method}.seeds", True) if command == "compat" else (None, False)
    if not isinstance(value, dict):
        return _int_list(value, "seeds", where), key, as_list
    check_keys(value, ("values", "start", "count", "key", "list"), f"{where}: seeds")
    if ("values" in value) == ("count" in value):
        raise ConfigError(f"{where}: seeds needs either 'values' or 'start' and 'count'")
    if "count" in value:
        start, count = value.get("start", 0), value["count"]
        if any(isinstance(v, bool) or not isinstance(v, int) for v in (start, count)) or count < 1:
            raise ConfigError(f"{where}: seeds.start must be an integer and seeds.count a positive one, "
                              f"got {start!r} and {count!r}")
        seeds = list(range(start, start + count))
    else:
        seeds = _int_list(value["values"], "seeds.values", where)
    if "key" in value:
        key = _string(value["key"], "seeds.key", where)
        as_list = value.get("list", key.split(".")[-1] == "seeds")
    if not isinstance(as_list, bool):
        raise ConfigError(f"{where}: seeds.list must be true or false, got {as_list!r}")
    return seeds, key, as_list


def _grid(value, where) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{where}: 'grid' must map dotted config keys to lists of values")
    for key, values in value.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: grid.{key} must be a non-empty list of values, got {values!r}")
    return {str(k): list(v) for k, v in value.items()}


def _search(value, kind, where):
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {kind!r} must be a mapping with samples, seed, repeats and space")
    check_keys(value, ("samples", "seed", "repeats", "space"), f"{where}: {kind}")
    samples = _positive(value, "samples", None, f"{where}: {kind}")
    seed = _count(value, "seed", 0, f"{where}: {kind}")
    repeats = _positive(value, "repeats", 1, f"{where}: {kind}")
    space = value.get("space")
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"{where}: {kind}.space must map dotted config keys to distributions")
    out = {}
    for key, dist in space.items():
        here = f"{where}: {kind}.space.{key}"
        if not isinstance(dist, dict) or len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
            raise ConfigError(f"{here} must be one of {{uniform: [lo, hi]}}, {{loguniform: [lo, hi]}}, "
                              f"{{randint: [lo, hi]}} (hi excluded), {{choice: [values]}}; got {dist!r}")
        name, args = next(iter(dist.items()))
        if not isinstance(args, list) or not args:
            raise ConfigError(f"{here}.{name} must be a non-empty list")
        if name != "choice":
            ints = name == "randint"
            if (len(args) != 2 or any(isinstance(a, bool) or not isinstance(a, int if ints else (int, float))
                                      for a in args) or not args[0] < args[1]
                    or (name == "loguniform" and args[0] <= 0)):
                raise ConfigError(f"{here}.{name} must be [low, high] with low < high"
                                  f"{' (integers)' if ints else ''}{' and low > 0' * (name == 'loguniform')}, "
                                  f"got {args!r}")
        out[str(key)] = (name, list(args))
    return samples, seed, repeats, out


def _objective(value, metrics, where):
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: 'objective' must be {{metric: NAME, mode: min|max}}")
    check_keys(value, ("metric", "mode"), f"{where}: objective")
    if value.get("metric") not in metrics:
        raise ConfigError(f"{where}: objective.metric must be one of the metrics {sorted(metrics)}, "
                          f"got {value.get('metric')!r}")
    if value.get("mode") not in ("min", "max"):
        raise ConfigError(f"{where}: objective.mode must be min or max, got {value.get('mode')!r}")
    return {"metric": value["metric"], "mode": value["mode"]}


def _rows(value, where):
    if value is None:
        return None, []
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: 'rows' must be {{from: FILE:KEY, axes: [fields]}}")
    check_keys(value, ("from", "axes"), f"{where}: rows")
    source = _string(value.get("from"), "rows.from", where)
    if source.count(":") != 1 or not all(source.split(":")):
        raise ConfigError(f"{where}: rows.from must be FILE:KEY (e.g. compare.json:rows), got {source!r}")
    axes = value.get("axes", [])
    if not isinstance(axes, list) or not all(isinstance(a, str) for a in axes):
        raise ConfigError(f"{where}: rows.axes must be a list of row field names, got {axes!r}")
    file, key = source.split(":")
    return (file, key), list(axes)


def _compare(value, spec: Spec, where):
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: 'compare' must be {{axis: NAME, reference: VALUE}}")
    check_keys(value, ("axis", "reference"), f"{where}: compare")
    axis = value.get("axis")
    if axis not in spec.axes or axis == "params":
        raise ConfigError(f"{where}: compare.axis must be a grid key or a rows axis {spec.axes}, got {axis!r}")
    if "reference" not in value:
        raise ConfigError(f"{where}: compare needs 'reference', the value the others are paired with")
    if axis in spec.grid and value["reference"] not in spec.grid[axis]:
        raise ConfigError(f"{where}: compare.reference {value['reference']!r} is not among grid.{axis} "
                          f"{spec.grid[axis]!r}")
    return {"axis": axis, "reference": value["reference"]}
