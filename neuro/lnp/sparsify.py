"""Noise-based synapse sparsification (step 1 of LNP).

After Moore & Chaudhuri (NeurIPS 2020, "Using noise to probe recurrent neural network
structure and prune synapses"), as read in ``shared/research/snn_papers.md`` section 3:

1. Linearise the recurrent network as the noise-driven rate model (our reconstruction)::

       x_{t+1} = A x_t + xi_t,   A = diag(a) + diag(1 - a) * kappa * G / rho(G),
       G[i, j] = w_ij / (1 - a_syn,i)    (synaptic DC gain; a_syn,i of the receptor used)

   with ``a = exp(-dt / tau_mem)``, ``kappa`` = ``gain`` < 1 (``rho`` = spectral radius; kappa is
   lowered until ``rho(A) < 1``) and white noise of covariance ``Sigma = diag(1 - a)``. Its stationary
   covariance solves the discrete Lyapunov equation ``C = A C A^T + Sigma``.
2. Score each synapse ``j -> i`` by ``s_ij = |w_ij| (C_ii + C_jj - 2 sgn(w_ij) C_ij)``
   (an effective-resistance / Spielman-Srivastava importance: the noise variance of
   ``x_i - sgn(w) x_j`` across the synapse).
3. Keep it with probability ``p_ij = min(1, rho_s * s_ij)``, ``rho_s`` chosen (bisection) so that
   ``sum p_ij`` equals the target number of synapses; kept weights become ``w_ij / p_ij``
   (unbiased in expectation). Signs, hence Dale's law, are preserved.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_discrete_lyapunov
from threadpoolctl import threadpool_limits

from neuro.lnp.graph import Recurrent
from neurons import lif


def linearised_dynamics(rec: Recurrent, gain: float = 0.9) -> np.ndarray:
    """The matrix ``A`` of the noise-driven linear rate model (module docstring)."""
    if not 0 < gain < 1:
        raise ValueError(f"linearisation gain must be in (0, 1), got {gain}")
    a = rec.coef[lif.A_MEM]
    a_syn = np.where(rec.inhibitory_receptor, rec.coef[lif.A_INH][rec.post], rec.coef[lif.A_SYN][rec.post])
    g = rec.dense(weight=rec.weight / np.maximum(1.0 - a_syn, 1e-12))
    rho_g = np.max(np.abs(np.linalg.eigvals(g))) if rec.n_synapses else 0.0
    g = g / rho_g if rho_g > 0 else g
    kappa = gain
    while True:
        m = np.diag(a) + (1.0 - a)[:, None] * kappa * g
        if np.max(np.abs(np.linalg.eigvals(m))) < 1.0:
            return m
        kappa *= 0.8


def noise_covariance(rec: Recurrent, gain: float = 0.9) -> np.ndarray:
    """Stationary covariance ``C`` of the linearised network driven by white noise."""
    with threadpool_limits(1):  # a few hundred neurons: threads only contend on a shared machine
        a_mat = linearised_dynamics(rec, gain)
        return solve_discrete_lyapunov(a_mat, np.diag(1.0 - rec.coef[lif.A_MEM]))


def synapse_scores(rec: Recurrent, cov: np.ndarray) -> np.ndarray:
    """``|w_ij| (C_ii + C_jj - 2 sgn(w_ij) C_ij)`` for every recurrent synapse ``j -> i``."""
    i, j, w = rec.post, rec.pre, rec.weight
    d = np.diag(cov)
    return np.abs(w) * np.maximum(d[i] + d[j] - 2.0 * np.sign(w) * cov[i, j], 0.0)


def sampling_probabilities(scores: np.ndarray, target: float) -> np.ndarray:
    """``p = min(1, rho * scores)`` with ``rho`` such that ``sum p = target`` (bisection)."""
    scores = np.asarray(scores, float)
    if not 0 < target <= np.count_nonzero(scores):
        raise ValueError(f"target number of synapses must be in (0, {np.count_nonzero(scores)}], got {target}")
    lo, hi = 0.0, 1.0
    while np.minimum(1.0, hi * scores).sum() < target:
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.minimum(1.0, mid * scores).sum() < target else (lo, mid)
    return np.minimum(1.0, hi * scores)


def sparsify_synapses(rec: Recurrent, keep_fraction: float, gain: float = 0.9, seed=None):
    """Sample synapses by their noise score and reweight the kept ones.

    Returns ``(keep [n_synapses] bool, new weights [n_synapses], probabilities)``.
    """
    if not 0 < keep_fraction <= 1:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    rng = np.random.default_rng(seed)
    scores = synapse_scores(rec, noise_covariance(rec, gain))
    p = sampling_probabilities(scores, keep_fraction * np.count_nonzero(scores))
    keep = rng.random(len(p)) < p
    weight = np.where(keep, rec.weight / np.maximum(p, 1e-12), rec.weight)
    return keep, weight, p
