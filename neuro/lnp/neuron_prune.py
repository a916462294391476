"""Neuron pruning on the sparsified graph (step 2 of LNP) and per-population selection.

Two scores (both our reconstruction; the paper's criterion is not verified, see ``docs/lnp.md``);
the highest-scoring ``keep_fraction`` of every population is kept, so the E/I ratio is preserved.

* ``lyapunov`` (default): minus the participation of neuron ``i`` in the ``k`` leading Lyapunov
  vectors of the sparsified network, ``P_i = sum_{j<k} <q_j[u_i]^2 + q_j[e_i]^2 + q_j[h_i]^2>_t``
  (QR method, :mod:`neuro.lnp.lyapunov`, same probe input as step 3): the neurons that carry the
  most unstable directions go first, so the kept network needs less stabilisation.
* ``betweenness``: the betweenness centrality of each neuron in the directed graph of kept
  synapses, with edge length ``1 / |w|`` (strong synapses are short), estimated from ``pivots``
  seeded source neurons (Brandes 2008, networkx); ties (e.g. zero betweenness) are broken by the
  total absolute synaptic strength in + out.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from neuro.lnp.graph import Recurrent, recurrent_of
from neuro.lnp.lyapunov import lyapunov_spectrum
from neuro.network import Network


def betweenness_scores(rec: Recurrent, keep, weight, pivots: int = 64, seed=None) -> np.ndarray:
    """Betweenness (+ a strength tie-break) of every recurrent neuron on the kept synapses."""
    keep = np.asarray(keep, bool)
    weight = np.asarray(weight, float)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(rec.n))
    w = np.abs(weight[keep])
    graph.add_weighted_edges_from(zip(rec.pre[keep].tolist(), rec.post[keep].tolist(), (1.0 / w).tolist()),
                                  weight="length")
    rng = np.random.default_rng(seed)
    k = min(int(pivots), rec.n)
    central = nx.betweenness_centrality(graph, k=k, weight="length", seed=int(rng.integers(2**31)))
    between = np.array([central[i] for i in range(rec.n)])
    strength = np.bincount(rec.pre[keep], w, rec.n) + np.bincount(rec.post[keep], w, rec.n)
    return between + 1e-9 * strength / max(strength.max(), 1e-12)


def lyapunov_participation(net: Network, k: int = 5, **lyapunov) -> np.ndarray:
    """``P_i``: time-averaged squared weight of recurrent neuron ``i`` in the ``k`` leading Lyapunov vectors."""
    n = recurrent_of(net).n
    vectors = lyapunov_spectrum(net, k=k, **lyapunov).vectors  # [dim, k]: (u, i_exc, i_inh, in flight...) blocks
    return vectors[: 3 * n].reshape(3, n, -1).sum(axis=(0, 2))


def select_top(rec: Recurrent, scores, keep_fraction: float) -> dict:
    """Boolean keep mask per recurrent population: its ``floor(keep_fraction * size)`` (>= 1) best-scoring neurons."""
    if not 0 < keep_fraction <= 1:
        raise ValueError(f"neuron keep_fraction must be in (0, 1], got {keep_fraction}")
    scores = np.asarray(scores, float)
    out = {}
    for name, (lo, hi) in rec.layout.items():
        n_keep = max(1, int(np.floor(keep_fraction * (hi - lo) + 1e-9)))
        mask = np.zeros(hi - lo, bool)
        mask[np.argsort(-scores[lo:hi], kind="stable")[:n_keep]] = True
        out[name] = mask
    return out
