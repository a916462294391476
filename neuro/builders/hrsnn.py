"""Heterogeneous recurrent spiking networks (HRSNN) and clustered HRSNNs (CHRSNN).

After Chakraborty & Mukhopadhyay ("Heterogeneous neuronal and synaptic dynamics ...",
ICLR 2023) and Chakraborty, Kang, Kumar & Mukhopadhyay (ICLR 2024), as summarised in
``shared/research/snn_papers.md`` section 3: a recurrent layer of LIF neurons whose membrane
time constants are drawn from a gamma distribution; a CHRSNN splits the layer into clusters
with different time-constant distributions. The E/I split, weights and drive are our choices.

The network built here (``n`` neurons, ``exc_fraction`` of them excitatory)::

    populations  input (spike_source, n_input)   exc (lif)   inh (lif)   [readout (lif, optional)]
    recurrent    exc->exc, exc->inh  (receptor 'exc', weights >= 0)
                 inh->exc, inh->inh  (receptor 'inh', weights <= 0; Dale's law)
    input        input->exc, input->inh (Bernoulli p_input, signed Gaussian weights, receptor 'exc')
    readout      exc->readout, inh->readout (all-to-all, weight 0: filled by a fitted readout)

Neurons sit on a ring (position ``p``); clusters are contiguous arcs of the ring and
the E/I type is drawn at random per position, so a small-world graph (Watts-Strogatz
over the ring) connects clusters mostly internally. Per neuron ``i``:

* ``tau_mem_i ~ gamma(mean, cv)`` of its cluster (:func:`neurons.sample_timescales`),
  ``tau_syn_i``, ``tau_syn_inh_i`` likewise; all clipped below at ``dt``;
* ``bias_i = drive * (1 - exp(-dt / tau_mem_i))``: a constant input whose steady-state
  voltage is ``drive`` for every neuron, whatever its time constant (the discrete
  form of ``tau dv/dt = -v + drive``);
* recurrent weight onto ``i``: ``w = w_exc * jitter * (1 - a_i) / (1 - a_mean)`` with
  ``jitter ~ gamma`` of mean 1 and CV ``weight_cv``, ``a = exp(-dt / tau_mem)`` (so every
  neuron sees the same PSP area), times ``g`` for inhibitory synapses; delays of ``delay``
  steps (>= 1).

The default operating point (``drive = 1.5`` above threshold, strong inhibition ``g = 9``, a
2 ms refractory period) gives asynchronous irregular activity at ~12 Hz on average, with a
skewed rate distribution (see ``docs/lnp.md``).
"""

from __future__ import annotations

import numpy as np

from neuro.checks import (
    FINITE,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    check_memory,
    check_table,
    distribution,
    like,
    mapping,
    number,
    one_of,
    optional,
    text,
)
from neuro.network import Network, Population, Projection
from neurons import sample_timescales
from synapses import all_to_all, apply_dale, bernoulli, from_coo, small_world
from synapses.csr import CSR

HRSNN_DEFAULTS = {
    "n": 400,
    "exc_fraction": 0.8,
    "dt": 1e-3,
    "tau_mem": {"mean": 20e-3, "dist": "gamma", "cv": 0.5},
    "tau_syn": {"mean": 5e-3, "dist": "gamma", "cv": 0.3},
    "tau_syn_inh": {"mean": 10e-3, "dist": "gamma", "cv": 0.3},
    "clusters": None,  # list of {"fraction": f, "tau_mem": {...}} for a CHRSNN
    "connectivity": "small_world",  # or "random"
    "k": 40,  # small world: out-degree (even)
    "beta": 0.3,  # small world: rewiring probability
    "p": 0.1,  # random: connection probability
    "w_exc": 0.016,
    "g": 9.0,
    "weight_cv": 0.3,
    "delay": 1,
    "drive": 1.5,
    "v_th": 1.0,
    "v_reset": 0.0,
    "reset": "hard",
    "t_ref": 2e-3,
    "n_input": 64,
    "p_input": 0.2,
    "w_input": 0.5,
    "n_readout": 0,
}


