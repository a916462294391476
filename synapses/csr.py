"""Compressed sparse row synapse storage: one row per presynaptic neuron.

Row ``j`` lists the synapses of presynaptic neuron ``j``:
``indices[indptr[j]:indptr[j+1]]`` are postsynaptic neurons with matching
``weights`` and integer ``delays`` (in time steps). Dense matrices follow the
torch / Lava / NIR convention ``W[post, pre]`` (``y = W x``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import njit


@dataclass(frozen=True, eq=False)
class CSR:
    """Validated CSR connectivity from ``n_pre`` to ``n_post`` neurons."""

    n_pre: int
    n_post: int
    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    delays: np.ndarray

    def __post_init__(self):
        n_pre, n_post = _size(self.n_pre, "n_pre"), _size(self.n_post, "n_post")
        indptr = as_index(self.indptr, "indptr").astype(np.int64, copy=False)
        indices = as_index(self.indices, "indices")
        nnz = len(indices)
        weights = np.broadcast_to(np.asarray(self.weights, dtype=np.float64), (nnz,)).copy()
        delays_in = np.asarray(self.delays)
        if delays_in.size and not np.all(np.isfinite(delays_in)) or np.any(delays_in != np.round(delays_in)):
            raise ValueError("delays must be whole numbers of time steps")
        delays = np.broadcast_to(delays_in.astype(np.int64), (nnz,)).copy()
        if indptr.shape != (n_pre + 1,) or indptr[0] != 0 or indptr[-1] != nnz or np.any(np.diff(indptr) < 0):
            raise ValueError(f"indptr must be non-decreasing, of length n_pre+1={n_pre + 1}, "
                             f"from 0 to nnz={nnz}")
        if nnz and (indices.min() < 0 or indices.max() >= n_post):
            bad = int(np.flatnonzero((indices < 0) | (indices >= n_post))[0])
            raise ValueError(f"synapse {bad} targets neuron {indices[bad]}, outside 0..{n_post - 1}")
        indices = indices.astype(np.int32 if n_post < 2**31 else np.int64, copy=False)  # after the range check
        if not np.all(np.isfinite(weights)):
            bad = int(np.flatnonzero(~np.isfinite(weights))[0])
            raise ValueError(f"weight of synapse {bad} is {weights[bad]!r} (NaN/inf weights are not allowed)")
        if nnz and delays.min() < 0:
            raise ValueError(f"delays must be >= 0 steps, got {delays.min()}")
        for name, value in (("n_pre", n_pre), ("n_post", n_post), ("indptr", indptr), ("indices", indices),
                            ("weights", weights), ("delays", delays)):
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def nnz(self) -> int:
        return len(self.indices)

    def pre_indices(self) -> np.ndarray:
        """Presynaptic neuron of every synapse (the expanded ``indptr``)."""
        return np.repeat(np.arange(self.n_pre, dtype=np.int64), np.diff(self.indptr))

    def out_degree(self) -> np.ndarray:
        return np.diff(self.indptr)

    def in_degree(self) -> np.ndarray:
        return np.bincount(self.indices, minlength=self.n_post)

    def to_scipy(self) -> sp.csr_matrix:
        """Weights as a ``scipy.sparse`` matrix of shape ``(n_post, n_pre)``."""
        pre_major = sp.csr_matrix((self.weights, self.indices, self.indptr), shape=(self.n_pre, self.n_post))
        return pre_major.T.tocsr()

    def to_dense(self) -> np.ndarray:
        """Dense ``W[post, pre]`` (parallel synapses are summed)."""
        return self.to_scipy().toarray()

    def with_weights(self, weights) -> CSR:
        return CSR(self.n_pre, self.n_post, self.indptr, self.indices, weights, self.delays)

    def select(self, keep: np.ndarray) -> CSR:
        """The synapses where boolean ``keep`` is true (same sizes)."""
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (self.nnz,):
            raise ValueError(f"keep mask has shape {keep.shape}, expected ({self.nnz},)")
        counts = np.bincount(self.pre_indices()[keep], minlength=self.n_pre)  # empty trailing rows are fine
        indptr = np.concatenate([[0], np.cumsum(counts)])
        return CSR(self.n_pre, self.n_post, indptr, self.indices[keep], self.weights[keep], self.delays[keep])


def _size(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)) \
            or not np.isfinite(value) or value != int(value) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    return int(value)


def as_index(values, name: str) -> np.ndarray:
    """``values`` as int64 indices: integers, or floats that are whole numbers; anything else is refused."""
    a = np.asarray(values)
    if a.size == 0:
        return a.astype(np.int64).reshape(-1)
    if a.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be integers, got {a.dtype} values")
    if a.dtype.kind == "f" and not (np.all(np.isfinite(a)) and np.all(a == np.round(a))):
        bad = int(np.flatnonzero(~np.isfinite(a) | (a != np.round(a)))[0])
        raise ValueError(f"{name} must be whole numbers, got {a.flat[bad]!r} at position {bad}")
    if a.dtype.kind == "i":
        return a  # no copy; callers range-check, then cast
    if np.abs(a).max() >= 2**63:
        raise ValueError(f"{name} holds {a.max()!r}, beyond the int64 range")
    return a.astype(np.int64)


def _is_sorted(a: np.ndarray) -> bool:
    return bool(a.size < 2 or np.all(a[1:] >= a[:-1]))


@njit(cache=True)
def counting_order(keys, n_keys):
    """Stable permutation sorting ``keys`` (integers in ``0..n_keys-1``), in linear time."""
    start = np.zeros(n_keys + 1, np.int64)
    for k in keys:
        start[k + 1] += 1
    for i in range(n_keys):
        start[i + 1] += start[i]
    order = np.empty(keys.size, np.int64)
    for i in range(keys.size):
        order[start[keys[i]]] = i
        start[keys[i]] += 1
    return order


def from_coo(pre, post, weights, delays, n_pre: int, n_post: int) -> CSR:
    """CSR from synapse lists; synapses are sorted by (pre, post)."""
    pre, post = (as_index(a, f"{end}synaptic indices").astype(np.int64, copy=False)
                 for a, end in ((pre, "pre"), (post, "post")))
    if pre.shape != post.shape:
        raise ValueError(f"pre and post lists differ in length: {pre.shape} vs {post.shape}")
    if pre.size and (pre.min() < 0 or pre.max() >= n_pre):
        raise ValueError(f"presynaptic index outside 0..{n_pre - 1}")
    weights = np.broadcast_to(np.asarray(weights, dtype=np.float64), pre.shape)
    delays = np.broadcast_to(np.asarray(delays), pre.shape)
    key = pre * max(n_post, 1) + post
    if not _is_sorted(key):  # builders emit lists sorted by (pre, post) or by (post, pre)
        order = counting_order(pre, n_pre)  # O(nnz); enough when the lists were sorted by post
        if not _is_sorted(key[order]):
            order = np.argsort(key, kind="stable")
        post, weights, delays = post[order], weights[order], delays[order]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(pre, minlength=n_pre))])
    return CSR(n_pre, n_post, indptr, post, weights, delays)


def from_dense(matrix, delays=1, keep_zeros: bool = False) -> CSR:
    """CSR from a dense ``W[post, pre]``; zero entries are not synapses unless ``keep_zeros``."""
    w = np.asarray(matrix, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"weight matrix must be 2-D [post, pre], got shape {w.shape}")
    post, pre = np.nonzero(np.ones_like(w, dtype=bool) if keep_zeros else w)
    d = np.asarray(delays)
    d = d[post, pre] if d.ndim == 2 else d
    return from_coo(pre, post, w[post, pre], d, w.shape[1], w.shape[0])


def from_scipy(matrix, delays=1) -> CSR:
    """CSR from a ``scipy.sparse`` matrix of shape ``(n_post, n_pre)`` (stored entries are synapses)."""
    coo = sp.coo_matrix(matrix)
    return from_coo(coo.col, coo.row, coo.data, delays, coo.shape[1], coo.shape[0])
