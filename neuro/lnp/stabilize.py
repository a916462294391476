"""Stabilisation of the pruned network (step 3 of LNP; our reconstruction).

The pruned network's largest Lyapunov exponent ``lambda_max`` (QR method,
:mod:`neuro.lnp.lyapunov`; by default driven by a probe input) is brought to ``<= target``
(default 0) with two levers, in this order:

1. *Timescales* (only if ``min_factor < 1``): all membrane time constants times one factor
   ``c`` in ``[min_factor, 1]``, the largest passing value by bisection::

       tau_i <- max(c * tau_i, dt)                (the gamma shape and CV of the heterogeneity are kept)
       bias_i <- bias_i * (1 - a_i') / (1 - a_i)  (each neuron's steady-state drive bias/(1-a) is kept)

2. *Coupling*: if that is not enough, the recurrent weights times the largest passing ``gain``
   in ``[0, 1]`` (bisection; ``gain = 0`` always passes: uncoupled neurons contract).

The LNP default is ``min_factor = 1``: the timescales the builder sampled are kept and only the
coupling is scaled. Shortening the membranes hardly lowered ``lambda_max`` of these networks (the
instability comes from the strong inhibitory coupling) and cost memory on the series tasks
(``docs/lnp.md``, "Why these defaults").

With ``rest`` (the LNP default, 0.9; our design) the drive is first lowered so that every
neuron's steady state without input sits at most at ``rest`` of the way from rest to threshold::

    v_ss,i = v_rest,i + bias_i / (1 - a_i)  <=  v_rest,i + rest * (v_th,i - v_rest,i)   (one factor on all biases)

With ``rest < 1`` and no input no neuron ever reaches threshold, so the network is silent and its
true (autonomous) Lyapunov exponents are the leak rates ``log a_i < 0``: it fires only when
driven, and the driven ``lambda_max`` is what the two levers above bring to the target.

With ``preserve_rate`` (the session-2 default, now off) the drive is instead scaled down after
the levers (bisection) until the autonomous mean rate is back at its value before stabilisation
(weaker coupling, mostly weaker inhibition, raises it), and the weights are scaled again if that
raised ``lambda_max`` above the target; the network then stays spontaneously active.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from neuro.lnp.graph import recurrent_of, with_params, with_synapses
from neuro.lnp.lyapunov import largest_lyapunov
from neuro.network import Network
from neuro.simulator import Simulator
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


def scale_drive(net: Network, factor: float) -> Network:
    """The bias of every recurrent neuron times ``factor``."""
    rec = recurrent_of(net)
    bias = np.concatenate([net.population(p).params["bias"] for p in rec.populations])
    return with_params(net, rec, bias=bias * factor)


def mean_rate(net: Network, steps: int = 500, seed: int = 0) -> float:
    """Mean firing rate (Hz) of the recurrent neurons, autonomous run (no input)."""
    rec = recurrent_of(net)
    res = Simulator(net).run(steps, seed=seed, record=list(rec.populations))
    return float(np.mean(np.concatenate([res.rates(p)[0] for p in rec.populations])))


def match_rate(net: Network, rate: float, iterations: int = 6) -> tuple[Network, float]:
    """Scale the drive by the factor in ``[0, 1]`` (bisection) whose mean rate is closest to ``rate``."""
    lo, hi = 0.0, 1.0
    if mean_rate(net) <= rate:
        return net, 1.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mean_rate(scale_drive(net, mid)) <= rate else (lo, mid)
    return scale_drive(net, hi), hi


def lower_rest(net: Network, rest: float) -> tuple[Network, float]:
    """Scale the drive (never up) so that every steady state is at most ``rest`` of the way to threshold."""
    if not 0 <= rest < 1:
        raise ValueError(f"rest (steady state as a fraction of the way to threshold) must be in [0, 1), got {rest}")
    c = recurrent_of(net).coef
    above_rest = c[lif.BIAS] / np.maximum(1.0 - c[lif.A_MEM], 1e-12)
    allowed = rest * (c[lif.V_TH] - c[lif.V_REST])
    highest = np.max(above_rest / allowed) if allowed.min() > 0 else np.inf
    factor = 1.0 if highest <= 1.0 else 1.0 / highest
    return (net, 1.0) if factor == 1.0 else (scale_drive(net, factor), float(factor))


def scale_recurrent_weights(net: Network, factor: float) -> Network:
    rec = recurrent_of(net)
    return with_synapses(net, rec, np.ones(rec.n_synapses, bool), rec.weight * factor)


def _largest_passing(transform, lyap, target, lo, iterations):
    """``(x, lyap(transform(x)))`` for the largest ``x`` in ``[lo, 1]`` with ``lyap(transform(x)) <= target``
    (bisection), or None if ``lo`` does not pass."""
    lam = lyap(transform(lo))
    if lam > target:
        return None
    hi = 1.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        lam_mid = lyap(transform(mid))
        lo, hi, lam = (mid, hi, lam_mid) if lam_mid <= target else (lo, mid, lam)
    return lo, lam


def _stabilise_weights(net, lyap, target, iterations):
    """``(network, gain, lambda_max)``: the recurrent weights times the largest passing gain."""
    passing = _largest_passing(lambda g: scale_recurrent_weights(net, g), lyap, target, 0.0, iterations)
    if passing is None:
        raise ValueError("stabilisation failed: lambda_max stays above the target even without recurrence")
    gain, lam = passing
    return scale_recurrent_weights(net, gain), gain, lam


def stabilize(net: Network, target: float = 0.0, min_factor: float = 1.0, iterations: int = 6,
              lyapunov: dict | None = None, rest: float | None = None,
              preserve_rate: bool = False, probes: int = 1) -> tuple[Network, dict]:
    """Return ``(network with lambda_max <= target, info)`` (module docstring).

    ``lyapunov`` holds keyword arguments of :func:`neuro.lnp.lyapunov.largest_lyapunov`;
    ``lambda_max`` is its mean over ``probes`` realisations of the probe input.
    ``rest``: first lower the drive so that the network is silent without input (:func:`lower_rest`).
    ``preserve_rate``: afterwards scale the drive down until the autonomous mean rate is back at
    its value before stabilisation, and re-stabilise with the weights if needed.
    ``info``: ``lambda_before``, ``lambda_after`` (per step), ``drive_factor``, ``tau_factor``,
    ``weight_factor``, ``autonomous_rate`` (Hz, no input, after stabilisation).
    """
    if not 0 < min_factor <= 1:
        raise ValueError(f"min_factor (smallest time-constant factor) must be in (0, 1], got {min_factor}")
    kw = dict(lyapunov or {})

    def lyap(candidate):
        return largest_lyapunov(candidate, probes, **kw)

    before = lyap(net)
    info = {"lambda_before": before, "drive_factor": 1.0, "tau_factor": 1.0, "weight_factor": 1.0}
    out = net
    if rest is not None:
        out, info["drive_factor"] = lower_rest(net, rest)
    current = lyap(out) if out is not net else before
    rate = mean_rate(out) if preserve_rate and current > target else None
    if current > target:
        passing = None
        if min_factor < 1:
            passing = _largest_passing(lambda c: scale_timescales(out, c), lyap, target, min_factor, iterations)
        info["tau_factor"] = min_factor if passing is None else passing[0]
        out = scale_timescales(out, info["tau_factor"])
        if passing is None:
            out, info["weight_factor"], current = _stabilise_weights(out, lyap, target, iterations)
        else:
            current = passing[1]
    if rate is not None:
        out, drive = match_rate(out, rate, iterations)
        info["drive_factor"] *= drive
        current = lyap(out)
        if current > target:
            out, gain, current = _stabilise_weights(out, lyap, target, iterations)
            info["weight_factor"] *= gain
    info["autonomous_rate"] = mean_rate(out)
    out = replace(out, metadata={**out.metadata, "stabilised": {k: float(v) for k, v in info.items()}})
    return out, {**info, "lambda_after": current}
