"""A NIR graph run as torch layers: ``conv1d/conv2d/linear`` on the tensors, neuro's LIF twin for the neurons.

The second engine for an imported graph (the first is the event simulator on the unrolled CSR): the
same neuron parameters (those of :func:`deployment.nir_io.nir_to_network`, biases and gains folded in
the same way) and the same timing (zero delay along the graph, one step on an edge closing a cycle,
``Delay`` nodes in steps), but the weight nodes stay convolutions and pools on ``[B, C, H, W]``::

    y = g * op(x)       op: conv / pool / linear / scale / flatten without its bias (the bias is in the neuron)
    s, state = lif_step(y, state, coef)          (neurons.lif_torch, the twin of neurons.lif)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from deployment.nirio.graph import back_edges, flat_graph
from deployment.nirio.neurons import NEURON_KINDS, READOUT_KINDS
from neurons import lif
from neurons.lif_torch import LIFCoef, initial_state, lif_step


def _t(value, dtype):
    return torch.as_tensor(np.asarray(value, np.float64), dtype=dtype)


def _op(node, dtype):
    """The bias-free torch function of a weight node on ``[B, *shape]`` (``Delay`` is handled by the runner)."""
    k = type(node).__name__
    if k in ("Linear", "Affine"):
        w = _t(node.weight, dtype)
        return lambda x: F.linear(x.flatten(1), w)
    if k == "Scale":
        s = _t(node.scale, dtype)
        return lambda x: x * s
    if k in ("Flatten", "Delay"):
        return lambda x: x.flatten(1) if k == "Flatten" else x
    if k in ("Conv1d", "Conv2d"):
        conv = F.conv1d if k == "Conv1d" else F.conv2d
        w, args = _t(node.weight, dtype), dict(stride=tuple(np.atleast_1d(node.stride).tolist()),
                                               padding=tuple(np.atleast_1d(node.padding).tolist()),
                                               dilation=tuple(np.atleast_1d(node.dilation).tolist()),
                                               groups=int(node.groups))
        return lambda x: conv(x, w, **args)
    kernel = tuple(int(v) for v in np.broadcast_to(node.kernel_size, (2,)))
    args = dict(stride=tuple(int(v) for v in np.broadcast_to(node.stride, (2,))),
                padding=tuple(int(v) for v in np.broadcast_to(node.padding, (2,))))
    if k == "AvgPool2d":
        return lambda x: F.avg_pool2d(x, kernel, **args)

    def sum_pool(x):
        ones = torch.ones(x.shape[1], 1, *kernel, dtype=x.dtype)
        return F.conv2d(x, ones, groups=x.shape[1], **args)
    return sum_pool


def run_graph(graph, network, x, dtype=torch.float64) -> dict:
    """Run ``graph`` on inputs ``x[T, B, *input shape]`` with ``network = nir_to_network(graph, ...)``'s neurons.

    Returns ``{neuron node: spikes [T, B, n]}`` as numpy booleans; for a LI, CubaLI or I node its output,
    the membrane ``v [T, B, n]`` (float).
    """
    nir_nodes, edges = flat_graph(graph)
    inputs = [n for n, v in nir_nodes.items() if type(v).__name__ == "Input"]
    back = back_edges(list(nir_nodes), edges, inputs)
    order = _topological(list(nir_nodes), [e for e in edges if e not in back])
    shapes = network.metadata["shapes"]
    ops = {n: _op(v, dtype) for n, v in nir_nodes.items() if n in order and type(v).__name__ not in
           NEURON_KINDS + ("Input", "Output")}
    cells = {}
    for pop in network.populations:
        if pop.model == "lif":
            coef = LIFCoef.from_matrix(lif.discretize(pop.params, network.dt, pop.reset), dtype)
            cells[pop.name] = (coef, pop.reset, _gain(nir_nodes[pop.name], network, pop.name, dtype),
                               pop.initial.get("v"))
    steps, batch = x.shape[:2]
    x = torch.as_tensor(x, dtype=dtype)
    prev, history, state, spikes = {}, {}, {}, {n: [] for n in cells}
    for t in range(steps):
        out = {}
        for name in order:
            node = nir_nodes[name]
            k = type(node).__name__
            if k == "Input":
                out[name] = x[t]
                continue
            if k == "Output":
                continue
            terms = [(out if (p, name) not in back else prev).get(p) for p in (a for a, b in edges if b == name)]
            terms = [v for v in terms if v is not None]
            total = sum(terms[1:], terms[0]) if terms else None
            if k in NEURON_KINDS:
                coef, reset, gain, v0 = cells[name]
                st = state.get(name) or _initial(coef, batch, v0, dtype)
                current = torch.zeros(batch, gain.numel(), dtype=dtype) if total is None else total.reshape(batch, -1)
                s, state[name] = lif_step(current * gain, st, coef, reset)
                readout = k in READOUT_KINDS
                spikes[name].append(state[name].v.detach().numpy().copy() if readout else s.detach().numpy() > 0)
                out[name] = s.reshape(batch, *shapes[name])
            elif total is None:
                continue
            elif k == "Delay":
                out[name] = _delayed(history.setdefault(name, []), total, node, network.dt)
            else:
                out[name] = ops[name](total)
        prev = out
    return {n: np.stack(v) for n, v in spikes.items()}


def _initial(coef, batch, v0, dtype):
    """The population's initial state: at rest, or its ``initial["v"]``."""
    st = initial_state(coef, (batch,))
    return st if v0 is None else st._replace(v=_t(v0, dtype).expand(batch, -1).clone())


def _gain(node, network, name, dtype):
    """The input factor of a neuron node (as :func:`deployment.nirio.neurons.neuron_params` gives it)."""
    from deployment.nirio.neurons import neuron_params

    pop = network.population(name)
    if "neuro_v_th" in (node.metadata or {}):
        return torch.ones(pop.size, dtype=dtype)
    _, _, gain = neuron_params(node, pop.size, network.dt, "nir", name)
    return _t(gain, dtype)


def _delayed(buffer, value, node, dt):
    """``y[t] = x[t - d]`` per element, ``d = round(delay / dt)`` (zero before the first input)."""
    d = np.rint(np.broadcast_to(np.asarray(node.delay, np.float64), value.shape[1:]) / dt).astype(int)
    buffer.append(value)
    y = torch.zeros_like(value)
    for steps in np.unique(d):
        if steps < len(buffer):
            mask = torch.as_tensor(d == steps)
            y = torch.where(mask, buffer[-1 - steps], y)
    return y


def _topological(names, edges):
    indeg = {n: 0 for n in names}
    for _, b in edges:
        indeg[b] += 1
    ready, out = [n for n in names if indeg[n] == 0], []
    while ready:
        n = ready.pop(0)
        out.append(n)
        for a, b in edges:
            if a == n:
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
    return out
