"""Eigenvector delocalisation of a pruned recurrent network [reconstruction].

A summary of the LNP paper says the pruning keeps the network stable *and its eigenvectors
delocalised*; the paper's exact step is not known to us. This module measures localisation and
offers one simple, deterministic step that lowers it at a fixed graph (no synapse added or removed,
every weight keeps its sign, so Dale's law holds).

**Localisation.** The inverse participation ratio of a vector ``v`` (real or complex)::

    IPR(v) = sum_i |v_i|^4 / (sum_i |v_i|^2)^2      in [1/n, 1]

is ``1/n`` when ``v`` is spread evenly over the ``n`` neurons and ``1`` when it sits on one; a
random Gaussian vector has ``IPR ~ 3/n`` (real) or ``~ 2/n`` (complex). The localisation of a
network is the IPR of the right eigenvectors of its recurrent matrix ``M`` that belong to the ``k``
eigenvalues of largest modulus (``np.linalg.eig``; a conjugate pair has equal IPRs), averaged.
``M`` is ``W = rec.dense()`` (``W[post, pre]``, inhibitory weights negative), or with
``gain=True`` the effective coupling ``J_ij = W_ij / (1 - a_i)``, ``a_i = exp(-dt/tau_mem,i)``:
the HRSNN builder scales the weights onto neuron ``i`` by ``1 - a_i`` so that every neuron sees
the same PSP area, so in ``W`` the fast neurons look like hubs by design, in ``J`` they do not.

**Delocalisation** (``delocalize``; our design). From ``W v = lambda v``,
``v_i = sum_j W_ij v_j / lambda``: a leading right eigenvector piles up on neurons with an unusually
large in-strength ``s_i = sum_j |M_ij|`` (hubs). Each round:

1. compute the ``k`` leading eigenvectors; stop if their mean IPR is ``<= target * (1 + tol)``;
2. the neuron mass ``m_i = sum_{j<k} |v_j[i]|^2`` (unit-norm columns); among the neurons whose
   in-strength exceeds the median in-strength ``s_med(pop)`` of their population, take the
   ``hubs`` fraction of ``n`` with the largest mass;
3. multiply every incoming recurrent weight of such a neuron by ``(s_med(pop) / s_i) ** step``
   (a geometric step of ``step`` towards the median; the factor is in ``(0, 1)``).

It ends after ``rounds`` rounds or when no hub is left. Weights only ever shrink by a positive
factor, so signs and the synapse count are kept, and no neuron's in-strength goes below its
population's median. The default ``target`` is ``3 / n``, a random vector's IPR.
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from neuro.lnp.graph import Recurrent, recurrent_of, with_synapses
from neuro.network import Network
from neurons import lif


def inverse_participation(vectors) -> np.ndarray:
    """IPR ``sum |v_i|^4 / (sum |v_i|^2)^2`` of each column of ``vectors`` (a 1-D input is one column)."""
    v = np.asarray(vectors)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2 or v.shape[0] == 0:
        raise ValueError(f"vectors must be a non-empty 1-D or 2-D array (columns), got shape {v.shape}")
    p = np.abs(v) ** 2
    norm = p.sum(axis=0)
    if np.any(norm == 0):
        raise ValueError("the IPR of a zero vector is undefined")
    return (p**2).sum(axis=0) / norm**2


def _matrix(rec: Recurrent, weight, gain: bool) -> np.ndarray:
    m = rec.dense(weight=weight)
    return m / (1.0 - rec.coef[lif.A_MEM])[:, None] if gain else m


def _leading(m: np.ndarray, k: int):
    """Eigenvalues and right eigenvectors (columns) of the ``k`` eigenvalues of largest modulus;
    ties broken by the imaginary part so the order is deterministic."""
    with threadpool_limits(1):
        values, vectors = np.linalg.eig(m)
    order = np.lexsort((-values.imag, -np.round(np.abs(values), 12)))[:k]
    return values[order], vectors[:, order]


def _check_k(k, n: int) -> None:
    if not (isinstance(k, (int, np.integer)) and 1 <= k <= n):
        raise ValueError(f"k (leading eigenvectors) must be an integer in 1..{n} (neurons), got {k!r}")


def localisation(rec: Recurrent, k: int = 5, gain: bool = False, weight=None) -> dict:
    """Localisation of the ``k`` leading eigenvectors of ``rec``'s recurrent matrix (module docstring).

    Returns ``{'n', 'k', 'ipr' (per vector), 'mean_ipr', 'n_ipr' (= n * mean IPR: 1 fully spread,
    n on one neuron; comparable across sizes), 'eigenvalues'}``. ``weight`` overrides ``rec.weight``.
    """
    _check_k(k, rec.n)
    values, vectors = _leading(_matrix(rec, weight, gain), k)
    ipr = inverse_participation(vectors)
    return {"n": rec.n, "k": int(k), "ipr": ipr, "mean_ipr": float(ipr.mean()),
            "n_ipr": float(rec.n * ipr.mean()), "eigenvalues": values}


def delocalize(net: Network, k: int = 5, target: float | None = None, tol: float = 0.1, rounds: int = 20,
               step: float = 0.5, hubs: float = 0.05, gain: bool = False) -> tuple[Network, dict]:
    """Lower the IPR of the ``k`` leading eigenvectors by shrinking the in-weights of hub neurons
    (module docstring). ``target`` is a mean IPR (default ``3 / n``); the step stops once the mean
    IPR is ``<= target * (1 + tol)`` or after ``rounds`` rounds.

    Returns ``(network, info)`` with ``info = {'ipr_before', 'ipr_after', 'n_ipr_before', 'n_ipr_after',
    'target', 'rounds', 'reached', 'neurons_rescaled', 'min_factor', 'strength_change'}`` where
    ``neurons_rescaled`` counts distinct neurons touched, ``min_factor`` is the smallest cumulative
    factor on a synapse and ``strength_change`` the relative change of ``sum |w|``.
    """
    rec = recurrent_of(net)
    n = rec.n
    _check_k(k, n)
    if target is None:
        target = 3.0 / n
    if not (np.isfinite(target) and 0 < target <= 1):
        raise ValueError(f"target (a mean IPR) must be in (0, 1], got {target!r}")
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    if not (isinstance(rounds, (int, np.integer)) and rounds >= 0):
        raise ValueError(f"rounds must be an integer >= 0, got {rounds!r}")
    if not 0 < step <= 1:
        raise ValueError(f"step (fraction of the way to the median, in log) must be in (0, 1], got {step!r}")
    if not 0 < hubs <= 1:
        raise ValueError(f"hubs (fraction of neurons rescaled per round) must be in (0, 1], got {hubs!r}")
    per_round = max(1, int(round(hubs * n)))
    population = np.empty(n, np.int64)
    for i, (lo, hi) in enumerate(rec.layout.values()):
        population[lo:hi] = i
    factor = np.ones(n)  # cumulative factor on the in-weights of each neuron
    before = localisation(rec, k, gain)
    ipr, done, reached = before["mean_ipr"], 0, before["mean_ipr"] <= target * (1 + tol)
    while not reached and done < rounds:
        weight = rec.weight * factor[rec.post]
        m = _matrix(rec, weight, gain)
        _, vectors = _leading(m, k)
        mass = (np.abs(vectors) ** 2 / (np.abs(vectors) ** 2).sum(axis=0)).sum(axis=1)
        strength = np.abs(m).sum(axis=1)
        median = np.array([np.median(strength[population == p]) for p in range(len(rec.layout))])[population]
        candidates = np.flatnonzero(strength > median * (1 + 1e-9))
        if not len(candidates):
            break
        chosen = candidates[np.lexsort((candidates, -mass[candidates]))][:per_round]
        factor[chosen] *= (median[chosen] / strength[chosen]) ** step
        done += 1
        ipr = localisation(rec, k, gain, weight=rec.weight * factor[rec.post])["mean_ipr"]
        reached = ipr <= target * (1 + tol)
    weight = rec.weight * factor[rec.post]
    out = with_synapses(net, rec, np.ones(rec.n_synapses, bool), weight)
    total = np.abs(rec.weight).sum()
    info = {"ipr_before": before["mean_ipr"], "ipr_after": float(ipr), "n_ipr_before": before["n_ipr"],
            "n_ipr_after": float(n * ipr), "target": float(target), "rounds": done, "reached": bool(reached),
            "neurons_rescaled": int(np.count_nonzero(factor < 1)),
            "min_factor": float(factor[rec.post].min()) if rec.n_synapses else 1.0,
            "strength_change": float(np.abs(weight).sum() / total - 1) if total > 0 else 0.0}
    return out, info
