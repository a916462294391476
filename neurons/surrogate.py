"""Spiking activations with surrogate gradients, and the membrane potential rectifier (MPR).

A spike function maps ``x = v - v_th`` to spikes ``H(x) = [x > 0]`` (strict, as
Lava and snntorch) in the forward pass and uses a smooth derivative backwards.
snntorch's surrogates (``snntorch.surrogate.atan()`` etc.) have the same
signature and can be passed wherever a ``spike_fn`` is accepted.

MPR (Guo et al., ECCV 2022, "Reducing Information Loss for SNNs"). With the
membrane normalised so that reset maps to 0 and threshold to 1/2,
``u = 1/2 + (v - v_th) / (2 (v_th - v_reset))``::

    phi(u) = 1 - (1 - u)^(1/3)                              u < 0
    phi(u) = tanh(3 (u - 1/2)) / (2 tanh(3/2)) + 1/2         0 <= u <= 1
    phi(u) = u^(1/3)                                         u > 1

The spike is ``H(phi(u) - 1/2)``. ``phi`` is monotone with ``phi(1/2) = 1/2``, so
forward spikes are exactly ``H(v - v_th)``: MPR changes the gradient
(straight-through on ``clamp(phi(u), 0, 1)``: ``ds/du = phi'(u)`` on ``[0, 1]``,
0 outside) and shrinks the quantisation error ``|phi(u) - s| <= |u - s|``.
"""

from __future__ import annotations

import math

import torch

_TANH_1_5 = math.tanh(1.5)


def mpr(u: torch.Tensor) -> torch.Tensor:
    """The rectifier ``phi(u)`` (module docstring)."""
    mid = torch.tanh(3.0 * (u - 0.5)) / (2.0 * _TANH_1_5) + 0.5
    low = 1.0 - torch.clamp(1.0 - u, min=1.0) ** (1.0 / 3.0)
    high = torch.clamp(u, min=1.0) ** (1.0 / 3.0)
    return torch.where(u < 0, low, torch.where(u > 1, high, mid))


def mpr_derivative(u: torch.Tensor) -> torch.Tensor:
    """``phi'(u)`` on ``[0, 1]`` (``3 sech^2(3(u-1/2)) / (2 tanh(3/2))``), 0 elsewhere."""
    inside = (u >= 0) & (u <= 1)
    d = 3.0 / (2.0 * _TANH_1_5) / torch.cosh(3.0 * (u - 0.5)) ** 2
    return torch.where(inside, d, torch.zeros_like(d))


def normalized_membrane(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``u = 1/2 + x / (2 scale)`` for ``x = v - v_th`` and ``scale = v_th - v_reset``."""
    return 0.5 + x / (2.0 * scale)


class _FastSigmoid(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, slope):
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (ctx.slope * x.abs() + 1.0) ** 2, None


class _MPRSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x, scale)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, scale = ctx.saved_tensors
        u = normalized_membrane(x, scale)
        return grad * mpr_derivative(u) / (2.0 * scale), None


def fast_sigmoid(slope: float = 25.0):
    """Heaviside forward, ``1 / (slope |x| + 1)^2`` backward (SuperSpike; snntorch's default)."""
    if slope <= 0:
        raise ValueError(f"slope must be positive, got {slope}")

    def spike(x: torch.Tensor) -> torch.Tensor:
        return _FastSigmoid.apply(x, slope)

    spike.__name__ = f"fast_sigmoid(slope={slope})"
    spike.surrogate = ("fast_sigmoid", float(slope))  # its shape, for compiled kernels (neurons.lif_fused)
    return spike


def mpr_spike(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Spikes ``H(x)`` with the MPR straight-through gradient ``phi'(u) / (2 scale)``."""
    return _MPRSpike.apply(x, torch.as_tensor(scale, dtype=x.dtype, device=x.device).expand_as(x))
