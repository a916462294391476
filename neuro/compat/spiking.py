"""A small spiking MLP for the compatibility layer: rate-coded input, LIF hidden layers, integrator readout.

Per time step ``t = 1..T`` (``LIFCell`` is :class:`neurons.lif_torch.LIFCell`, soft reset)::

    s_0[t] ~ Bernoulli(x)                      rate code of pixels x in [0, 1]
    s_l[t] = LIFCell_l(W_l s_{l-1}[t] + b_l)   hidden layers l = 1..L-1
    logits = (1/T) sum_t (W_L s_{L-1}[t] + b_L)

The weights ``W_l`` are ordinary ``nn.Linear`` modules, so anything that works
on Linear layers (GraNet masks, CLNP freezing) works on these synapses.
:meth:`SpikingMLP.run` also returns each Linear's presynaptic firing rate
``r_l = (1/T) sum_t s_l[t]``, from which :func:`synaptic_operations` counts

    SOPs = T * sum_l sum_j r_l[j] * fanout_l[j],   fanout_l[j] = #{i : W_l[i, j] != 0}

(spikes times the non-zero synapses they drive), averaged over the batch.
"""

from __future__ import annotations

import torch
from torch import nn

from neurons.lif_torch import LIFCell


def rate_encode(x: torch.Tensor, steps: int, generator: torch.Generator) -> torch.Tensor:
    """Bernoulli spikes ``[steps, *x.shape]`` with probability ``x.clamp(0, 1)`` per step."""
    p = x.clamp(0.0, 1.0).expand(steps, *x.shape)
    return torch.bernoulli(p, generator=generator)


class SpikingMLP(nn.Module):
    """Rate-coded input -> ``nn.Linear`` + LIF hidden layers -> non-spiking integrator readout (module doc).

    ``sizes`` = [inputs, hidden..., outputs]. Training draws input spikes from a
    generator seeded with ``seed``; evaluation (``model.eval()``) re-seeds with
    ``seed`` on every call, so the same input always gives the same spikes.
    """

    def __init__(self, sizes, steps: int = 16, seed: int = 0, dt: float = 1e-3, tau_mem: float = 20e-3,
                 tau_syn: float = 0.0, v_th: float = 1.0):
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 3 or min(sizes) < 1:
            raise ValueError(f"SpikingMLP needs [inputs, hidden..., outputs] positive sizes, got {sizes}")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.steps, self.seed = int(steps), int(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.cells = nn.ModuleList(LIFCell(n, dt=dt, reset="soft", tau_mem=tau_mem, tau_syn=tau_syn, v_th=v_th)
                                   for n in sizes[1:-1])
        self._train_generator = torch.Generator().manual_seed(seed)

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(logits, rates)``: ``rates[l]`` is the firing rate ``[batch, n]`` of ``layers[l]``'s input."""
        generator = self._train_generator if self.training else torch.Generator().manual_seed(self.seed)
        spikes = rate_encode(x, self.steps, generator)
        rates = [spikes.mean(0)]
        for layer, cell in zip(self.layers[:-1], self.cells):
            spikes, _ = cell.run(layer(spikes))
            rates.append(spikes.mean(0))
        logits = self.layers[-1](rates[-1])  # linear readout: mean_t (W s[t] + b) = W mean_t s[t] + b
        return logits, rates

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)[0]


@torch.no_grad()
def synaptic_operations(model: SpikingMLP, x: torch.Tensor) -> dict:
    """Mean synaptic operations per sample (module doc), per layer and in total, plus the dense count."""
    was_training = model.training
    model.eval()
    _, rates = model.run(x)
    model.train(was_training)
    per_layer, dense = [], []
    for layer, rate in zip(model.layers, rates):
        fanout = (layer.weight != 0).sum(0).to(rate.dtype)
        per_layer.append(float(model.steps * (rate @ fanout).mean()))
        dense.append(float(model.steps * rate.sum(1).mean() * layer.out_features))
    return {"sops": sum(per_layer), "sops_per_layer": per_layer, "sops_if_dense": sum(dense),
            "mean_rate_per_layer": [float(r.mean()) for r in rates]}
