"""The inference network of a trained :class:`~neuro.hlop.model.SpikingMLP` as a :class:`neuro.Network`.

The lateral circuits only shape training (they project gradients); inference is the MLP
itself (:mod:`neuro.hlop.model`)::

    input  spike_source                     (spike inputs: binary event frames)
    hidden<l>  LIF, the cell's parameters, soft reset; W_l with delay 0
    readout    z[t] = W_L a[t] + b: a LIF without memory (tau_mem = dt/1000), reset 'none' and an
               unreachable threshold, so v[t] = z[t]; logits = mean_t v[t]

It runs in the event simulator, in fixed point and on Lava (``neuro verify``). Lava takes
spikes: a model trained on graded inputs (constant pixel currents, clipped event counts
above 1) converts, but only binary inputs reproduce its training-time behaviour there.
"""

from __future__ import annotations

import numpy as np

from neuro.hlop.model import SpikingMLP
from neuro.network import Network, Population, Projection
from neuro.training.convert import INPUT, cell_params
from neuro.training.layers import READOUT_THRESHOLD
from synapses import from_dense


def to_network(model: SpikingMLP) -> Network:
    """The :class:`neuro.Network` of ``model`` (module docstring)."""
    dt = model.cells[0].dt if len(model.cells) else 1e-3
    pops, projs, prev = [Population(INPUT, model.sizes[0], "spike_source")], [], INPUT
    for i, layer in enumerate(model.layers):
        weights = layer.weight.detach().double().cpu().numpy()
        bias = None if layer.bias is None else layer.bias.detach().double().cpu().numpy()
        if i < len(model.cells):
            name = f"hidden{i}"
            cell = model.cells[i]
            pops.append(Population(name, cell.size, "lif", cell_params(cell, bias, name), cell.reset,
                                   metadata={"layer": "Dense"}))
        else:
            name = "readout"
            params = {"tau_mem": dt / 1000, "tau_syn": 0.0, "v_th": READOUT_THRESHOLD,  # exp(-1000) = 0: no memory
                      "bias": np.zeros(layer.out_features) if bias is None else bias}
            pops.append(Population(name, layer.out_features, "lif", params, "none",
                                   metadata={"layer": "Readout", "readout": True}))
        projs.append(Projection(f"{prev}->{name}", prev, name, from_dense(weights, delays=0, keep_zeros=True)))
        prev = name
    return Network(tuple(pops), tuple(projs), dt, metadata={"source": "neuro.hlop", "readout": "membrane"})
