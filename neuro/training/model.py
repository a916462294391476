"""A spiking classifier: a sequence of layers run step by step over ``x[T, B, ...]``.

At every step ``t`` the input ``x[t]`` passes through all layers in order
(no delay between layers). Since no layer depends on a later one, this is
computed layer by layer: each layer processes the whole sequence before the
next one starts (same result, larger matrix products). Layers are ours (:mod:`neuro.training.layers`,
state passed explicitly; :class:`~neuro.training.pooling.Pool`, stateless) or any per-step
``nn.Module``: ``nn.Flatten``, ``nn.Linear``, or snntorch neurons built with ``init_hidden=True`` (their
hidden state is reset with their own ``reset_mem()`` at the start of every
sequence; a tuple output such as ``(spk, mem)`` contributes its first item).

Readout (``readout=``):

* ``'membrane'`` (default): the last layer is a non-spiking
  :class:`~neuro.training.layers.Readout`; ``logits = mean_t v[t]``.
* ``'count'``: the last layer spikes; ``logits = sum_t s[t]`` (spike counts).

Both feed ``cross_entropy(logits, label)``. The membrane readout gives a
graded signal from the first step and trains faster at small ``T``; the count
readout makes every layer spiking (a spike-count decision on hardware).
"""

from __future__ import annotations

import torch
from torch import nn

from neuro.training.layers import LIFLayer, Readout
from neuro.training.pooling import Pool

READOUTS = ("membrane", "count")


class SpikingNet(nn.Module):
    """``layers`` applied in order at every time step; ``forward(x[T, B, ...]) -> logits [B, classes]``."""

    def __init__(self, layers, readout: str = "membrane"):
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}; expected one of {READOUTS}")
        self.layers = nn.ModuleList(layers)
        if not len(self.layers):
            raise ValueError("SpikingNet needs at least one layer")
        last = self.layers[-1]
        if (readout == "membrane") != isinstance(last, Readout):
            raise ValueError(f"readout {readout!r} needs a last layer that is "
                             f"{'a Readout' if readout == 'membrane' else 'spiking (not a Readout)'}, "
                             f"got {type(last).__name__}")
        self.readout = readout
        self._stateful = [m for m in self.layers if type(m).__module__.startswith("snntorch")
                          and getattr(m, "init_hidden", False) and hasattr(m, "reset_mem")]

    def forward(self, x_seq: torch.Tensor, record: bool = False):
        """Logits ``[B, classes]``; with ``record=True`` also every layer's outputs ``[T, B, ...]``."""
        if x_seq.dim() < 3:
            raise ValueError(f"input must be [T, B, ...] (time first), got shape {tuple(x_seq.shape)}")
        for m in self._stateful:
            m.reset_mem()
        outputs, h = [], x_seq
        for layer in self.layers:
            if isinstance(layer, (LIFLayer, Pool)):  # over the whole sequence at once
                h = layer(h)
            else:
                h = torch.stack([_first(layer(x)) for x in h])
            outputs.append(h)
        logits = h.mean(0) if self.readout == "membrane" else h.sum(0)
        return (logits, outputs) if record else logits


def _first(out):
    """snntorch neurons may return ``(spk, mem)``: the spikes go on."""
    return out[0] if isinstance(out, tuple) else out
