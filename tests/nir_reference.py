"""An independent float64 execution of a flat NIR graph: NIR's equations, forward Euler at ``dt``.

Written from the NIR node definitions, sharing no code with ``deployment``: per step, nodes in
topological order; an edge closing a cycle carries the previous step's output (at the first step an
Affine's output on no spikes, its bias)::

    LIF      v += dt/tau (v_leak - v + r x)
    CubaLIF  I += dt/tau_syn (-I + w_in x);  v += dt/tau_mem (v_leak - v + r I)   (the new I)
    IF       v += r x                         Threshold  z = x > threshold
    z = v > v_threshold (v >= v_threshold with at_threshold=True, sinabs's rule)
    reset 'zero': v = v_reset;  'subtract': v -= v_threshold - v_reset
    LI, CubaLI, I: the same equations as LIF, CubaLIF, IF without threshold and reset; the output is v
    Delay    y[t] = x[t - d], d = round(delay / dt) per element (0 before the first step)
"""

import numpy as np
import torch
import torch.nn.functional as F

NON_SPIKING = ("LI", "CubaLI", "I")


def _cycle_edges(nodes, edges, start):
    succ = {n: [b for a, b in edges if a == n] for n in nodes}
    on_stack, done, back = set(), set(), set()

    def visit(n):
        on_stack.add(n)
        for m in succ[n]:
            if m in on_stack:
                back.add((n, m))
            elif m not in done:
                visit(m)
        on_stack.discard(n)
        done.add(n)

    visit(start)
    return back


def _apply(node, x, dt, history):
    k = type(node).__name__
    t = torch.as_tensor(x)
    if k == "Linear":
        return node.weight @ x.ravel()
    if k == "Affine":
        return node.weight @ x.ravel() + node.bias
    if k == "Scale":
        return node.scale * x
    if k == "Flatten":
        return x.ravel()
    if k == "Delay":
        history.append(x)
        steps = np.rint(np.broadcast_to(np.asarray(node.delay, float), x.shape) / dt).astype(int)  # per element
        past = np.stack(history[::-1] + [np.zeros_like(x)] * max(0, int(steps.max()) + 1 - len(history)))  # x[t - s]
        return np.take_along_axis(past, steps[None], 0)[0]
    if k in ("Conv1d", "Conv2d"):
        conv = F.conv1d if k == "Conv1d" else F.conv2d
        args = {k: tuple(np.atleast_1d(getattr(node, k)).tolist()) for k in ("stride", "padding", "dilation")}
        w, b = (torch.as_tensor(np.asarray(v, np.float64)) for v in (node.weight, node.bias))
        y = conv(t[None], w, b, groups=int(node.groups), **args)
        return y[0].numpy()
    if k == "SumPool2d":
        ones = torch.ones(t.shape[0], 1, *node.kernel_size, dtype=t.dtype)
        return F.conv2d(t[None], ones, stride=tuple(node.stride), padding=tuple(node.padding),
                        groups=t.shape[0])[0].numpy()
    if k == "AvgPool2d":
        return F.avg_pool2d(t[None], tuple(node.kernel_size), tuple(node.stride), tuple(node.padding))[0].numpy()
    raise NotImplementedError(k)


def _neuron(node, x, state, dt, reset, at_threshold):
    k = type(node).__name__
    above = np.greater_equal if at_threshold else np.greater
    if k == "Threshold":
        return above(x.ravel(), np.ravel(node.threshold)).astype(float).reshape(np.shape(node.threshold))
    v = state.setdefault("v", np.zeros(x.size))
    x = x.ravel()
    if k in ("LIF", "LI"):
        v = v + dt / node.tau.ravel() * (node.v_leak.ravel() - v + node.r.ravel() * x)
    elif k in ("CubaLIF", "CubaLI"):
        i = state.get("i", np.zeros(x.size))
        i = i + dt / node.tau_syn.ravel() * (-i + node.w_in.ravel() * x)
        state["i"] = i
        v = v + dt / node.tau_mem.ravel() * (node.v_leak.ravel() - v + node.r.ravel() * i)
    elif k in ("IF", "I"):
        v = v + node.r.ravel() * x
    if k in NON_SPIKING:
        state["v"] = v
        return v.reshape(np.shape(node.r))
    z = above(v, node.v_threshold.ravel())
    if reset == "zero":
        v = np.where(z, node.v_reset.ravel(), v)
    else:
        v = v - z * (node.v_threshold.ravel() - node.v_reset.ravel())
    state["v"] = v
    return z.astype(float).reshape(np.shape(node.v_threshold))


def run(graph, x, dt=1e-4, reset="zero", at_threshold=False):
    """Spikes ``{neuron node: [T, n] bool}`` of ``graph`` on one input sequence ``x[T, *input shape]``; for a
    LI, CubaLI or I node its output ``v`` ``[T, n]``."""
    nodes, edges = graph.nodes, graph.edges
    start = next(n for n, v in nodes.items() if type(v).__name__ == "Input")
    back = _cycle_edges(list(nodes), edges, start)
    forward = [e for e in edges if e not in back]
    order, seen = [], set()

    def place(n):
        if n in seen:
            return
        seen.add(n)
        for a, b in forward:
            if b == n:
                place(a)
        order.append(n)

    for n in nodes:
        place(n)
    neurons = [n for n, v in nodes.items() if type(v).__name__ in ("LIF", "CubaLIF", "IF", "Threshold") + NON_SPIKING]
    states, history = {n: {} for n in nodes}, {n: [] for n in nodes}
    prev, out = {}, {n: [] for n in neurons}
    for t in range(len(x)):
        now = {}
        for n in order:
            node = nodes[n]
            if type(node).__name__ == "Input":
                now[n] = np.asarray(x[t], np.float64)
                continue
            terms = [prev.get(a, getattr(nodes[a], "bias", None)) if (a, n) in back else now.get(a)
                     for a, b in edges if b == n]  # at t = 0 a recurrent Affine sees no spikes: its bias
            terms = [v for v in terms if v is not None]
            if type(node).__name__ == "Output" or not terms:
                continue
            total = terms[0]
            for v in terms[1:]:
                total = total + v.reshape(total.shape)
            if n in out:
                now[n] = _neuron(node, total, states[n], dt, reset, at_threshold)
                out[n].append(now[n].ravel() if type(node).__name__ in NON_SPIKING else now[n] > 0)
            else:
                now[n] = _apply(node, total, dt, history[n])
        prev = now
    return {n: np.array(v) for n, v in out.items()}