UNIT = number(0, 1)
#: The rule of every scalar option (:mod:`neuro.checks`).
RULES = {"n": number(4, integer=True), "exc_fraction": number(0, 1, low_open=True, high_open=True), "dt": POSITIVE,
         "connectivity": one_of(("small_world", "random")), "k": NON_NEGATIVE_INT, "beta": UNIT, "p": UNIT,
         "w_exc": FINITE, "g": FINITE, "weight_cv": NON_NEGATIVE, "delay": POSITIVE_INT, "drive": FINITE,
         "v_th": FINITE, "v_reset": FINITE, "t_ref": NON_NEGATIVE, "n_input": NON_NEGATIVE_INT, "p_input": UNIT,
         "w_input": FINITE, "n_readout": NON_NEGATIVE_INT, "tau_mem": distribution, "tau_syn": distribution,
         "tau_syn_inh": distribution, "clusters": optional(like([{}])), "reset": text}


def build_hrsnn(config: dict | None = None, seed=None, **overrides) -> Network:
    """Build an HRSNN (or CHRSNN when ``clusters`` is given) from ``HRSNN_DEFAULTS`` updated by
    ``config`` and ``overrides``; the same config and seed give the same network."""
    cfg = {**HRSNN_DEFAULTS, **(config or {}), **overrides}
    unknown = sorted(set(cfg) - set(HRSNN_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown HRSNN option(s) {unknown}; known: {sorted(HRSNN_DEFAULTS)}")
    check_table(cfg, RULES, "HRSNN options")
    for i, cluster in enumerate(cfg["clusters"] or []):
        mapping(cluster, f"HRSNN options: clusters[{i}]")
        check_table(cluster, {"fraction": number(0, 1, low_open=True), "tau_mem": distribution,
                              "tau_syn": distribution, "tau_syn_inh": distribution}, f"HRSNN options: clusters[{i}]")
    n, dt = int(cfg["n"]), float(cfg["dt"])
    synapses = n * (cfg["k"] if cfg["connectivity"] == "small_world" else cfg["p"] * n)
    check_memory(64 * synapses + 200 * n, "HRSNN options: n (with k or p)")  # arrays and temporaries
    rng = np.random.default_rng(seed)
    cluster = _cluster_labels(n, cfg["clusters"])
    excitatory = _ei_types(n, cfg["exc_fraction"], rng)
    params = _neuron_params(cfg, cluster, dt, rng)
    ring = _recurrent_graph(cfg, n, rng)
    w = _recurrent_weights(cfg, ring, excitatory, params["tau_mem"], rng)
    ring = ring.with_weights(w)

    order = {"exc": np.flatnonzero(excitatory), "inh": np.flatnonzero(~excitatory)}
    pops = [Population("input", int(cfg["n_input"]), "spike_source")] if cfg["n_input"] else []
    for name, idx in order.items():
        pops.append(Population(name, len(idx), "lif", {k: v[idx] for k, v in params.items()}, cfg["reset"],
                               metadata={"cluster": cluster[idx].tolist(), "ring_position": idx.tolist()}))
    projs = []
    for pre, pre_idx in order.items():
        for post, post_idx in order.items():
            sub = _submatrix(ring, pre_idx, post_idx)
            sub = apply_dale(sub, np.full(sub.n_pre, pre == "exc"))
            projs.append(Projection(f"{pre}->{post}", pre, post, sub, receptor=pre))
    if cfg["n_input"]:
        for post, idx in order.items():
            syn = bernoulli(int(cfg["n_input"]), len(idx), float(cfg["p_input"]),
                            weight=lambda r, m: float(cfg["w_input"]) * r.standard_normal(m), delay=1, seed=rng)
            projs.append(Projection(f"input->{post}", "input", post, syn))
    if cfg["n_readout"]:
        pops.append(Population("readout", int(cfg["n_readout"]), "lif",
                               {"tau_mem": 20e-3, "tau_syn": 0.0, "tau_syn_inh": 0.0, "v_th": 1e9}, "none"))
        for pre, idx in order.items():
            projs.append(Projection(f"{pre}->readout", pre, "readout",
                                    all_to_all(len(idx), int(cfg["n_readout"]), weight=0.0, delay=1)))
    meta = {"builder": "hrsnn", "seed": seed if isinstance(seed, int) else None, "config": dict(cfg)}
    return Network(tuple(pops), tuple(projs), dt, meta)


def _cluster_labels(n: int, clusters) -> np.ndarray:
    """Cluster index of each ring position: contiguous arcs sized by ``fraction``."""
    if not clusters:
        return np.zeros(n, np.int64)
    fractions = np.array([float(c.get("fraction", 1.0 / len(clusters))) for c in clusters])
    if np.any(fractions <= 0):
        raise ValueError(f"cluster fractions must be positive, got {fractions.tolist()}")
    bounds = np.rint(np.cumsum(fractions) / fractions.sum() * n).astype(int)
    return np.searchsorted(bounds, np.arange(n), side="right")


def _ei_types(n: int, exc_fraction: float, rng) -> np.ndarray:
    n_exc = int(round(exc_fraction * n))
    if not 0 < n_exc < n:
        raise ValueError(f"exc_fraction={exc_fraction} leaves no excitatory or no inhibitory neuron (n={n})")
    excitatory = np.zeros(n, bool)
    excitatory[rng.permutation(n)[:n_exc]] = True
    return excitatory


def _neuron_params(cfg, cluster, dt, rng) -> dict:
    n = len(cluster)
    params = {"v_th": float(cfg["v_th"]), "v_reset": float(cfg["v_reset"]), "t_ref": float(cfg["t_ref"])}
    for name in ("tau_mem", "tau_syn", "tau_syn_inh"):
        tau = np.empty(n)
        for c in range(cluster.max() + 1):
            spec = dict(cfg[name])
            if cfg["clusters"] and name in cfg["clusters"][c]:
                spec.update(cfg["clusters"][c][name])
            sel = cluster == c
            tau[sel] = sample_timescales(int(sel.sum()), float(spec["mean"]), spec.get("dist", "gamma"),
                                         cv=float(spec.get("cv", 0.5)), minimum=dt, seed=rng)
        params[name] = tau
    params["bias"] = float(cfg["drive"]) * (1.0 - np.exp(-dt / params["tau_mem"]))
    return {k: np.broadcast_to(v, (n,)).astype(float) for k, v in params.items()}


def _recurrent_graph(cfg, n, rng) -> CSR:
    delay = int(cfg["delay"])
    if cfg["connectivity"] == "small_world":
        return small_world(n, int(cfg["k"]), float(cfg["beta"]), delay=delay, seed=rng)
    if cfg["connectivity"] == "random":
        return bernoulli(n, n, float(cfg["p"]), delay=delay, autapses=False, seed=rng)
    raise ValueError(f"unknown connectivity {cfg['connectivity']!r}; expected 'small_world' or 'random'")


def _recurrent_weights(cfg, ring: CSR, excitatory, tau_mem, rng) -> np.ndarray:
    """``w_exc * jitter * (g if inhibitory) * (1 - a_post) / (1 - a_mean)``: the last factor
    gives every postsynaptic neuron the same PSP area whatever its membrane time constant."""
    cv = float(cfg["weight_cv"])
    jitter = rng.gamma(1.0 / cv**2, cv**2, ring.nnz) if cv > 0 else np.ones(ring.nnz)
    scale = np.where(excitatory[ring.pre_indices()], 1.0, float(cfg["g"]))
    dt = float(cfg["dt"])
    leak = (1.0 - np.exp(-dt / tau_mem)) / (1.0 - np.exp(-dt / float(cfg["tau_mem"]["mean"])))
    return float(cfg["w_exc"]) * scale * jitter * leak[ring.indices]


def _submatrix(csr: CSR, pre_idx: np.ndarray, post_idx: np.ndarray) -> CSR:
    """Synapses from neurons ``pre_idx`` to ``post_idx``, renumbered locally."""
    pre_local = np.full(csr.n_pre, -1)
    pre_local[pre_idx] = np.arange(len(pre_idx))
    post_local = np.full(csr.n_post, -1)
    post_local[post_idx] = np.arange(len(post_idx))
    pre, post = pre_local[csr.pre_indices()], post_local[csr.indices]
    keep = (pre >= 0) & (post >= 0)
    return from_coo(pre[keep], post[keep], csr.weights[keep], csr.delays[keep], len(pre_idx), len(post_idx))
