"""Pooling of spike maps: a stateless layer without neurons between a :class:`~neuro.training.layers.Conv` layer
(or the input) and the next layer.

Over ``x[..., C, H, W]`` with windows ``k x k``, stride ``s`` (default ``k``) and zero padding ``p``::

    Pool(kind='sum'):  y[c, i, j] = sum_{a, b < k} x[c, i s - p + a, j s - p + b]
    Pool(kind='avg'):  y[c, i, j] = (1 / k^2) * the same sum            (padding counted, as NIR's AvgPool2d)

so it is a per-channel convolution with the constant kernel of :func:`pool_weight`. Its output is not spikes
(a sum pool counts them), so it has no population of its own in a converted :class:`neuro.Network`:
:func:`neuro.training.convert.to_network` folds it into the next layer's weights, ``W' = W P``, and records the
pooling so that NIR export writes ``SumPool2d`` / ``AvgPool2d`` nodes again (:mod:`deployment.nir_io`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

POOL_KINDS = ("sum", "avg")


def pool_weight(kind: str, channels: int, kernel) -> np.ndarray:
    """The kernel ``[C, 1, kh, kw]`` (``groups = C``) of a pool: 1 (sum) or ``1 / (kh kw)`` (average)."""
    if kind not in POOL_KINDS:
        raise ValueError(f"pool kind must be one of {POOL_KINDS}, got {kind!r}")
    kh, kw = (int(v) for v in np.broadcast_to(kernel, (2,)))
    return np.full((int(channels), 1, kh, kw), 1.0 if kind == "sum" else 1.0 / (kh * kw))


def pool_output_shape(input_shape, kernel: int, stride: int | None = None, padding: int = 0) -> tuple:
    """``(C, H_out, W_out)`` of pooling an input ``(C, H, W)``: ``(n + 2 p - k) // s + 1``."""
    c, h, w = (int(d) for d in input_shape)
    stride = kernel if stride is None else stride
    if 2 * padding > kernel:
        raise ValueError(f"Pool: padding {padding} is more than half the kernel {kernel}")
    oh, ow = ((n + 2 * padding - kernel) // stride + 1 for n in (h, w))
    if oh < 1 or ow < 1:
        raise ValueError(f"Pool: kernel {kernel} does not fit input {h}x{w} with padding {padding}")
    return (c, oh, ow)


class Pool(nn.Module):
    """Sum or average pooling of ``[..., C, H, W]`` (any leading dimensions: ``[T, B]`` or ``[B]``).

    ``input_shape = (C, H, W)`` fixes ``out_shape`` (what the next layer is built for).
    """

    def __init__(self, input_shape, kernel: int, kind: str = "sum", stride: int | None = None, padding: int = 0):
        super().__init__()
        if kind not in POOL_KINDS:
            raise ValueError(f"Pool: kind must be one of {POOL_KINDS}, got {kind!r}")
        self.kind, self.kernel, self.padding = kind, int(kernel), int(padding)
        self.stride = self.kernel if stride is None else int(stride)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.out_shape = pool_output_shape(self.input_shape, self.kernel, self.stride, self.padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-3:]) != self.input_shape:
            raise ValueError(f"Pool: expected inputs [..., {', '.join(map(str, self.input_shape))}], "
                             f"got shape {tuple(x.shape)}")
        lead = x.shape[:-3]
        y = F.avg_pool2d(x.reshape(-1, *self.input_shape), self.kernel, self.stride, self.padding,
                         count_include_pad=True, divisor_override=1 if self.kind == "sum" else None)
        return y.reshape(*lead, *self.out_shape)

    def extra_repr(self) -> str:
        return f"{self.kind}, kernel={self.kernel}, stride={self.stride}, padding={self.padding}"
