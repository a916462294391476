"""The lateral circuit of HLOP: Hebbian/anti-Hebbian (Oja subspace) learning of a layer's input subspace.

For a layer whose presynaptic activity is ``x`` (``n`` values), ``m`` lateral
neurons hold the weights ``H`` (``m x n``) and run, per sample::

    y     = H x                    lateral neurons (quantised if spiking, below)
    x_hat = H^T y                  recurrent feedback to the presynaptic neurons
    r     = x - x_hat              the circuit's output: the residual

``H`` learns by the Oja subspace rule, averaged over a batch of ``B`` samples::

    dH = clip((1/B) sum_b y (x - H^T y)^T, -c, c)        Hebbian y x^T, anti-Hebbian -y y^T H
    M  <- mu M + (1 - mu) dH ;   H <- H + eta M           momentum (mu = 0.9), c = 10

repeated ``iterations`` times per batch, with the rows of past tasks frozen, so
the new rows converge to an orthonormal basis of the principal subspace of
the part of ``x`` that the old rows do not explain. Spiking lateral neurons
report ``y`` as a spike count over ``spike_steps`` steps of a neuron with
range ``+-spike_scale``: ``y <- s round(T_h clip(y, -s, s) / s) / T_h``.

Per task (Xiao et al., ICLR 2024): :meth:`LateralCircuit.add_subspace` appends
``k`` rows before the task, Hebbian updates run on every training batch, and
:meth:`LateralCircuit.merge` freezes them after it. Safeguard (found when a
block had more rows than the residual had dimensions: the weak rows stayed
non-orthogonal and ``I - H^T H`` amplified gradients): new rows start
orthogonal to the old ones, and at merge they are Gram-Schmidt
orthonormalised against the old ones, so the frozen ``H`` always satisfies
``H H^T = I`` (asserted) and ``H^T H`` is an orthogonal projector.
"""

from __future__ import annotations

import math

import torch
from torch import nn

ORTHONORMAL_TOL = 1e-4
DIVERGED_NORM = 10.0


