"""Quantization-aware training (config ``model.qat: true``): the forward pass in Loihi's fixed point.

Every forward pass does to a layer what the exporter (``deployment.quantize``) will do, with
the scales of the current weights; each rounding is straight-through (forward quantized,
gradient of the float value)::

    m      = V / theta        mantissa units per volt; V = loihi.vth_mantissa(max |w| / theta, headroom)
             (readout: m = loihi.readout_units(max |w|, membrane bound) / 64)
    w_q    = q 2^e / m        (q, e) = loihi.fit_weights(w m): 8-bit weights, one exponent per projection
    b_q    = (mant << exp) / (64 m)              (mant, exp) = loihi.split_bias(64 m b): 13-bit bias
    a_q    = 1 - round((1 - a) 4096) / 4096      12-bit decays (dv for the membrane, du + 1 for the current)
    x      -> trunc(64 m x) / (64 m)             every decayed state term: Loihi truncates towards zero

With the state on Loihi's integer grid this is the exporter's arithmetic, step for step, up to
the 24-bit wrap of ``u`` and clip of ``v`` (which headroom 16 keeps far away) and the leak
towards ``v_rest`` (exact when ``v_rest = v_reset``, as in the trained layers). Assumes one
threshold per conv channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from neurons import loihi
from neurons.lif_torch import LIFCoef

DEFAULT_HEADROOM = 16


def straight_through(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``q`` in the forward pass, the gradient of ``x`` in the backward pass."""
    return x + (q - x).detach()


@dataclass
class LayerQuantization:
    """One forward pass's fixed-point view of a layer: units per volt per neuron, weights, bias."""

    units: torch.Tensor  # 64 m: integer voltage units per volt, per neuron
    weight: torch.Tensor
    bias: torch.Tensor | None  # per neuron: synapse bias as the exporter folds it into the neuron bias
    recurrent: torch.Tensor | None = None

    def coefficients(self, coef: LIFCoef) -> LIFCoef:
        """12-bit decays: ``dv = round((1 - a_mem) 4096)``, ``du + 1 = round((1 - a_syn) 4096)``, clipped."""
        def decay(a, low):
            code = torch.clamp(torch.round((1 - a) * loihi.DECAY_UNITY), low, loihi.DECAY_UNITY - 1 + low)
            return straight_through(a, 1 - code / loihi.DECAY_UNITY)
        return coef._replace(a_mem=decay(coef.a_mem, 0), a_syn=decay(coef.a_syn, 1), a_inh=decay(coef.a_inh, 1))


def _per_neuron(layer, values: torch.Tensor) -> torch.Tensor:
    """A per-neuron tensor as one value per row of the synapse weight (a conv channel, a linear output)."""
    channels = layer.synapse.weight.shape[0]
    grouped = values.reshape(channels, -1)
    if not bool(torch.all(grouped == grouped[:, :1])):
        raise ValueError(f"{type(layer).__name__}: quantization-aware training needs one threshold per channel")
    return grouped[:, 0]


def _fake_weights(w: torch.Tensor, m_rows: torch.Tensor) -> torch.Tensor:
    """8-bit weights at the exporter's exponent (``loihi.fit_weights``), in volts."""
    shape = (-1,) + (1,) * (w.dim() - 1)
    w_units = (w.detach() * m_rows.reshape(shape)).double().cpu().numpy()
    fit = loihi.fit_weights(w_units.ravel())
    if fit is None:
        raise ValueError(f"weights up to {np.abs(w_units).max():.4g} threshold mantissas do not fit Loihi's 8 bits")
    q, e, _mode = fit
    q = torch.as_tensor(q.reshape(w.shape), dtype=w.dtype, device=w.device)
    return straight_through(w, q * 2.0**e / m_rows.reshape(shape))


def _fake_bias(bias: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
    mant, exp = loihi.split_bias((bias.detach() * units).double().cpu().numpy())
    value = torch.as_tensor(loihi.effective_bias(mant, np.maximum(exp, 0)), dtype=bias.dtype, device=bias.device)
    return straight_through(bias, value / units)


def quantize_layer(layer, readout: bool, headroom: int = DEFAULT_HEADROOM) -> LayerQuantization:
    """The fixed-point view of ``layer`` (a :class:`~neuro.training.layers.LIFLayer`) for one forward pass."""
    cell, weight = layer.cell, layer.synapse.weight
    recurrent = getattr(layer, "recurrent", None)
    theta = (cell.v_th - cell.v_reset).detach()
    rows = weight.reshape(weight.shape[0], -1).detach().abs()
    if readout:  # the exporter's drive: |neuron bias| (cell + synapse bias) + sum |w| per neuron
        coef = cell.coefficients()
        bias = cell.bias + (0 if layer.synapse.bias is None else layer.synapse.bias)
        drive = (rows.sum(1) + bias.detach().abs()).double().cpu().numpy()
        bound = loihi.membrane_bound(drive, coef.a_mem.detach().double().cpu().numpy(),
                                     coef.a_syn.detach().double().cpu().numpy())
        m = torch.full_like(theta, loihi.readout_units(float(rows.max()), bound) / 64)
    else:
        theta_rows = _per_neuron(layer, theta)
        rel = float((rows.max(1).values / theta_rows).max())
        if recurrent is not None:
            rel = max(rel, float((recurrent.weight.detach().abs().max(1).values / theta).max()))
        m = loihi.vth_mantissa(rel, headroom) / theta
    m_rows = _per_neuron(layer, m)
    bias = None
    if layer.synapse.bias is not None:
        per_neuron = layer.synapse.bias.repeat_interleave(cell.size // weight.shape[0])
        bias = _fake_bias(per_neuron + cell.bias, 64 * m) - cell.bias
    rec = None if recurrent is None else _fake_weights(recurrent.weight, m)
    return LayerQuantization(64 * m, _fake_weights(weight, m_rows), bias, rec)


def synapse_current(layer, x: torch.Tensor, q: LayerQuantization) -> torch.Tensor:
    """``layer.synapse(x)`` with the quantized weights and bias, flattened to ``[B, neurons]``."""
    syn = layer.synapse
    if isinstance(syn, torch.nn.Conv2d):
        out = F.conv2d(x, q.weight, None, syn.stride, syn.padding, syn.dilation, syn.groups)
    else:
        out = F.linear(x.flatten(1), q.weight)
    out = out.reshape(x.shape[0], -1)
    return out if q.bias is None else out + q.bias
