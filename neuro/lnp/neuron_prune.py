"""Neuron pruning on the sparsified graph (step 2 of LNP) and per-population selection.

Score (our reconstruction; the paper's centrality is not verified, see ``docs/lnp.md``): the
betweenness centrality of each neuron in the directed graph of kept synapses, with edge length
``1 / |w|`` (strong synapses are short), estimated from ``pivots`` seeded source neurons
(Brandes 2008, networkx). Ties (e.g. zero betweenness) are broken by the total absolute
synaptic strength in + out. The highest-scoring ``keep_fraction`` of every population is kept,
so the E/I ratio is preserved.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from neuro.lnp.graph import Recurrent


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