class LateralCircuit(nn.Module):
    """Lateral neurons of one layer with ``n_in`` presynaptic neurons (module docstring).

    ``H`` is a buffer ``[m, n_in]``; rows ``[:n_frozen]`` are the merged
    subspaces of past tasks, the rest learn. ``generator`` seeds the
    initialisation of new rows.
    """

    def __init__(self, n_in: int, lr: float = 0.01, momentum: float = 0.9, iterations: int = 5,
                 clip: float = 10.0, spiking: bool = False, spike_scale: float = 20.0, spike_steps: float = 40.0):
        super().__init__()
        if n_in < 1:
            raise ValueError(f"LateralCircuit: n_in must be >= 1, got {n_in}")
        if lr <= 0 or not 0 <= momentum < 1 or iterations < 1 or clip <= 0:
            raise ValueError(f"LateralCircuit: need lr > 0, 0 <= momentum < 1, iterations >= 1, clip > 0; "
                             f"got lr={lr}, momentum={momentum}, iterations={iterations}, clip={clip}")
        if spiking and (spike_scale <= 0 or spike_steps < 1):
            raise ValueError(f"LateralCircuit: spiking needs spike_scale > 0 and spike_steps >= 1, "
                             f"got {spike_scale}, {spike_steps}")
        self.n_in, self.lr, self.momentum, self.iterations, self.clip = n_in, lr, momentum, iterations, clip
        self.spiking, self.spike_scale, self.spike_steps = spiking, spike_scale, spike_steps
        self.register_buffer("weight", torch.zeros(0, n_in))
        self.register_buffer("velocity", torch.zeros(0, n_in))
        self.n_frozen = 0

    @property
    def size(self) -> int:
        """Number of lateral neurons ``m`` (frozen and learning)."""
        return self.weight.shape[0]

    @property
    def basis(self) -> torch.Tensor:
        """The frozen rows ``H_0`` (orthonormal): the subspace of past tasks."""
        return self.weight[: self.n_frozen]

    def add_subspace(self, k: int, generator: torch.Generator | None = None) -> None:
        """Append ``k`` learning rows, random orthonormal and orthogonal to the frozen rows."""
        free = self.n_in - self.n_frozen
        if k < 0 or k > free:
            raise ValueError(f"LateralCircuit: cannot add {k} lateral neurons: {self.n_frozen} of {self.n_in} "
                             f"input dimensions are already taken, {free} are free")
        if self.size > self.n_frozen:
            raise ValueError("LateralCircuit: merge() the current subspace before adding another")
        new = torch.randn(k, self.n_in, generator=generator, dtype=torch.float64)
        rows = _gram_schmidt(self.basis.double(), new, generator)
        self.weight = torch.cat([self.weight, rows.to(self.weight.dtype)])
        self.velocity = torch.cat([self.velocity, torch.zeros_like(rows, dtype=self.velocity.dtype)])

    def merge(self) -> float:
        """Freeze all rows as the old subspace; returns ``||H_new H_new^T - I||_F / sqrt(k)`` before clean-up.

        The learned rows are Gram-Schmidt orthonormalised against the old ones
        (safeguard in the module docstring); then ``H H^T = I`` is asserted.
        """
        new = self.weight[self.n_frozen:].double()
        eye = torch.eye(new.shape[0], dtype=new.dtype)
        drift = float(torch.linalg.norm(new @ new.T - eye) / math.sqrt(max(new.shape[0], 1)))
        rows = _gram_schmidt(self.basis.double(), new, None)
        self.weight = torch.cat([self.basis, rows.to(self.weight.dtype)])
        self.velocity = torch.zeros_like(self.weight)
        self.n_frozen = self.size
        error = self.orthonormality_error()
        if error > ORTHONORMAL_TOL:
            raise AssertionError(f"LateralCircuit: merged rows are not orthonormal (error {error:.2e})")
        return drift

    def orthonormality_error(self, rows: slice | None = None) -> float:
        """``||H H^T - I||_F / sqrt(m)`` over ``rows`` (default: all)."""
        h = self.weight[rows or slice(None)].double()
        if h.shape[0] == 0:
            return 0.0
        return float(torch.linalg.norm(h @ h.T - torch.eye(h.shape[0], dtype=h.dtype)) / math.sqrt(h.shape[0]))

    def lateral(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Lateral activity ``y = H x`` for ``x[..., n_in]`` (spike-count quantised if spiking)."""
        y = x @ weight.T
        if self.spiking:
            s, steps = self.spike_scale, self.spike_steps
            y = torch.round(torch.clamp(y, -s, s) / s * steps) / steps * s
        return y

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """``x - H_0^T H_0 x`` with the frozen rows: the activity the projected gradient uses."""
        if self.n_frozen == 0:
            return x
        h0 = self.basis.to(x.dtype)
        return x - self.lateral(x, h0) @ h0

    @torch.no_grad()
    def hebbian_update(self, x: torch.Tensor) -> None:
        """``iterations`` Oja-subspace steps on a batch ``x[B, n_in]`` (module docstring); frozen rows stay."""
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"LateralCircuit: expected activity [batch, {self.n_in}], got {list(x.shape)}")
        if self.size == self.n_frozen:
            return
        x = x.to(self.weight.dtype)
        learn = slice(self.n_frozen, None)
        for _ in range(self.iterations):
            y = self.lateral(x, self.weight)
            x_hat = y @ self.weight
            delta = (y[:, learn].T @ (x - x_hat) / x.shape[0]).clamp(-self.clip, self.clip)
            self.velocity[learn] = self.momentum * self.velocity[learn] + (1 - self.momentum) * delta
            self.weight[learn] += self.lr * self.velocity[learn]
        norms = torch.linalg.norm(self.weight[learn], dim=1)
        if not bool(torch.isfinite(norms).all()) or float(norms.max()) > DIVERGED_NORM:
            raise ValueError(f"LateralCircuit(n_in={self.n_in}): the Hebbian rule diverged (row norm "
                             f"{float(norms.max()):.3g}; Oja rows converge to norm 1): lower its lr ({self.lr}) "
                             "or scale the activity down")

    def extra_repr(self) -> str:
        return (f"n_in={self.n_in}, size={self.size}, frozen={self.n_frozen}, lr={self.lr}, "
                f"spiking={self.spiking}")

    def get_extra_state(self) -> dict:
        return {"n_frozen": self.n_frozen}

    def set_extra_state(self, state: dict) -> None:
        self.n_frozen = int(state["n_frozen"])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("weight", "velocity"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _gram_schmidt(old: torch.Tensor, new: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Orthonormalise the rows of ``new`` against the orthonormal rows ``old`` and each other.

    Row by row, ``v <- v - B^T (B v)`` twice ("twice is enough") against the
    basis ``B`` built so far. A row (numerically) in the span of ``B`` is
    replaced by a random vector, so the result has ``len(new)`` orthonormal rows.
    """
    basis = old.clone()
    for row in new:
        v = row
        for _attempt in range(10):
            scale = float(torch.linalg.norm(v))
            for _ in range(2):
                v = v - basis.T @ (basis @ v)
            norm = float(torch.linalg.norm(v))
            if norm > 1e-6 * scale:
                break
            v = torch.randn(row.shape, generator=generator, dtype=row.dtype)
        else:
            raise ValueError("LateralCircuit: no direction left orthogonal to the current subspace")
        basis = torch.cat([basis, (v / norm)[None]])
    return basis[old.shape[0]:]
