"""Seeded fuzzing: every shipped config mutated key by key, every file format damaged; each outcome classified.

Outcomes: ``clear`` (a ValueError/OSError subclass whose message names the problem), ``vague`` (such an
error that does not name the key or file), ``ok`` (accepted, and right or not judgeable), ``raw`` (any other
exception: a traceback for the user) and ``wrong`` (accepted although the input can never be valid, or
a damaged file read back as different data without an error).
"""

from __future__ import annotations

import copy
import importlib
import math
import random
from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import yaml

from neuro.io import load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
FAST_LIMIT = 40  # mutations per shipped config in the fast run; the slow run tries all of them

NUMBER_KILLERS = (float("nan"), float("inf"), "abc", "0.1", True, [], {"x": 1})
MUTATIONS = (0, -1, 2.5, 10**12, None) + NUMBER_KILLERS


def leaves(obj, path=()):
    """Every (path, value) of the scalars and empty containers in nested dicts and lists."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else None
    if items is None or not obj:
        yield path, obj
        return
    for key, value in items:
        yield from leaves(value, path + (key,))


def mutated(cfg, path, value):
    out = copy.deepcopy(cfg)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


def never_valid(original, value) -> bool:
    """True when ``value`` cannot be right where ``original`` stood (kind changes that no key allows)."""
    if isinstance(original, bool):
        return not isinstance(value, bool) and value is not None
    if isinstance(original, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return True
        return isinstance(value, (str, bool, list, dict))
    if isinstance(original, str):
        return isinstance(value, (list, dict))
    return False


def plan(cfg, rng: random.Random, limit: int | None):
    """(path, original, mutation) triples; a seeded sample of ``limit`` of them (all if None)."""
    triples = [(p, v, m) for p, v in leaves(cfg) if p for m in MUTATIONS
               if not (type(m) is type(v) and m == v)]
    return triples if limit is None or limit >= len(triples) else rng.sample(triples, limit)


def classify(stage, expect_wrong: bool, names=()):
    """Run ``stage()``: the outcome, a short description and the result. ``names``: words a clear message
    contains (one is enough)."""
    try:
        result = stage()
    except (ValueError, OSError) as exc:  # ConfigError, CheckpointError, FileNotFoundError, ...
        text = str(exc)
        if names and not any(str(n) in text for n in names):
            return "vague", f"{type(exc).__name__}: {text[:200]}", None
        return "clear", text[:200], None
    except Exception as exc:  # noqa: BLE001 - what the user would see as a traceback
        return "raw", f"{type(exc).__name__}: {str(exc)[:200]}", None
    return ("wrong", "accepted", result) if expect_wrong else ("ok", "", result)


class Tally:
    """Counts per family and outcome, with a few examples of each bad outcome."""

    def __init__(self):
        self.counts: dict[str, Counter] = {}
        self.examples: dict[tuple[str, str], list[str]] = {}

    def add(self, family: str, outcome: str, what: str, detail: str) -> None:
        self.counts.setdefault(family, Counter())[outcome] += 1
        if outcome in ("raw", "wrong", "vague"):
            self.examples.setdefault((family, outcome), []).append(f"{what}: {detail}")

    def table(self) -> str:
        kinds = ("clear", "vague", "ok", "raw", "wrong")
        lines = [f"{'family':<24}{'tried':>7}" + "".join(f"{k:>7}" for k in kinds)]
        for family, c in sorted(self.counts.items()):
            lines.append(f"{family:<24}{sum(c.values()):>7}" + "".join(f"{c[k]:>7}" for k in kinds))
        for (family, outcome), ex in sorted(self.examples.items()):
            lines += [f"  {family} {outcome}: {e}" for e in ex[:4]]
        return "\n".join(lines)

    def total(self, outcome: str) -> int:
        return sum(c[outcome] for c in self.counts.values())


# --- stages: what each command checks before it does any work -------------------------------------
def _simulate(cfg, tmp):
    from neuro.commands.simulate import run_settings
    from neuro.config import network_from_config

    run_settings(cfg, "config")
    network_from_config(cfg)


def _train(cfg, tmp):
    from neuro.training import config

    resolved = config.resolve(cfg)
    config.build_model(resolved["model"], (2, 17, 17), 10)


def _prune(cfg, tmp):
    from neuro.builders import build_hrsnn
    from neuro.commands.prune import read_config
    from neuro.lnp.pipeline import lnp_config

    path = tmp / "prune.yaml"
    path.write_text(yaml.safe_dump(cfg))
    resolved = read_config(path)
    lnp_config(resolved["lnp"])
    if not resolved["network_file"]:
        build_hrsnn(resolved["network"], seed=resolved["seed"])


def _continual(cfg, tmp):
    from neuro.hlop.harness import resolve_config

    resolve_config(cfg)


def _compat(cfg, tmp):
    from neuro.compat.common import check_config, seeds_of

    for method, section in cfg.items():
        seeds_of(check_config(section, importlib.import_module(f"neuro.compat.{method}").DEFAULTS, method))


STAGES = {"simulate": _simulate, "train": _train, "prune": _prune, "continual": _continual, "compat": _compat}


def _family(path: Path) -> str:
    return path.parent.name if path.parent.name in STAGES else "simulate"


def _name_of(path) -> list:
    return [k for k in path if isinstance(k, str)][-1:] or list(path)


def fuzz_configs(tally: Tally, tmp, limit, seed=0):
    for path in CONFIGS:
        family, cfg = _family(path), load_config(path)
        stage = STAGES[family]
        rng = random.Random(f"{seed}:{path.name}")
        for keys, original, value in plan(cfg, rng, limit):
            outcome, detail, _ = classify(partial(stage, mutated(cfg, keys, value), tmp),
                                          never_valid(original, value), _name_of(keys))
            tally.add(f"config/{family}", outcome, f"{path.name} {'.'.join(map(str, keys))}={value!r}", detail)


# --- files ------------------------------------------------------------------------------------------------
def _damages(data: bytes, rng: random.Random, n: int):
    """Truncations, single flipped bits, overwritten runs and an empty file."""
    yield "empty", b""
    for _ in range(n):
        cut = rng.randrange(1, len(data))
        yield f"truncated at {cut}", data[:cut]
        pos = rng.randrange(len(data))
        flipped = bytearray(data)
        flipped[pos] ^= 1 << rng.randrange(8)
        yield f"bit flipped at {pos}", bytes(flipped)
        pos = rng.randrange(len(data))
        junk = bytearray(data)
        junk[pos:pos + 16] = bytes(rng.randrange(256) for _ in range(16))
        yield f"16 bytes overwritten at {pos}", bytes(junk)[:len(data)]


def _same_network(a, b) -> bool:
    if sorted(p.name for p in a.populations) != sorted(p.name for p in b.populations) or a.dt != b.dt:
        return False
    for p in a.populations:
        q = b.population(p.name)
        if (p.size, p.reset, p.model) != (q.size, q.reset, q.model) or any(
                not np.array_equal(p.params[k], q.params[k]) for k in p.params):
            return False
    return all(np.array_equal(p.synapses.to_dense(), b.projection(p.name).synapses.to_dense())
               and np.array_equal(np.sort(p.synapses.delays), np.sort(b.projection(p.name).synapses.delays))
               for p in a.projections)


def _small_network():
    from deployment.examples import hetero_ei_network

    return hetero_ei_network(12, seed=3)


def _fuzz_file(tally, family, tmp, name, data, read, same, n, seed):
    rng = random.Random(f"{seed}:{family}")
    path = tmp / name
    for what, damaged in _damages(data, rng, n):
        path.write_bytes(damaged)
        outcome, detail, result = classify(partial(read, path), False, (name,))
        if outcome == "ok" and not same(result):
            outcome, detail = "wrong", "read back as different data"
        tally.add(f"file/{family}", outcome, what, detail)


def fuzz_files(tally: Tally, tmp, n, seed=0):
    import torch

    from deployment.nir_io import export_nir, import_nir
    from neuro.data.nmnist_format import encode_events, make_events, read_bin
    from neuro.network import Network
    from neuro.training import checkpoint

    net = _small_network()
    data = net.save(tmp / "orig.npz").read_bytes()
    _fuzz_file(tally, "network.npz", tmp, "net.npz", data, Network.load, lambda got: _same_network(net, got), n, seed)
    data = export_nir(net, tmp / "orig.nir").read_bytes()
    _fuzz_file(tally, "nir", tmp, "net.nir", data, import_nir, lambda got: _same_network(net, got), n, seed)
    state = {"epoch": 3, "config": {"lr": 1e-3}, "model": {"w": torch.arange(64.0).reshape(8, 8)}}
    data = checkpoint.save(tmp / "orig.pt", state).read_bytes()
    _fuzz_file(tally, "checkpoint.pt", tmp, "checkpoint.pt", data, lambda p: checkpoint.load(p, ("model",)),
               lambda got: checkpoint.digest(got) == checkpoint.digest(state), n, seed)
    events = make_events(np.arange(30) % 34, np.arange(30) % 34, np.arange(30) * 100, np.arange(30) % 2)
    data = encode_events(events)
    _fuzz_file(tally, "nmnist.bin", tmp, "sample.bin", data, read_bin, lambda got: True, n, seed)
    for path in CONFIGS[::4]:
        _fuzz_file(tally, "config-text", tmp, path.name, path.read_bytes(), load_config, lambda got: True, n // 2,
                   seed)


# --- the tests -------------------------------------------------------------------------------------------
def _check(tally: Tally, capsys=None):
    report = tally.table()
    print("\n" + report)
    assert tally.total("raw") == 0, report
    assert tally.total("wrong") == 0, report


def test_fuzz_configs_fast(tmp_path):
    tally = Tally()
    fuzz_configs(tally, tmp_path, FAST_LIMIT)
    _check(tally)


def test_fuzz_files_fast(tmp_path):
    tally = Tally()
    fuzz_files(tally, tmp_path, 12)
    _check(tally)


@pytest.mark.slow
def test_fuzz_everything_slow(tmp_path):
    tally = Tally()
    fuzz_configs(tally, tmp_path, None, seed=1)
    fuzz_files(tally, tmp_path, 60, seed=1)
    _check(tally)
