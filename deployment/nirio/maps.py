"""NIR's weight nodes as sparse linear maps, and chains of them composed into synapses.

Every node between two neuron nodes is affine in its input ``x`` (flat, C order)::

    Linear  y = W x            Affine  y = W x + b          Scale  y = s * x      Flatten  y = x
    Conv1d / Conv2d   y = conv(x, W) + b   (stride, padding, dilation, groups; unrolled, one synapse per tap)
    SumPool2d         y = conv(x, 1)       AvgPool2d   y = conv(x, 1 / (kh kw))   (per channel, zero padding)
    Delay             y[t] = x[t - d]      d = round(delay / dt) steps, per element

so a chain ``source -> maps -> neuron`` is one sparse matrix per (source, delay) plus a constant
bias: :func:`compose` multiplies the maps out (a pool followed by a conv becomes one conv).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from neuro.training.convert import conv_shape, unroll_conv
from neuro.training.pooling import pool_weight

MAP_KINDS = ("Linear", "Affine", "Scale", "Flatten", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d", "Delay")


class Op:
    """One map node: ``y = matrix @ x + bias``, output shape, per-output delays in steps (``Delay`` only)."""

    def __init__(self, matrix, out_shape, bias=None, delays=None):
        self.matrix, self.out_shape, self.bias, self.delays = matrix.tocsr(), tuple(out_shape), bias, delays


def kind(node) -> str:
    return type(node).__name__


def node_op(node, in_shape, dt: float, name: str) -> Op:
    """The :class:`Op` of map node ``node`` on an input of shape ``in_shape`` (errors name the node)."""
    k, n_in = kind(node), int(np.prod(in_shape))
    if k in ("Linear", "Affine"):
        w = np.asarray(node.weight, np.float64)
        if w.ndim != 2 or w.shape[1] != n_in:
            raise ValueError(f"NIR node {name!r} ({k}): weight {w.shape} does not take an input of {n_in} "
                             f"values (shape {tuple(in_shape)})")
        bias = np.asarray(node.bias, np.float64) if k == "Affine" else None
        return Op(sparse.csr_matrix(w), (w.shape[0],), bias)
    if k == "Scale":
        s = np.broadcast_to(np.asarray(node.scale, np.float64), tuple(in_shape)).ravel()
        return Op(sparse.diags(s), in_shape)
    if k == "Flatten":
        return Op(sparse.identity(n_in), _flat_shape(in_shape, int(node.start_dim), int(node.end_dim)))
    if k == "Delay":
        d = np.broadcast_to(np.asarray(node.delay, np.float64), tuple(in_shape)).ravel() / dt
        if np.any(d < 0) or np.any(np.abs(d - np.rint(d)) > 1e-6):
            raise ValueError(f"NIR node {name!r} (Delay): delays must be whole multiples of dt={dt} s, got "
                             f"{np.unique(d * dt)[:4]} s")
        return Op(sparse.identity(n_in), in_shape, delays=np.rint(d).astype(np.int64))
    if k in ("Conv1d", "Conv2d"):
        return _conv(np.asarray(node.weight, np.float64), in_shape, node.stride, node.padding, node.dilation,
                     int(node.groups), np.asarray(node.bias, np.float64), name, k)
    if k in ("SumPool2d", "AvgPool2d"):
        channels = int(in_shape[0])
        weight = pool_weight("sum" if k == "SumPool2d" else "avg", channels, node.kernel_size)
        return _conv(weight, in_shape, node.stride, node.padding, 1, channels, None, name, k)
    raise ValueError(f"NIR node {name!r} is a {k}, not a weight node")


def _conv(weight, in_shape, stride, padding, dilation, groups, bias, name, k) -> Op:
    dims = weight.ndim - 2
    if len(in_shape) == dims + 2 and in_shape[0] == 1:  # a batch of one in the producer's sample input
        in_shape = tuple(in_shape[1:])
    if len(in_shape) != dims + 1 or weight.shape[1] * groups != in_shape[0]:
        raise ValueError(f"NIR node {name!r} ({k}): kernel {weight.shape} with groups={groups} does not fit an "
                         f"input of shape {tuple(in_shape)} (channels first)")
    if isinstance(padding, str):
        raise ValueError(f"NIR node {name!r} ({k}): padding {padding!r} is not supported; give it in pixels")
    try:
        pre, post, w = unroll_conv(weight, in_shape[1:], stride, padding, dilation, groups)
        out = conv_shape(in_shape[1:], weight.shape[2:], *(_dims(v, dims) for v in (stride, padding, dilation)))
    except ValueError as exc:
        raise ValueError(f"NIR node {name!r} ({k}): {exc}") from None
    out_shape = (weight.shape[0], *out)
    matrix = sparse.csr_matrix((w, (post, pre)), shape=(int(np.prod(out_shape)), int(np.prod(in_shape))))
    if bias is not None:
        bias = np.repeat(np.broadcast_to(bias, (weight.shape[0],)), int(np.prod(out)))
    return Op(matrix, out_shape, bias)


def _dims(v, dims):
    v = np.atleast_1d(np.asarray(v, np.int64)).ravel()
    return tuple(np.repeat(v, dims) if v.size == 1 else v)


def _flat_shape(shape, start, end):
    n = len(shape)
    start, end = start % n if n else 0, end % n if n else 0
    return tuple(shape[:start]) + (int(np.prod(shape[start:end + 1])),) + tuple(shape[end + 1:])


class Composer:
    """The input of each node as ``{(source, delay): sparse [n_node, n_source]}`` plus a bias vector.

    ``ops[name]`` is the :class:`Op` of each map node; ``sources`` the neuron and input nodes;
    ``preds[name]`` a node's predecessors. A cycle of map nodes only is refused.
    """

    def __init__(self, ops: dict, sources: dict, preds: dict):
        self.ops, self.sources, self.preds, self._out, self._busy = ops, sources, preds, {}, set()

    def output(self, name):
        """``(terms, bias)`` of what node ``name`` emits, in terms of the sources."""
        if name in self.sources:
            return {(name, 0): sparse.identity(self.sources[name], format="csr")}, 0.0
        if name in self._out:
            return self._out[name]
        if name in self._busy:
            raise ValueError(f"NIR node {name!r}: a cycle of weight nodes without a neuron node in it")
        self._busy.add(name)
        terms, bias = self.inputs(name)
        op = self.ops[name]
        out = {}
        for (src, d), m in terms.items():
            m = op.matrix @ m
            if op.delays is None:
                _add(out, (src, d), m)
            else:
                for extra in np.unique(op.delays):
                    _add(out, (src, d + int(extra)), sparse.diags((op.delays == extra).astype(float)) @ m)
        bias = op.matrix @ np.broadcast_to(bias, (op.matrix.shape[1],)) + (0.0 if op.bias is None else op.bias)
        self._busy.discard(name)
        self._out[name] = out, bias
        return out, bias

    def inputs(self, name):
        """``(terms, bias)`` summed over the predecessors of ``name``."""
        terms, bias = {}, 0.0
        for p in self.preds[name]:
            t, b = self.output(p)
            for key, m in t.items():
                _add(terms, key, m)
            bias = bias + b
        return terms, bias


def _add(terms, key, m):
    terms[key] = terms[key] + m if key in terms else m
