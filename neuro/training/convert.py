"""Convert a trained :class:`~neuro.training.model.SpikingNet` into a :class:`neuro.Network`.

The event simulator then produces the same spikes as the torch forward pass:

* input spikes enter through a ``spike_source`` population ``input``;
* each layer becomes a LIF population ``layer<i>`` with the cell's exact
  per-neuron parameters (``tau = exp(log_tau)`` as torch computes it) and its
  reset mode; the synapse bias ``b`` becomes the neuron ``bias`` (exact when
  the layer has no synaptic current memory, ``tau_syn = 0``, the default);
* feed-forward weights ``W[post, pre]`` become a projection with delay 0
  (layers within a step have no delay in torch; allowed on acyclic paths),
  a convolution is unrolled into its sparse ``[post, pre]`` synapse list, and
  a recurrent ``nn.Linear`` becomes a projection with delay 1;
* the non-spiking readout keeps its unreachable threshold; record its ``v``
  (``record_state``) to read the logits.

Only our layers and ``nn.Flatten`` convert; anything else raises ``ValueError``.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from neuro.network import Network, Population, Projection
from neuro.simulator import Simulator
from neuro.training.layers import Conv, LIFLayer, Readout, Recurrent
from neuro.training.model import SpikingNet
from synapses import from_coo, from_dense

INPUT = "input"


def layer_name(index: int) -> str:
    return f"layer{index}"


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def cell_params(cell, synapse_bias=None, where: str = "layer") -> dict:
    """The per-neuron LIF parameters of a :class:`~neurons.lif_torch.LIFCell` as torch uses them.

    ``synapse_bias`` (one value per neuron) is added to the neuron bias: exact when ``tau_syn = 0``.
    """
    params = {"tau_mem": np.exp(_array(cell.log_tau_mem)), "tau_syn": np.exp(_array(cell.log_tau_syn)),
              "v_th": _array(cell.v_th), "v_reset": _array(cell.v_reset), "v_rest": _array(cell.v_rest),
              "bias": _array(cell.bias), "t_ref": _array(cell.n_ref) * cell.dt}
    if synapse_bias is not None:
        if np.any(params["tau_syn"] > 0):
            raise ValueError(f"{where}: a synapse bias maps onto the neuron bias only when tau_syn = 0; build "
                             "the layer with bias=False to convert it")
        params["bias"] = params["bias"] + np.asarray(synapse_bias, np.float64)
    return params


def neuron_params(layer: LIFLayer) -> dict:
    """The per-neuron LIF parameters torch uses, bias of the synapse included."""
    bias = layer.synapse.bias
    if bias is not None:
        bias = _array(bias)
        if isinstance(layer, Conv):
            bias = np.repeat(bias, layer.out_shape[1] * layer.out_shape[2])
    return cell_params(layer.cell, bias, type(layer).__name__)


def conv_synapses(conv: nn.Conv2d, input_size, delay: int = 0):
    """Unroll ``conv`` on an ``input_size = (H, W)`` image into a CSR (pre = input pixel, post = output pixel)."""
    if conv.groups != 1 or conv.dilation != (1, 1) or conv.padding_mode != "zeros":
        raise ValueError("only Conv2d with groups=1, dilation=1 and zero padding can be converted")
    h, w = input_size
    c_out, c_in, kh, kw = conv.weight.shape
    (sy, sx), (py, px) = conv.stride, conv.padding
    oh, ow = (h + 2 * py - kh) // sy + 1, (w + 2 * px - kw) // sx + 1
    co, oy, ox, ci, ky, kx = np.meshgrid(*(np.arange(n) for n in (c_out, oh, ow, c_in, kh, kw)), indexing="ij")
    iy, ix = oy * sy - py + ky, ox * sx - px + kx
    ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    weights = _array(conv.weight)[co[ok], ci[ok], ky[ok], kx[ok]]
    pre = (ci[ok] * h + iy[ok]) * w + ix[ok]
    post = (co[ok] * oh + oy[ok]) * ow + ox[ok]
    return from_coo(pre, post, weights, delay, c_in * h * w, c_out * oh * ow)


def to_network(model: SpikingNet, input_shape, dt: float | None = None) -> Network:
    """The :class:`neuro.Network` equivalent of ``model`` for inputs of shape ``input_shape`` (one sample, one step)."""
    shape = tuple(int(d) for d in input_shape)
    pops = [Population(INPUT, int(np.prod(shape)), "spike_source")]
    projs, prev, dts = [], INPUT, set()
    for i, layer in enumerate(model.layers):
        if isinstance(layer, nn.Flatten):
            continue
        if not isinstance(layer, LIFLayer):
            raise ValueError(f"layer {i} ({type(layer).__module__}.{type(layer).__name__}) has no Network "
                             "equivalent; only neuro.training layers and nn.Flatten convert")
        name = layer_name(i)
        dts.add(layer.cell.dt)
        pops.append(Population(name, layer.size, "lif", neuron_params(layer), layer.cell.reset,
                               metadata={"layer": type(layer).__name__, "shape": list(layer.out_shape),
                                         "readout": isinstance(layer, Readout)}))
        if isinstance(layer, Conv):
            synapses = conv_synapses(layer.synapse, layer.input_size)
        else:
            synapses = from_dense(_array(layer.synapse.weight), delays=0, keep_zeros=True)
        projs.append(Projection(f"{prev}->{name}", prev, name, synapses))
        if isinstance(layer, Recurrent):
            projs.append(Projection(f"{name}->{name}", name, name,
                                    from_dense(_array(layer.recurrent.weight), delays=1, keep_zeros=True)))
        prev = name
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
    result = {}
    for out, (name, sim) in zip(outputs, simulated.items()):
        out = out.reshape(sim.shape).cpu().numpy()
        if sim.dtype == bool:
            result[name] = {"spike_agreement": float((sim == (out > 0)).mean()), "spikes": int(out.sum())}
        else:
            result[name] = {"max_abs_diff_v": float(np.abs(sim - out).max())}
    return result
