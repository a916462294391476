"""Seeded connectivity builders returning :class:`synapses.csr.CSR`.

``weight`` and ``delay`` accept a scalar, an array with one value per synapse,
or a callable ``f(rng, n) -> array`` that draws ``n`` values. ``seed`` is an
int, ``None`` or a ``numpy.random.Generator``; the same seed gives the same
synapses.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from synapses.csr import CSR, from_coo


def _values(spec, rng: np.random.Generator, n: int) -> np.ndarray:
    value = spec(rng, n) if callable(spec) else spec
    value = np.asarray(value)
    if value.ndim and value.shape != (n,):
        raise ValueError(f"expected a scalar or {n} values, got shape {value.shape}")
    return np.broadcast_to(value, (n,))


@njit(cache=True)
def _sample_rows(counts, n_cols, seed, exclude):
    """For row r, ``counts[r]`` distinct sorted columns of ``0..n_cols-1`` (Floyd's algorithm).

    If ``exclude[r] >= 0`` that column is never chosen (no autapses).
    """
    np.random.seed(seed)
    out = np.empty(counts.sum(), np.int64)
    taken = np.zeros(n_cols, np.bool_)
    pos = 0
    for r in range(len(counts)):
        skip = exclude[r]
        m = n_cols - 1 if skip >= 0 else n_cols
        start = pos
        for j in range(m - counts[r], m):
            c = np.random.randint(0, j + 1)
            if taken[c]:
                c = j
            taken[c] = True
            out[pos] = c
            pos += 1
        row = np.sort(out[start:pos])
        for q in range(row.size):
            taken[row[q]] = False
            out[start + q] = row[q] + 1 if (skip >= 0 and row[q] >= skip) else row[q]
    return out


def _build(rows_are_pre, counts, n_rows, n_cols, rng, weight, delay, autapses):
    exclude = np.full(n_rows, -1, np.int64) if autapses else np.arange(n_rows, dtype=np.int64)
    cols = _sample_rows(counts.astype(np.int64), n_cols, int(rng.integers(2**62)), exclude)
    rows = np.repeat(np.arange(n_rows), counts)
    pre, post = (rows, cols) if rows_are_pre else (cols, rows)
    n_pre, n_post = (n_rows, n_cols) if rows_are_pre else (n_cols, n_rows)
    return _with_drawn_values(from_coo(pre, post, 0.0, 0, n_pre, n_post), rng, weight, delay)


def _with_drawn_values(csr: CSR, rng, weight, delay) -> CSR:
    weights = _values(weight, rng, csr.nnz)
    return CSR(csr.n_pre, csr.n_post, csr.indptr, csr.indices, weights, _values(delay, rng, csr.nnz))


def _check_square(n_pre, n_post, autapses):
    if not autapses and n_pre != n_post:
        raise ValueError("autapses=False needs a square (recurrent) connection: n_pre == n_post")


def bernoulli(n_pre: int, n_post: int, p: float, weight=1.0, delay=1, *, autapses: bool = True,
              seed=None) -> CSR:
    """Each possible synapse exists independently with probability ``p``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"connection probability must be in [0, 1], got {p}")
    _check_square(n_pre, n_post, autapses)
    rng = np.random.default_rng(seed)
    counts = rng.binomial(n_post - (0 if autapses else 1), p, size=n_pre)
    return _build(True, counts, n_pre, n_post, rng, weight, delay, autapses)


def fixed_indegree(n_pre: int, n_post: int, k: int, weight=1.0, delay=1, *, autapses: bool = True,
                   seed=None) -> CSR:
    """Every postsynaptic neuron receives exactly ``k`` synapses from distinct presynaptic neurons."""
    _check_square(n_pre, n_post, autapses)
    available = n_pre - (0 if autapses else 1)
    if not 0 <= k <= available:
        raise ValueError(f"in-degree k={k} impossible with {available} available presynaptic neurons")
    rng = np.random.default_rng(seed)
    counts = np.full(n_post, k, np.int64)
    return _build(False, counts, n_post, n_pre, rng, weight, delay, autapses)


def all_to_all(n_pre: int, n_post: int, weight=1.0, delay=1, *, autapses: bool = True, seed=None) -> CSR:
    """Every presynaptic neuron connects to every postsynaptic neuron."""
    _check_square(n_pre, n_post, autapses)
    pre, post = np.divmod(np.arange(n_pre * n_post), n_post)
    if not autapses:
        keep = pre != post
        pre, post = pre[keep], post[keep]
    return _with_drawn_values(from_coo(pre, post, 0.0, 0, n_pre, n_post), np.random.default_rng(seed), weight, delay)


def small_world(n: int, k: int, beta: float, weight=1.0, delay=1, *, seed=None) -> CSR:
    """Directed Watts-Strogatz graph: a ring where each neuron projects to its ``k`` nearest
    neighbours (``k/2`` on each side), each synapse rewired with probability ``beta`` to a
    uniformly chosen new target (no autapses, no duplicates)."""
    if k % 2 or not 0 <= k < n:
        raise ValueError(f"k must be even and 0 <= k < n={n}, got {k}")
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"rewiring probability beta must be in [0, 1], got {beta}")
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([np.arange(1, k // 2 + 1), -np.arange(1, k // 2 + 1)])
    targets = (np.arange(n)[:, None] + offsets[None, :]) % n
    rewire = rng.random(targets.shape) < beta
    for i in np.flatnonzero(rewire.any(axis=1)):
        row = targets[i]
        taken = set(row.tolist()) | {i}
        for j in np.flatnonzero(rewire[i]):
            free = n - len(taken)
            if free <= 0:
                break
            new = int(rng.integers(n))
            while new in taken:
                new = int(rng.integers(n))
            taken.discard(int(row[j]))
            taken.add(new)
            row[j] = new
    pre = np.repeat(np.arange(n), k)
    return _with_drawn_values(from_coo(pre, targets.ravel(), 0.0, 0, n, n), rng, weight, delay)


def apply_dale(csr: CSR, excitatory) -> CSR:
    """Signs by presynaptic type (Dale's law): ``|w|`` from excitatory, ``-|w|`` from inhibitory."""
    excitatory = np.asarray(excitatory, dtype=bool)
    if excitatory.shape != (csr.n_pre,):
        raise ValueError(f"excitatory mask has shape {excitatory.shape}, expected ({csr.n_pre},)")
    sign = np.where(excitatory[csr.pre_indices()], 1.0, -1.0)
    return csr.with_weights(sign * np.abs(csr.weights))


def obeys_dale(csr: CSR, excitatory) -> bool:
    """True when every synapse of an excitatory neuron is >= 0 and of an inhibitory one <= 0."""
    excitatory = np.asarray(excitatory, dtype=bool)[csr.pre_indices()]
    return bool(np.all(csr.weights[excitatory] >= 0) and np.all(csr.weights[~excitatory] <= 0))
