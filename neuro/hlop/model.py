"""A minimal spiking MLP with one HLOP lateral circuit per synaptic layer.

Per time step ``t = 1..T`` (``LIFCell`` is :class:`neurons.lif_torch.LIFCell`,
no synaptic filter, soft reset)::

    a_0[t] = x (constant current) or x[t] (a sequence)
    s_l[t] = LIFCell_l(W_l a_{l-1}[t])          a_l = s_l, hidden layers l = 1..L-1
    z[t]   = W_L a_{L-1}[t]                      non-spiking readout
    logits = (1/T) sum_t z[t]

Layer ``l`` has a :class:`~neuro.hlop.lateral.LateralCircuit` on its
presynaptic activity ``a_{l-1}``. Two training modes:

* ``bptt``: backpropagation through time; ``dL/dW_l = sum_t delta_l[t] a_{l-1}[t]^T``,
  loss ``CE(logits)``. The lateral circuits see the per-step activity ``a_{l-1}[t]``.
* ``online`` (OTTT, Xiao et al. 2022): neuron states are detached between
  steps, the loss is ``(1/T) sum_t CE(z[t])`` and ``dL/dW_l = sum_t delta_l[t]
  a_hat_{l-1}[t]^T`` with the presynaptic trace ``a_hat[t] = lambda a_hat[t-1] +
  a[t]`` (``lambda`` = the postsynaptic membrane decay ``exp(-dt/tau_mem)``,
  0 for the readout). The lateral circuits learn from the traces in rate units,
  ``(1 - lambda) a_hat[t]`` (same subspace; unscaled traces of a decay-0.82 neuron
  are ~5x larger and made the Hebbian rule diverge at the BPTT learning rates).

With ``project=True`` every weight gradient uses the residual of its
activity under the frozen lateral subspace (:mod:`neuro.hlop.projection`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neuro.hlop.lateral import LateralCircuit
from neuro.hlop.projection import projected_linear
from neurons.lif_torch import LIFCell, LIFState

TRAINING_MODES = ("bptt", "online")


class SpikingMLP(nn.Module):
    """``sizes = [inputs, hidden..., outputs]`` spiking MLP with lateral circuits (module docstring).

    ``lateral_lr`` is one Hebbian learning rate per synaptic layer (or one
    for all); ``lateral`` holds the other :class:`LateralCircuit` options.
    Weights are initialised from torch's global generator: build under
    ``torch.random.fork_rng()`` + ``torch.manual_seed`` for a seeded model.
    """

    def __init__(self, sizes: list[int], steps: int = 8, dt: float = 1e-3, tau_mem: float = 5e-3,
                 v_th: float = 1.0, reset: str = "soft", bias: bool = False,
                 lateral_lr: float | list[float] = 0.01, **lateral):
        super().__init__()
        if len(sizes) < 2 or any(int(n) < 1 for n in sizes):
            raise ValueError(f"SpikingMLP: sizes must list >= 2 positive layer sizes, got {sizes}")
        if steps < 1:
            raise ValueError(f"SpikingMLP: steps must be >= 1, got {steps}")
        rates = [lateral_lr] * (len(sizes) - 1) if isinstance(lateral_lr, int | float) else list(lateral_lr)
        if len(rates) != len(sizes) - 1:
            raise ValueError(f"SpikingMLP: need {len(sizes) - 1} lateral learning rates, got {len(rates)}")
        self.sizes, self.steps = [int(n) for n in sizes], int(steps)
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=bias) for a, b in zip(sizes[:-1], sizes[1:]))
        self.cells = nn.ModuleList(LIFCell(n, dt=dt, reset=reset, tau_mem=tau_mem, tau_syn=0.0, v_th=v_th)
                                   for n in sizes[1:-1])
        self.laterals = nn.ModuleList(LateralCircuit(n, lr=lr, **lateral) for n, lr in zip(sizes[:-1], rates))

    def _inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.ndim == 2 and x.shape[1] == self.sizes[0]:
            return [x] * self.steps
        if x.ndim == 3 and x.shape[1:] == (self.steps, self.sizes[0]):
            return list(x.transpose(0, 1))
        raise ValueError(f"SpikingMLP: input must be [batch, {self.sizes[0]}] or [batch, {self.steps}, "
                         f"{self.sizes[0]}], got {list(x.shape)}")

    def forward(self, x: torch.Tensor, training: str = "bptt", project: bool = False,
                hebbian: bool = False) -> torch.Tensor:
        """Per-step readout ``z[T, batch, outputs]``; Hebbian updates of the lateral circuits if ``hebbian``."""
        if training not in TRAINING_MODES:
            raise ValueError(f"SpikingMLP: unknown training mode {training!r}; expected one of {TRAINING_MODES}")
        online = training == "online"
        inputs = self._inputs(x)
        coefs = [cell.coefficients() for cell in self.cells]
        decays = [float(c.a_mem.mean()) for c in coefs] + [0.0]
        residuals = [lateral.residual if project else None for lateral in self.laterals]
        x_residual = residuals[0](x) if project and x.ndim == 2 and not online else None
        states: list[LIFState | None] = [None] * len(self.cells)
        traces: list[torch.Tensor | None] = [None] * len(self.layers)
        seen: list[list[torch.Tensor]] = [[] for _ in self.layers]
        out = []
        for a in inputs:
            for i, layer in enumerate(self.layers):
                eligibility = None
                if online:
                    prev = traces[i]
                    traces[i] = eligibility = a.detach() if prev is None else decays[i] * prev + a.detach()
                if hebbian:  # traces scaled by (1 - lambda) to rate units: the Hebbian step size stays stable
                    seen[i].append(a.detach() if eligibility is None else (1 - decays[i]) * eligibility)
                if i == 0 and x_residual is not None:  # a constant input needs its residual once
                    z = projected_linear(layer, a, None, x_residual)
                else:
                    z = projected_linear(layer, a, residuals[i], eligibility)
                if i == len(self.cells):
                    out.append(z)
                    break
                if online and states[i] is not None:
                    states[i] = LIFState(*(v.detach() for v in states[i]))
                a, states[i] = self.cells[i](z, states[i], coefs[i])
        if hebbian:
            for lateral, acts in zip(self.laterals, seen):
                lateral.hebbian_update(torch.cat(acts))
        return torch.stack(out)

    @staticmethod
    def loss(z: torch.Tensor, target: torch.Tensor, training: str = "bptt") -> torch.Tensor:
        """``CE(mean_t z[t])`` for BPTT, ``mean_t CE(z[t])`` for online training."""
        if training == "online":
            return F.cross_entropy(z.flatten(0, 1), target.repeat(z.shape[0]))
        return F.cross_entropy(z.mean(0), target)

    def add_subspace(self, counts: list[int], generator: torch.Generator | None = None) -> None:
        """Add ``counts[l]`` lateral neurons to layer ``l``'s circuit."""
        if len(counts) != len(self.laterals):
            raise ValueError(f"SpikingMLP: need {len(self.laterals)} lateral-neuron counts, got {counts}")
        for lateral, k in zip(self.laterals, counts):
            lateral.add_subspace(int(k), generator)

    def merge_subspace(self) -> list[float]:
        """Freeze every circuit's rows; returns each circuit's orthonormality error before clean-up."""
        return [lateral.merge() for lateral in self.laterals]
