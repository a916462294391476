"""Stabilisation over the heterogeneous timescales (step 3 of LNP; our reconstruction).

The pruned network's largest Lyapunov exponent ``lambda_max`` (QR method,
:mod:`neuro.lnp.lyapunov`) is brought to ``<= target`` (default 0) by shortening the membrane
time constants with one factor ``c`` in ``(0, 1]``::

    tau_i <- max(c * tau_i, dt)           (the gamma shape and CV of the heterogeneity are kept)
    bias_i <- bias_i * (1 - a_i') / (1 - a_i)   (each neuron's steady-state drive bias/(1-a) is kept)

Shorter membranes integrate less recurrent input (the PSP area of a fixed synaptic current
scales with ``tau``), so the loop gain and ``lambda_max`` fall. ``c`` is the largest value found by
bisection with ``lambda_max(c) <= target``; if even ``min_factor`` does not suffice, the recurrent
weights are then scaled by a factor found the same way (``gain``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from neuro.lnp.graph import recurrent_of, with_params, with_synapses
from neuro.lnp.lyapunov import largest_lyapunov
from neuro.network import Network
from neurons import lif


def scale_timescales(net: Network, factor: float) -> Network:
    """Membrane time constants times ``factor`` (>= dt), bias rescaled to keep the steady-state drive."""
    if not factor > 0:
        raise ValueError(f"time-constant factor must be > 0, got {factor}")
    rec = recurrent_of(net)
    tau = np.concatenate([net.population(p).params["tau_mem"] for p in rec.populations])
    bias = np.concatenate([net.population(p).params["bias"] for p in rec.populations])
    new_tau = np.maximum(factor * tau, net.dt)
    ratio = (1.0 - lif.decay(new_tau, net.dt)) / np.maximum(1.0 - lif.decay(tau, net.dt), 1e-12)
    return with_params(net, rec, tau_mem=new_tau, bias=bias * ratio)


def scale_recurrent_weights(net: Network, factor: float) -> Network:
    rec = recurrent_of(net)
    return with_synapses(net, rec, np.ones(rec.n_synapses, bool), rec.weight * factor)


def _largest_passing(transform, lyap, target, lo, iterations):
    """Largest ``x`` in ``[lo, 1]`` with ``lyap(transform(x)) <= target`` (bisection), or None."""
    if lyap(transform(lo)) > target:
        return None
    hi = 1.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if lyap(transform(mid)) <= target else (lo, mid)
    return lo


def stabilize(net: Network, target: float = 0.0, min_factor: float = 0.1, iterations: int = 6,
              lyapunov: dict | None = None) -> tuple[Network, dict]:
    """Return ``(network with lambda_max <= target, info)`` (module docstring).

    ``lyapunov`` holds keyword arguments of :func:`neuro.lnp.lyapunov.largest_lyapunov`.
    ``info``: ``lambda_before``, ``lambda_after`` (per step), ``tau_factor``, ``weight_factor``.
    """
    kw = dict(lyapunov or {})

    def lyap(candidate):
        return largest_lyapunov(candidate, **kw)

    before = lyap(net)
    info = {"lambda_before": before, "tau_factor": 1.0, "weight_factor": 1.0}
    if before <= target:
        return net, {**info, "lambda_after": before}
    factor = _largest_passing(lambda c: scale_timescales(net, c), lyap, target, min_factor, iterations)
    if factor is None:
        slow = scale_timescales(net, min_factor)
        gain = _largest_passing(lambda g: scale_recurrent_weights(slow, g), lyap, target, 0.0, iterations)
        if gain is None:
            raise ValueError("stabilisation failed: lambda_max stays above the target even without recurrence")
        out, info = scale_recurrent_weights(slow, gain), {**info, "tau_factor": min_factor, "weight_factor": gain}
    else:
        out, info = scale_timescales(net, factor), {**info, "tau_factor": factor}
    out = replace(out, metadata={**out.metadata, "stabilised": {k: float(v) for k, v in info.items()}})
    return out, {**info, "lambda_after": lyap(out)}
