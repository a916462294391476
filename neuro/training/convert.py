"""Convert a trained :class:`~neuro.training.model.SpikingNet` into a :class:`neuro.Network`.

The event simulator then produces the same spikes as the torch forward pass:

* input spikes enter through a ``spike_source`` population ``input``;
* each layer becomes a LIF population ``layer<i>`` with the cell's exact
  per-neuron parameters (``tau = exp(log_tau)`` as torch computes it) and its
  reset mode; the synapse bias ``b`` becomes ``bias_syn`` (a constant synaptic
  current), or the neuron ``bias`` when ``tau_syn = 0`` (the default; the same);
* feed-forward weights ``W[post, pre]`` become a projection with delay 0
  (layers within a step have no delay in torch; allowed on acyclic paths),
  a convolution is unrolled into its sparse ``[post, pre]`` synapse list, and
  a recurrent ``nn.Linear`` becomes a projection with delay 1;
* a :class:`~neuro.training.pooling.Pool` (no neurons) is folded into the next layer's weights:
  ``W' = W P_k ... P_1`` from the population before the pools (each ``P`` the pool as a sparse matrix,
  :func:`pool_matrix`), the pools recorded in the projection's metadata (``pool``) for NIR export;
* the non-spiking readout keeps its unreachable threshold; record its ``v``
  (``record_state``) to read the logits.

Only our layers, ``Pool`` and ``nn.Flatten`` convert; anything else raises ``ValueError``.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from scipy import sparse
from torch import nn

from neuro.network import Network, Population, Projection
from neuro.simulator import Simulator
from neuro.training.layers import Conv, LIFLayer, Readout, Recurrent
from neuro.training.model import SpikingNet
from neuro.training.pooling import Pool, pool_weight
from synapses import from_coo, from_dense

INPUT = "input"


def layer_name(index: int) -> str:
    return f"layer{index}"


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def cell_params(cell, synapse_bias=None, where: str = "layer") -> dict:
    """The per-neuron LIF parameters of a :class:`~neurons.lif_torch.LIFCell` as torch uses them.

    ``synapse_bias`` (one value per neuron) feeds the synaptic current: it becomes ``bias_syn``, or the neuron
    ``bias`` where ``tau_syn = 0`` (the same thing; Lava exports only the latter).
    """
    params = {"tau_mem": np.exp(_array(cell.log_tau_mem)), "tau_syn": np.exp(_array(cell.log_tau_syn)),
              "v_th": _array(cell.v_th), "v_reset": _array(cell.v_reset), "v_rest": _array(cell.v_rest),
              "bias": _array(cell.bias), "bias_syn": _array(cell.bias_syn), "t_ref": _array(cell.n_ref) * cell.dt}
    if synapse_bias is not None:
        b = np.broadcast_to(np.asarray(synapse_bias, np.float64), params["bias"].shape)
        memory = params["tau_syn"] > 0
        params["bias_syn"] = params["bias_syn"] + np.where(memory, b, 0.0)
        params["bias"] = params["bias"] + np.where(memory, 0.0, b)
    return params


def neuron_params(layer: LIFLayer) -> dict:
    """The per-neuron LIF parameters torch uses, bias of the synapse included."""
    bias = layer.synapse.bias
    if bias is not None:
        bias = _array(bias)
        if isinstance(layer, Conv):
            bias = np.repeat(bias, layer.out_shape[1] * layer.out_shape[2])
    return cell_params(layer.cell, bias, type(layer).__name__)


def unroll_conv(weight, input_size, stride=1, padding=0, dilation=1, groups: int = 1):
    """A 1-d or 2-d convolution of an input ``(C_in, *input_size)`` as synapse lists ``(pre, post, w)``.

    ``weight[c_out, c_in / groups, *kernel]`` as torch's ``conv1d``/``conv2d`` (cross-correlation, zero
    padding): ``y[co, o] = sum_{ci, k} w[co, ci, k] x[g(co) C_in/groups + ci, o stride - padding + k dilation]``.
    Indices are C-order flat (channel, then rows, then columns); the output shape is
    ``conv_shape(...)``. Pooling is a convolution with a constant kernel per channel (``groups = C``).
    """
    weight = np.asarray(weight, np.float64)
    dims = weight.ndim - 2
    size, stride, padding, dilation = (_per_dim(v, dims, what) for v, what in
                                       ((input_size, "input size"), (stride, "stride"), (padding, "padding"),
                                        (dilation, "dilation")))
    c_out, c_in_group = weight.shape[:2]
    kernel = weight.shape[2:]
    if groups < 1 or c_out % groups:
        raise ValueError(f"conv: {c_out} output channels are not divisible into {groups} groups")
    out = conv_shape(size, kernel, stride, padding, dilation)
    grids = np.meshgrid(np.arange(c_out), *(np.arange(n) for n in out), np.arange(c_in_group),
                        *(np.arange(k) for k in kernel), indexing="ij")
    co, o, ci, k = grids[0], grids[1:1 + dims], grids[1 + dims], grids[2 + dims:]
    pos = [o[d] * stride[d] - padding[d] + k[d] * dilation[d] for d in range(dims)]
    ok = np.logical_and.reduce([(p >= 0) & (p < size[d]) for d, p in enumerate(pos)])
    chan = co // (c_out // groups) * c_in_group + ci
    w = weight[(co[ok], ci[ok], *(kd[ok] for kd in k))]
    pre = np.ravel_multi_index((chan[ok], *(p[ok] for p in pos)), (c_in_group * groups, *size))
    post = np.ravel_multi_index((co[ok], *(od[ok] for od in o)), (c_out, *out))
    return pre, post, w


def conv_shape(size, kernel, stride, padding, dilation) -> tuple:
    """Output size per spatial dimension: ``(n + 2 p - d (k - 1) - 1) // s + 1``; at least 1 or ``ValueError``."""
    out = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, s, p, d in zip(size, kernel, stride, padding,
                                                                             dilation))
    if min(out) < 1:
        raise ValueError(f"conv: kernel {tuple(kernel)} does not fit input {tuple(size)} with padding "
                         f"{tuple(padding)} and dilation {tuple(dilation)}")
    return out


