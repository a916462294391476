"""Trainable spiking layers: a synapse (``nn.Linear`` / ``nn.Conv2d``) feeding a :class:`neurons.lif_torch.LIFCell`.

Every layer's neurons follow :func:`neurons.lif_torch.lif_step`, the torch twin of the one LIF
update (:mod:`neurons.lif`), run over the whole sequence by one compiled loop on CPU
(:func:`neurons.lif_fused.lif_sequence`; ``Recurrent`` layers, whose input depends on the last step,
run the compiled update one step at a time; ``fused=False`` runs the per-step reference)::

    Dense:      x_exc[t] = W x[t] + b                      -> LIF -> s[t]
    Conv:       x_exc[t] = conv2d(x[t], W) + b             -> LIF -> s[t]   (one neuron per output pixel)
    Recurrent:  x_exc[t] = W x[t] + b + R s[t-1]           -> LIF -> s[t]   (recurrence delayed one step)
    Readout:    x_exc[t] = W x[t] + b                      -> LIF without spikes (reset 'none',
                                                              unreachable threshold); output v[t]

Inputs within a step pass through all layers with no delay (as in snntorch),
so a converted :class:`neuro.Network` uses delay 0 for feed-forward projections
and delay 1 for recurrent ones (:mod:`neuro.training.convert`).

A layer runs over a whole ``[T, B, ...]`` sequence by calling it (this is
what :class:`neuro.training.model.SpikingNet` does, layer after layer), or
step by step (``begin`` once per sequence, then ``step``). Per-neuron parameters (``tau_mem``, ``tau_syn``,
``v_th``, ...) are scalars or arrays of the layer's size (heterogeneity);
``learn_tau`` makes the finite positive time constants trainable. ``qat=True`` runs the
forward pass in Loihi's fixed point with straight-through gradients (:mod:`neuro.training.qat`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from neuro.training import qat as fixed_point
from neurons.lif_fused import lif_recurrent_sequence, lif_sequence
from neurons.lif_torch import LIFCell, LIFCoef, LIFState, initial_state
from synapses.spike_linear import SpikeLinear

#: Threshold of the non-spiking readout: never reached, so the readout is a leaky integrator.
READOUT_THRESHOLD = 1e9


class LIFLayer(nn.Module):
    """``synapse`` (maps ``x[B, ...]`` to a current ``[B, *out_shape]``) followed by LIF neurons.

    ``spike_fn``: surrogate spike function of ``v - v_th`` (ours or snntorch's,
    e.g. ``snntorch.surrogate.atan()``); ``use_mpr`` switches to the MPR gradient
    (Guo et al. 2022); ``reset`` is ``'hard'``, ``'soft'`` or ``'none'``.
    """

    def __init__(self, synapse: nn.Module, out_shape, *, dt: float = 1e-3, reset: str = "soft",
                 use_mpr: bool = False, spike_fn: Callable | None = None, learn_tau: bool = False,
                 tau_mem=20e-3, tau_syn=0.0, qat: bool = False, fused: bool | None = None, **params):
        super().__init__()
        self.synapse = synapse
        self.qat = bool(qat)
        self.fused = fused  # None: the compiled sequence loop wherever it runs (neurons.lif_fused.can_fuse)
        self._fixed = None  # this sequence's fixed-point view (qat), set by begin()
        self.out_shape = tuple(int(d) for d in out_shape)
        self.cell = LIFCell(math.prod(self.out_shape), dt, reset, use_mpr, spike_fn, learn_tau, tau_mem=tau_mem,
                            tau_syn=tau_syn, **params)

    @property
    def size(self) -> int:
        return self.cell.size

    def begin(self, batch: int):
        """Coefficients (computed once per sequence) and the initial state for ``batch`` samples."""
        coef = self.cell.coefficients()
        self._fixed = fixed_point.quantize_layer(self, isinstance(self, Readout)) if self.qat else None
        if self._fixed is not None:
            coef = self._fixed.coefficients(coef)
        return coef, initial_state(coef, (batch,))

    def current(self, x: torch.Tensor) -> torch.Tensor:
        """The feed-forward input current ``x_exc[t]`` flattened to ``[B, size]``."""
        if self._fixed is not None:
            return fixed_point.synapse_current(self, x, self._fixed)
        return self.synapse(x).reshape(x.shape[0], -1)

    def fire(self, currents: torch.Tensor, state: LIFState, coef: LIFCoef, record_v: bool = False):
        """Charge, fire and reset the neurons over ``currents[T, B, size]`` (:func:`neurons.lif_fused.lif_sequence`).

        Returns ``(spikes, v or None, final state)``; ``v[T, B, size]`` (``record_v``) is the membrane after
        each step. Spikes take the dtype of the current (snntorch surrogates always return float32).
        """
        units = None if self._fixed is None else self._fixed.units
        s, v, state = lif_sequence(currents, state, coef, self.cell.reset, self.cell.spike_fn, self.cell.use_mpr,
                                   truncate_units=units, record_v=record_v, fused=self.fused)
        return s.to(currents.dtype), v, state

    def step(self, x: torch.Tensor, state, coef: LIFCoef):
        """One time step of synapse and neurons: ``(output [B, *out_shape], new state)``."""
        return self.advance(self.current(x), state, coef)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Run over ``x_seq[T, B, ...]``; returns the outputs ``[T, B, *out_shape]``.

        The synapse is applied to all ``T * B`` inputs at once (one large matrix
        product), then the neurons run over the whole sequence (one compiled loop): the same
        result as stepping input and neurons together, since the synapse has no state.
        """
        steps, batch = x_seq.shape[:2]
        coef, state = self.begin(batch)
        currents = self.current(x_seq.reshape(steps * batch, *x_seq.shape[2:])).reshape(steps, batch, -1)
        return self.sequence(currents, state, coef)

    def sequence(self, currents: torch.Tensor, state, coef: LIFCoef) -> torch.Tensor:
        """Neurons only, over the whole sequence of feed-forward currents ``[T, B, size]``: the outputs."""
        s, _, _ = self.fire(currents, state, coef)
        return s.reshape(*currents.shape[:2], *self.out_shape)

    def advance(self, current: torch.Tensor, state, coef: LIFCoef):
        """Neurons only, one step, given this step's feed-forward current: ``(output, new state)``."""
        s, _, state = self.fire(current[None], state, coef)
        return s[0].reshape(-1, *self.out_shape), state


