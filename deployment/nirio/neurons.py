"""NIR's neuron nodes as neuro LIF parameters, and the reset conventions of NIR's producers.

Forward Euler at ``dt`` (every NIR consumer's reading), current first as snntorch and Lava::

    LIF:       v[t] = a v[t-1] + (1 - a) v_leak + g x[t]           a = 1 - dt/tau,  g = r dt/tau
    CubaLIF:   i[t] = b i[t-1] + (w_in dt/tau_syn) x[t]            b = 1 - dt/tau_syn
               v[t] = a v[t-1] + (1 - a) v_leak + (r dt/tau_mem) i[t]
    IF:        v[t] = v[t-1] + r x[t]                              (per step, as sinabs and snntorch)
    Threshold: z[t] = x[t] > threshold                              (no memory)
    LI, CubaLI, I: as LIF, CubaLIF, IF without the threshold: the output is ``v``

then ``z = v > v_threshold`` and the reset of the convention (``CONVENTIONS``)::

    nir:       v = v_reset                         in the step of the spike     neuro 'hard'
    subtract:  v = v - (v_threshold - v_reset)     in the step of the spike     neuro 'soft'
    snntorch:  m[t] = a m[t-1] + x[t] - H(m[t-1] - thr) (thr - v_reset)   (one step late)
               = neuro 'soft' with v_reset' = v_th - (v_th - v_reset) / a
    sinabs:    subtract, but z = v >= v_threshold

A spike at ``v >= v_th`` (``sinabs``, or ``threshold_comparison: ">="`` in the metadata) is neuro's strict
``v > v_th'`` with ``v_th' = nextafter(v_th, -inf)``: no float64 lies between the two, so the comparison is exact
in float64 (a float32 engine rounds ``v_th'`` back to ``v_th``); a soft reset keeps subtracting ``v_th - v_reset``
(``v_reset' = v_th' - (v_th - v_reset)``, checked exact).

Decays map exactly (``tau = -dt / ln a``), the gains ``g`` go into the incoming weights. The non-spiking
nodes (``READOUT_KINDS``) become neuro's readout neuron: reset ``none`` and the unreachable threshold of
:class:`neuro.training.layers.Readout`, whose membrane is the node's output.
"""

from __future__ import annotations

import numpy as np

from neuro.training.layers import READOUT_THRESHOLD

CONVENTIONS = ("nir", "subtract", "snntorch", "sinabs")
#: Non-spiking neuron nodes: their output is the membrane ``v``.
READOUT_KINDS = ("LI", "CubaLI", "I")
#: Nodes that become a population.
NEURON_KINDS = ("LIF", "CubaLIF", "IF", "Threshold") + READOUT_KINDS
#: Node/graph metadata keys a producer may use to say how its neurons reset, and their values.
RESET_KEYS = ("reset_method", "reset_mechanism", "reset")
RESET_VALUES = {"zero": "nir", "reset": "nir", "hard": "nir", "reset_to_zero": "nir", "v_reset": "nir",
                "subtract": "subtract", "subtraction": "subtract", "subtractive": "subtract", "soft": "subtract",
                "subtract_delayed": "snntorch", "snntorch": "snntorch", "sinabs": "sinabs"}
#: Node/graph metadata key for the spike condition, and its values (``True``: ``v >= v_threshold``).
COMPARISON_KEY = "threshold_comparison"
COMPARISONS = {">": False, "gt": False, ">=": True, "ge": True}


def convention_of(node_meta, graph_meta, explicit, name) -> str:
    """``explicit`` if given, else the reset written in the node's or the graph's metadata, else ``'nir'``."""
    if explicit is not None:
        if explicit not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {explicit!r}")
        return explicit
    for meta in (node_meta or {}, graph_meta or {}):
        for key in RESET_KEYS:
            if key in meta:
                value = meta[key].decode() if isinstance(meta[key], bytes) else str(meta[key])
                if value.lower() not in RESET_VALUES:
                    raise ValueError(f"NIR node {name!r}: unknown reset {key}={value!r} in its metadata; known: "
                                     f"{sorted(RESET_VALUES)} (or pass convention=)")
                return RESET_VALUES[value.lower()]
    return "nir"


def non_strict(node_meta, graph_meta, convention, name) -> bool:
    """Whether the node spikes at ``v >= v_threshold``: the ``sinabs`` convention, or the metadata says so."""
    if convention == "sinabs":
        return True
    for meta in (node_meta or {}, graph_meta or {}):
        if COMPARISON_KEY in meta:
            value = meta[COMPARISON_KEY]
            value = (value.decode() if isinstance(value, bytes) else str(value)).strip().lower()
            if value not in COMPARISONS:
                raise ValueError(f"NIR node {name!r}: unknown {COMPARISON_KEY}={value!r} in its metadata; known: "
                                 f"{sorted(COMPARISONS)}")
            return COMPARISONS[value]
    return False


