"""Baseline selections at a given final size, for the same code path as LNP.

Both return ``(neuron keep masks per recurrent population, recurrent synapse keep mask)`` with
exactly ``n_keep[pop]`` neurons per population and ``n_synapses`` synapses among the kept
neurons; weights are not changed (no reweighting).

* **random**: neurons uniformly at random per population, then synapses uniformly at random.
* **activity** (activity-based pruning of the dense network, as in the LNP paper's baseline):
  keep the most active neurons per population (mean rate on the task's input), then the
  synapses that carry the most activity, ``rate_pre * |w|``.
"""

from __future__ import annotations

import numpy as np

from neuro.lnp.graph import Recurrent


def _synapses_between(rec: Recurrent, neurons: dict) -> np.ndarray:
    alive = np.concatenate([neurons[p] for p in rec.populations])
    return alive[rec.pre] & alive[rec.post]


def _take(candidates: np.ndarray, order: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` candidates in ``order``."""
    keep = np.zeros(len(candidates), bool)
    chosen = order[candidates[order]][:n]
    keep[chosen] = True
    return keep


def _check(rec: Recurrent, n_keep: dict, n_synapses: int):
    for p, (lo, hi) in rec.layout.items():
        if not 1 <= n_keep.get(p, 0) <= hi - lo:
            raise ValueError(f"n_keep[{p!r}] must be in 1..{hi - lo}, got {n_keep.get(p)}")
    if n_synapses < 0:
        raise ValueError(f"n_synapses must be >= 0, got {n_synapses}")


def random_selection(rec: Recurrent, n_keep: dict, n_synapses: int, seed=None):
    """Uniformly random neurons and synapses at the given size."""
    _check(rec, n_keep, n_synapses)
    rng = np.random.default_rng(seed)
    neurons = {}
    for p, (lo, hi) in rec.layout.items():
        mask = np.zeros(hi - lo, bool)
        mask[rng.choice(hi - lo, n_keep[p], replace=False)] = True
        neurons[p] = mask
    return neurons, _take(_synapses_between(rec, neurons), rng.permutation(rec.n_synapses), n_synapses)


def activity_selection(rec: Recurrent, rates: np.ndarray, n_keep: dict, n_synapses: int):
    """Most active neurons per population, then the synapses with the largest ``rate_pre * |w|``."""
    _check(rec, n_keep, n_synapses)
    rates = np.asarray(rates, float)
    if rates.shape != (rec.n,):
        raise ValueError(f"rates need one value per recurrent neuron ({rec.n}), got shape {rates.shape}")
    neurons = {}
    for p, (lo, hi) in rec.layout.items():
        mask = np.zeros(hi - lo, bool)
        mask[np.argsort(-rates[lo:hi], kind="stable")[:n_keep[p]]] = True
        neurons[p] = mask
    carried = rates[rec.pre] * np.abs(rec.weight)
    return neurons, _take(_synapses_between(rec, neurons), np.argsort(-carried, kind="stable"), n_synapses)