class Dense(LIFLayer):
    """Fully connected: ``nn.Linear(in_features, size)`` -> ``size`` LIF neurons (inputs are flattened).

    The synapse is a :class:`synapses.spike_linear.SpikeLinear` (an ``nn.Linear`` whose product runs
    through the input's nonzeros when the input is sparse, as spikes are).
    """

    def __init__(self, in_features: int, size: int, bias: bool = True, **kwargs):
        super().__init__(SpikeLinear(in_features, size, bias=bias), (size,), **kwargs)

    def current(self, x):
        return super().current(x.flatten(1))


class Readout(Dense):
    """Non-spiking last layer: ``nn.Linear`` -> leaky integrator; its output is the membrane ``v``."""

    def __init__(self, in_features: int, size: int, bias: bool = True, **kwargs):
        kwargs.update(reset="none", v_th=READOUT_THRESHOLD)
        super().__init__(in_features, size, bias, **kwargs)

    def sequence(self, currents, state, coef):
        return self.fire(currents, state, coef, record_v=True)[1]

    def advance(self, current, state, coef):
        _, v, state = self.fire(current[None], state, coef, record_v=True)
        return v[0], state


class Conv(LIFLayer):
    """``nn.Conv2d`` -> one LIF neuron per output channel and pixel; input ``[B, C, H, W]``.

    ``input_size = (H, W)`` fixes the number of neurons (per-neuron parameters).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, input_size, stride: int = 1,
                 padding: int = 0, bias: bool = True, **kwargs):
        h, w = (int(v) for v in input_size)
        out_shape = conv_output_shape((in_channels, h, w), out_channels, kernel_size, stride, padding)
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        super().__init__(conv, out_shape, **kwargs)
        self.input_size = (h, w)


def conv_output_shape(input_shape, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0):
    """``(C_out, H_out, W_out)`` of a square-kernel convolution of an input ``(C, H, W)``."""
    _, h, w = input_shape
    oh, ow = ((n + 2 * padding - kernel_size) // stride + 1 for n in (h, w))
    if oh < 1 or ow < 1:
        raise ValueError(f"Conv: kernel {kernel_size} does not fit input {h}x{w} with padding {padding}")
    return (int(out_channels), oh, ow)


class Recurrent(Dense):
    """``nn.Linear`` input plus a recurrent ``nn.Linear`` (no bias) of last step's spikes, delay 1 step."""

    def __init__(self, in_features: int, size: int, bias: bool = True, **kwargs):
        super().__init__(in_features, size, bias, **kwargs)
        self.recurrent = nn.Linear(size, size, bias=False)

    def begin(self, batch):
        coef, state = super().begin(batch)
        return coef, (state, torch.zeros_like(state.v))

    def sequence(self, currents, state, coef):
        """The recurrent product a torch op per step, the neurons in the compiled loops
        (:func:`neurons.lif_fused.lif_recurrent_sequence`)."""
        units = None if self._fixed is None else self._fixed.units
        weight = self.recurrent.weight if self._fixed is None else self._fixed.recurrent
        lif_state, s0 = state
        s, _ = lif_recurrent_sequence(currents, weight, s0, lif_state, coef, self.cell.reset, self.cell.spike_fn,
                                      self.cell.use_mpr, units, self.fused)
        return s.to(currents.dtype)

    def advance(self, current, state, coef):
        lif_state, s_prev = state
        s, _, lif_state = self.fire((current + self.feedback(s_prev))[None], lif_state, coef)
        return s[0], (lif_state, s[0])

    def feedback(self, s_prev: torch.Tensor) -> torch.Tensor:
        """The recurrent current ``R s[t-1]``."""
        return self.recurrent(s_prev) if self._fixed is None else F.linear(s_prev, self._fixed.recurrent)
