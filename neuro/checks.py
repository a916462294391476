"""Table-driven checks of config values and a memory estimate, each error naming the key.

A rule is a callable ``rule(value, key) -> None`` raising :class:`~neuro.io.ConfigError`;
a config section is checked against a table ``{dotted key: rule}`` with :func:`check_table`::

    check_table(cfg, {"model.dt": POSITIVE, "epochs": POSITIVE_INT}, "train config")
"""

from __future__ import annotations

import math
import numbers
import os

from neuro.io import ConfigError


def number(low=None, high=None, *, low_open=False, high_open=False, integer=False):
    """Rule: a finite real (``integer``: a whole int) in the range given; bools and strings are refused."""
    kind = "an integer" if integer else "a finite number"
    if low is not None and high is not None:
        want = f"{kind} in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    elif low is not None or high is not None:
        want = f"{kind} {'>' if low_open else '>='} {low}" if high is None else \
            f"{kind} {'<' if high_open else '<='} {high}"
    else:
        want = kind

    def rule(value, key):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if ok and integer:
            ok = isinstance(value, numbers.Integral)
        ok = ok and math.isfinite(value)
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value < high if high_open else value <= high
        if not ok:
            raise ConfigError(f"{key} must be {want}, got {value!r}{_text_hint(value)}")

    rule.want = want
    return rule


def _text_hint(value) -> str:
    if not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    yaml = "; YAML reads 1e-3 as text, write 1.0e-3" if "e" in value.lower() and "." not in value else ""
    return f" (text, not a number: drop the quotes{yaml})"


POSITIVE = number(0, low_open=True)
NON_NEGATIVE = number(0)
FINITE = number()
POSITIVE_INT = number(1, integer=True)
NON_NEGATIVE_INT = number(0, integer=True)


def boolean(value, key):
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")


def mapping(value, key):
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a mapping, got {value!r}")


def text(value, key):
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be a non-empty string, got {value!r}")


def one_of(choices):
    """Rule: one of ``choices``."""
    choices = tuple(choices)

    def rule(value, key):
        if value not in choices:
            raise ConfigError(f"{key} must be one of {list(choices)}, got {value!r}")

    return rule


def optional(rule):
    """Rule: ``None`` or what ``rule`` accepts."""

    def check(value, key):
        if value is not None:
            rule(value, key)

    return check


def check_table(cfg: dict, rules: dict, where: str = "") -> None:
    """Apply ``rules`` (dotted key -> rule) to ``cfg``; absent keys are skipped. Errors start with ``where``."""
    for dotted, rule in rules.items():
        value, present = cfg, True
        for part in dotted.split("."):
            if not isinstance(value, dict) or part not in value:
                present = False
                break
            value = value[part]
        if present:
            try:
                rule(value, dotted)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}" if where else str(exc)) from None


def available_bytes() -> int:
    """Memory this process can still allocate: ``MemAvailable`` (Linux), else the physical memory."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**62


def check_memory(nbytes: float, what: str) -> None:
    """Refuse, before allocating, what needs more memory than is available (``what`` names the key)."""
    free = available_bytes()
    if nbytes > free:
        raise ConfigError(f"{what} needs about {nbytes / 2**30:.3g} GiB of memory, more than the "
                          f"{free / 2**30:.3g} GiB available; make it smaller")


def like(default):
    """Rule inferred from a default value: the same kind (true/false, whole number, finite number, text,
    list, mapping); a whole-number default >= 0 also asks for a number >= 0. ``None``: anything."""
    if default is None:
        return lambda value, key: None
    if isinstance(default, bool):
        return boolean
    if isinstance(default, int):
        return NON_NEGATIVE_INT if default >= 0 else number(integer=True)
    if isinstance(default, float):
        return FINITE
    if isinstance(default, str):
        return text
    kind, name = (list, "a list") if isinstance(default, list) else (dict, "a mapping")
    if not isinstance(default, (list, dict)):
        return lambda value, key: None

    def rule(value, key):
        if not isinstance(value, kind if kind is dict else (list, tuple)):
            raise ConfigError(f"{key} must be {name}, got {value!r}")
        if kind is list and default:
            for i, item in enumerate(value):
                like(default[0])(item, f"{key}[{i}]")

    return rule


def check_like(cfg: dict, defaults: dict, where: str, skip=()) -> None:
    """Check every key of ``cfg`` that ``defaults`` has against :func:`like` of its default (nested mappings
    too), except the dotted keys in ``skip`` (checked by their own rules)."""

    def walk(section, base, prefix):
        for key, default in base.items():
            dotted = f"{prefix}{key}"
            if key not in section or dotted in skip:
                continue
            if isinstance(default, dict) and default and isinstance(section[key], dict):
                walk(section[key], default, f"{dotted}.")
            else:
                try:
                    like(default)(section[key], dotted)
                except ConfigError as exc:
                    raise ConfigError(f"{where}: {exc}") from None

    walk(cfg, defaults, "")


def distribution(value, key):
    """Rule: a number, or a distribution mapping ``{dist: name, <parameter>: number, ...}``."""
    if not isinstance(value, dict):
        FINITE(value, key)
        return
    for name, v in value.items():
        (text if name == "dist" else FINITE)(v, f"{key}.{name}")
