"""Seeded samplers for heterogeneous per-neuron time constants."""

from __future__ import annotations

import numpy as np

DISTRIBUTIONS = ("fixed", "gamma", "lognormal", "uniform")


def sample_timescales(n: int, mean: float, dist: str = "gamma", *, cv: float = 0.5,
                      low: float | None = None, high: float | None = None,
                      minimum: float = 0.0, seed=None) -> np.ndarray:
    """Draw ``n`` positive time constants with the given ``mean``.

    * ``fixed``: all equal to ``mean``.
    * ``gamma``: shape ``k = 1/cv**2``, scale ``mean/k`` (coefficient of variation ``cv``).
    * ``lognormal``: ``sigma**2 = log(1 + cv**2)``, ``mu = log(mean) - sigma**2/2``.
    * ``uniform``: on ``[low, high]`` (defaults ``mean*(1 -/+ sqrt(3)*cv)``, clipped at 0).

    Values below ``minimum`` are clipped up to it (e.g. one time step).
    ``seed`` is an int, ``None`` or a ``numpy.random.Generator``.
    """
    if dist not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {dist!r}; expected one of {DISTRIBUTIONS}")
    if not (np.isfinite(mean) and mean > 0):
        raise ValueError(f"mean time constant must be positive and finite, got {mean!r}")
    if cv < 0:
        raise ValueError(f"cv must be >= 0, got {cv!r}")
    rng = np.random.default_rng(seed)
    if dist == "fixed" or cv == 0 and dist != "uniform":
        tau = np.full(n, float(mean))
    elif dist == "gamma":
        shape = 1.0 / cv**2
        tau = rng.gamma(shape, mean / shape, size=n)
    elif dist == "lognormal":
        sigma2 = np.log1p(cv**2)
        tau = rng.lognormal(np.log(mean) - sigma2 / 2, np.sqrt(sigma2), size=n)
    else:
        half = np.sqrt(3.0) * cv * mean
        lo = max(mean - half, 0.0) if low is None else low
        hi = mean + half if high is None else high
        if not hi >= lo >= 0:
            raise ValueError(f"uniform bounds must satisfy 0 <= low <= high, got [{lo}, {hi}]")
        tau = rng.uniform(lo, hi, size=n)
    return np.maximum(tau, minimum)