def _per_dim(value, dims: int, what: str) -> tuple:
    v = np.atleast_1d(np.asarray(value, np.int64)).ravel()
    if v.size == 1:
        v = np.repeat(v, dims)
    if v.size != dims:
        raise ValueError(f"conv: {what} {value!r} does not have {dims} entries")
    return tuple(int(x) for x in v)


def conv_synapses(conv: nn.Conv2d, input_size, delay: int = 0):
    """Unroll ``conv`` (``nn.Conv1d``/``nn.Conv2d``, zero padding) on an input of ``input_size`` into a CSR."""
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ValueError("only convolutions with numeric zero padding can be converted")
    pre, post, w = unroll_conv(_array(conv.weight), input_size, conv.stride, conv.padding, conv.dilation,
                               conv.groups)
    out = conv_shape(_per_dim(input_size, len(conv.stride), "input size"), conv.kernel_size, conv.stride,
                     conv.padding, conv.dilation)
    return from_coo(pre, post, w, delay, conv.in_channels * int(np.prod(input_size)),
                    conv.out_channels * int(np.prod(out)))


def conv_geometry(conv, input_size) -> dict:
    """What a projection needs to be a convolution again (NIR export): the arguments of :func:`unroll_conv`."""
    return {"in_channels": int(conv.in_channels), "out_channels": int(conv.out_channels),
            "kernel": [int(k) for k in conv.kernel_size], "input_size": [int(n) for n in input_size],
            "stride": [int(v) for v in conv.stride], "padding": [int(v) for v in conv.padding],
            "dilation": [int(v) for v in conv.dilation], "groups": int(conv.groups)}


def pool_matrix(pool: Pool) -> sparse.csr_matrix:
    """``pool`` as a sparse matrix ``[pooled, input]`` (C-order flat indices): :func:`unroll_conv` of its kernel
    (:func:`neuro.training.pooling.pool_weight`, one group per channel), as NIR import builds it."""
    c, h, w = pool.input_shape
    pre, post, weight = unroll_conv(pool_weight(pool.kind, c, pool.kernel), (h, w), pool.stride, pool.padding, 1, c)
    return sparse.csr_matrix((weight, (post, pre)), shape=(int(np.prod(pool.out_shape)), c * h * w))


def pooled_synapses(synapses, pools):
    """``synapses`` (``W[post, pooled]``, delay 0) after ``pools``: ``W P_k (... (P_1 I))``, the order in which NIR
    import composes a chain of nodes (:class:`deployment.nirio.maps.Composer`), so both give the same weights."""
    n_pre = int(np.prod(pools[0].input_shape))
    acc = sparse.identity(n_pre, format="csr")
    for pool in pools:
        acc = pool_matrix(pool) @ acc
    w = sparse.csr_matrix((synapses.weights, (synapses.indices, synapses.pre_indices())),
                          shape=(synapses.n_post, synapses.n_pre))
    m = (w @ acc).tocoo()
    return from_coo(m.col, m.row, m.data, 0, n_pre, synapses.n_post)


def pool_geometry(pool: Pool) -> dict:
    """What NIR export needs to write ``pool`` as a SumPool2d/AvgPool2d node."""
    return {"kind": pool.kind, "kernel": [pool.kernel] * 2, "stride": [pool.stride] * 2,
            "padding": [pool.padding] * 2, "input_shape": list(pool.input_shape)}


