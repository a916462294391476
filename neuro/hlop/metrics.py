"""Continual-learning metrics of Lopez-Paz & Ranzato (NeurIPS 2017, "Gradient Episodic Memory").

``A[i, j]`` is the test accuracy on task ``j`` after training on tasks
``0..i`` (``T x T``; entries above the diagonal measure tasks not yet seen),
and ``b[j]`` the accuracy of the model at initialisation on task ``j``::

    ACC = (1/T)     sum_{j}         A[T-1, j]
    BWT = (1/(T-1)) sum_{j < T-1}   A[T-1, j] - A[j, j]        (forgetting is negative)
    FWT = (1/(T-1)) sum_{j >= 1}    A[j-1, j] - b[j]
"""

from __future__ import annotations

import numpy as np


def continual_metrics(matrix, initial=None) -> dict[str, float]:
    """ACC, BWT and (given ``initial`` = ``b``) FWT of an accuracy matrix (module docstring)."""
    a = np.asarray(matrix, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 1:
        raise ValueError(f"accuracy matrix must be square T x T with T >= 1, got shape {a.shape}")
    t = a.shape[0]
    out = {"ACC": float(a[-1].mean())}
    out["BWT"] = float(np.mean(a[-1, :-1] - np.diag(a)[:-1])) if t > 1 else 0.0
    if initial is not None:
        b = np.asarray(initial, dtype=np.float64)
        if b.shape != (t,):
            raise ValueError(f"initial accuracies must have shape ({t},), got {b.shape}")
        out["FWT"] = float(np.mean(np.diag(a, 1) - b[1:])) if t > 1 else 0.0
    return out
