"""Declarative description of a neuron model's parameters, used for validation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ParamSpec:
    """One per-neuron parameter: its default, meaning and allowed range."""

    default: float
    doc: str
    lower: float | None = None
    lower_inclusive: bool = False
    allow_inf: bool = False


@dataclass(frozen=True)
class NeuronModel:
    """A neuron model: named per-neuron parameters, recordable state, and options."""

    name: str
    params: dict[str, ParamSpec]
    state: tuple[str, ...] = ()
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def fill(self, size: int, params: dict | None, where: str = "") -> dict[str, np.ndarray]:
        """Broadcast ``params`` to float64 arrays of length ``size``, add defaults, validate.

        Raises ``ValueError`` naming the parameter and the first offending neuron.
        """
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            raise ValueError(f"{where}unknown parameter(s) {unknown} for model {self.name!r}; "
                             f"known: {sorted(self.params)}")
        out = {}
        for name, spec in self.params.items():
            value = np.asarray(params.get(name, spec.default), dtype=np.float64)
            if value.ndim == 0:
                value = np.full(size, float(value))
            if value.shape != (size,):
                raise ValueError(f"{where}parameter {name!r} has shape {value.shape}, expected ({size},)")
            check_values(value, name, spec, where)
            value = value.copy()
            value.setflags(write=False)
            out[name] = value
        return out


def check_values(value: np.ndarray, name: str, spec: ParamSpec, where: str = "") -> None:
    """Raise ``ValueError`` if ``value`` has NaN, a forbidden inf, or is below the allowed range."""
    bad = np.isnan(value) | (np.isinf(value) & (not spec.allow_inf or value < 0))
    if spec.lower is not None:
        below = value < spec.lower if spec.lower_inclusive else value <= spec.lower
        bad |= below
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        rule = "" if spec.lower is None else (
            f" (must be {'>=' if spec.lower_inclusive else '>'} {spec.lower}"
            f"{', inf allowed' if spec.allow_inf else ''})")
        raise ValueError(f"{where}parameter {name!r} of neuron {k} is {value[k]!r}{rule}; "
                         f"{int(bad.sum())} neuron(s) invalid")