def to_network(model: SpikingNet, input_shape, dt: float | None = None) -> Network:
    """The :class:`neuro.Network` equivalent of ``model`` for inputs of shape ``input_shape`` (one sample, one step)."""
    shape = tuple(int(d) for d in input_shape)
    pops = [Population(INPUT, int(np.prod(shape)), "spike_source", metadata={"shape": list(shape)})]
    projs, prev, dts, pools, prev_size = [], INPUT, set(), [], int(np.prod(shape))
    for i, layer in enumerate(model.layers):
        if isinstance(layer, nn.Flatten):
            continue
        if isinstance(layer, Pool):
            before = pools[-1].out_shape if pools else None
            if int(np.prod(layer.input_shape)) != (prev_size if before is None else int(np.prod(before))):
                raise ValueError(f"layer {i} (Pool) takes inputs {layer.input_shape}, but the layer before it gives "
                                 f"{before or prev_size} values")
            pools.append(layer)
            continue
        if not isinstance(layer, LIFLayer):
            raise ValueError(f"layer {i} ({type(layer).__module__}.{type(layer).__name__}) has no Network "
                             "equivalent; only neuro.training layers, Pool and nn.Flatten convert")
        name = layer_name(i)
        dts.add(layer.cell.dt)
        pops.append(Population(name, layer.size, "lif", neuron_params(layer), layer.cell.reset,
                               metadata={"layer": type(layer).__name__, "shape": list(layer.out_shape),
                                         "readout": isinstance(layer, Readout)}))
        geometry = {}
        if isinstance(layer, Conv):
            synapses = conv_synapses(layer.synapse, layer.input_size)
            geometry = {"conv": conv_geometry(layer.synapse, layer.input_size)}
        else:
            synapses = from_dense(_array(layer.synapse.weight), delays=0, keep_zeros=True)
        if pools:
            synapses = pooled_synapses(synapses, pools)
            geometry["pool"] = [pool_geometry(p) for p in pools]
            pools = []
        projs.append(Projection(f"{prev}->{name}", prev, name, synapses, metadata=geometry))
        if isinstance(layer, Recurrent):
            projs.append(Projection(f"{name}->{name}", name, name,
                                    from_dense(_array(layer.recurrent.weight), delays=1, keep_zeros=True)))
        prev, prev_size = name, layer.size
    if pools:
        raise ValueError("a Pool must be followed by a neuro.training layer to convert (it has no neurons; its "
                         "output reaches a population only through the next layer's weights)")
    if len(dts) > 1:
        raise ValueError(f"all layers must share one time step to convert, got dt values {sorted(dts)}")
    dt = dt if dt is not None else (dts.pop() if dts else 1e-3)
    return Network(tuple(pops), tuple(projs), dt, metadata={"source": "neuro.training", "readout": model.readout})


def simulate(net: Network, x_seq, dtype=np.float64) -> dict:
    """Run a converted ``net`` on binary inputs ``x_seq[T, B, ...]`` (one trial per sample) with the event simulator.

    Returns ``{layer population: outputs [T, B, n]}``: spike rasters, and for
    a ``Readout`` population its membrane ``v`` (what torch outputs).
    """
    x = np.asarray(x_seq.detach().cpu() if isinstance(x_seq, torch.Tensor) else x_seq)
    steps, batch = x.shape[:2]
    flat = x.reshape(steps, batch, -1)
    if not np.isin(flat, (0, 1)).all():
        raise ValueError("the event simulator takes binary input spikes; binarise the input (x > 0) first")
    inputs = [{INPUT: flat[:, b] > 0} for b in range(batch)]
    readouts = [p.name for p in net.populations if p.metadata.get("layer") == Readout.__name__]
    record_state = {name: None for name in readouts} or None
    result = Simulator(net, dtype=dtype).run(steps, inputs, record=True, record_state=record_state)
    out = {}
    for pop in net.populations[1:]:
        if pop.name in readouts:
            out[pop.name] = np.moveaxis(result.trace(pop.name, "v"), 0, 1)
        else:
            out[pop.name] = np.stack([result.raster(pop.name, b) for b in range(batch)], axis=1)
    return out


def compare(model: SpikingNet, x_seq: torch.Tensor, dtype=np.float64) -> dict:
    """Torch forward pass (in ``dtype``) against the event simulator (in ``dtype``) on binary ``x_seq[T, B, ...]``.

    Returns per layer population: for spiking layers the fraction of
    ``(step, sample, neuron)`` entries with equal spike/no-spike and the
    number of spikes in torch; for a readout the largest absolute difference of ``v``.
    """
    torch_dtype = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
    model = copy.deepcopy(model).to(torch_dtype)  # the caller's model keeps its dtype
    x = x_seq.to(torch_dtype)
    with torch.no_grad():
        _, outputs = model(x, record=True)
    simulated = simulate(to_network(model, x.shape[2:]), x, dtype=dtype)
    by_name = {layer_name(i): out for i, out in enumerate(outputs)}  # Pool and Flatten layers have no population
    result = {}
    for name, sim in simulated.items():
        out = by_name[name].reshape(sim.shape).cpu().numpy()
        if sim.dtype == bool:
            result[name] = {"spike_agreement": float((sim == (out > 0)).mean()), "spikes": int(out.sum())}
        else:
            result[name] = {"max_abs_diff_v": float(np.abs(sim - out).max())}
    return result