def tau_of_decay(a, dt):
    """``tau`` with ``exp(-dt / tau) = a``: ``a = 1 -> inf``, ``a = 0 -> 0``."""
    a = np.asarray(a, np.float64)
    with np.errstate(divide="ignore"):
        inner = np.where((a > 0) & (a < 1), a, 0.5)
        return np.where(a >= 1, np.inf, np.where(a <= 0, 0.0, -dt / np.log(inner)))


def _decay(tau, dt, what, name):
    a = 1.0 - dt / np.asarray(tau, np.float64)
    if np.any(a < 0):
        raise ValueError(f"NIR node {name!r}: {what} shorter than dt={dt} s has no Euler reading (decay factor "
                         "< 0); pass the dt the file was written for")
    return a


def neuron_params(node, size: int, dt: float, convention: str, name: str, at_threshold: bool = False):
    """``(params, reset, gain)``: neuro LIF parameters of a NIR neuron node of ``size`` neurons, its reset mode
    and the factor on its input. ``at_threshold``: it spikes at ``v >= v_threshold`` (:func:`non_strict`)."""
    params, reset, gain = _params(node, size, dt, convention, name)
    if at_threshold and type(node).__name__ not in READOUT_KINDS:
        _at_threshold(params, reset, name)
    return params, reset, gain


def _at_threshold(params, reset, name):
    """``v >= v_th`` as neuro's strict ``v > v_th'`` (module docstring), in place."""
    v_th = np.nextafter(params["v_th"], -np.inf)
    if reset == "soft":
        step = params["v_th"] - params["v_reset"]
        v_reset = v_th - step
        if np.any(v_th - v_reset != step):
            raise ValueError(f"NIR node {name!r}: v >= v_threshold with a subtract reset has no exact float64 form "
                             "for these thresholds and resets")
        params["v_reset"] = v_reset
    params["v_th"] = v_th


def _params(node, size, dt, convention, name):
    k = type(node).__name__

    def full(value, default=0.0):
        value = np.asarray(default if value is None else value, np.float64)
        if value.size not in (1, size):
            raise ValueError(f"NIR node {name!r} ({k}): a parameter of {value.size} values for {size} neurons")
        return np.broadcast_to(value.ravel() if value.size == size else value.reshape(()), (size,)).copy()

    if k == "Threshold":
        params = dict(tau_mem=np.full(size, 1e-300), tau_syn=np.zeros(size), v_th=full(node.threshold),
                      v_reset=np.zeros(size), v_rest=np.zeros(size))
        return _with_inh(params), "none", np.ones(size)
    if k in ("IF", "I"):
        a_mem, a_syn, gain, v_rest = np.ones(size), np.zeros(size), full(node.r), np.zeros(size)
    elif k in ("LIF", "LI"):
        a_mem, a_syn = full(_decay(node.tau, dt, "tau", name)), np.zeros(size)
        gain, v_rest = full(np.asarray(node.r) * dt / np.asarray(node.tau)), full(node.v_leak)
    elif k in ("CubaLIF", "CubaLI"):
        a_mem = full(_decay(node.tau_mem, dt, "tau_mem", name))
        a_syn = full(_decay(node.tau_syn, dt, "tau_syn", name))
        gain = full(np.asarray(node.w_in) * dt / np.asarray(node.tau_syn) * np.asarray(node.r) * dt
                    / np.asarray(node.tau_mem))
        v_rest = full(node.v_leak)
    else:
        raise ValueError(f"NIR node {name!r} is a {k}, not a neuron node")
    tau_mem = tau_of_decay(a_mem, dt)
    params = dict(tau_mem=np.where(tau_mem > 0, tau_mem, 1e-300), tau_syn=tau_of_decay(a_syn, dt), v_rest=v_rest)
    if k in READOUT_KINDS:
        params.update(v_th=np.full(size, READOUT_THRESHOLD), v_reset=np.zeros(size))
        return _with_inh(params), "none", gain
    params.update(v_th=full(node.v_threshold), v_reset=full(node.v_reset))
    if convention == "nir":
        return _with_inh(params), "hard", gain
    if convention == "snntorch":
        if np.any(a_mem <= 0):
            raise ValueError(f"NIR node {name!r}: snntorch's delayed subtract reset needs beta > 0")
        params["v_reset"] = params["v_th"] - (params["v_th"] - params["v_reset"]) / a_mem
    return _with_inh(params), "soft", gain


def _with_inh(params):
    params["tau_syn_inh"] = params["tau_syn"]
    return params
