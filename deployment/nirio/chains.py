"""The weight nodes a projection was composed from, kept so that export writes them again.

Import multiplies a chain ``source -> n_1 -> ... -> n_k -> neuron`` of NIR weight nodes (Conv, pools,
Flatten, Scale, Delay, Linear/Affine) into one sparse projection ``W = diag(g) M_k ... M_1`` (``g``: the
neuron node's input gain, :func:`deployment.nirio.neurons.neuron_params`). :func:`record` keeps the chain's
description in the projection's metadata (``nir_chain``, JSON) with a sha256 of the synapses it composed to;
:func:`nodes` rebuilds the chain for export while the synapses are unchanged (same sha256), else the exporter
writes the projection as a Linear/Affine.

The exported neuron node has gain 1, so the gain moves into the chain, exactly:

* the chain has one node that mixes values (Linear, Affine, Conv, Scale; Flatten and Delay do not): the gain
  multiplies that node's weights (a Linear/Affine's weight is then the synapse matrix itself,
  ``W = g * W_k``, so it is not stored; a Conv takes it when ``g`` is one value per output channel);
* otherwise a ``Scale`` node with ``g`` ends the chain (``diag(g)`` applied last, as import does).

Either way re-import composes the same products in the same order: the same synapses, bit for bit.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

KEY = "nir_chain"
#: Population metadata: :func:`bias_digest` of the biases import gave it.
BIAS_KEY = "nir_bias_sha256"
MIXING = ("Linear", "Affine", "Conv1d", "Conv2d", "Scale", "SumPool2d", "AvgPool2d")
TUPLES = ("stride", "padding", "dilation", "kernel_size", "input_shape")
NDIM = {"Conv1d": 1, "Conv2d": 2, "SumPool2d": 2, "AvgPool2d": 2}


def _nir():
    import nir

    return nir


def synapse_digest(proj) -> str:
    """sha256 of a projection's active synapses (pre, post, weights, delays) and its receptor."""
    s = proj.active()
    h = hashlib.sha256(f"{s.n_pre},{s.n_post},{proj.receptor}|".encode())
    for a in (s.pre_indices().astype(np.int64), s.indices.astype(np.int64), s.weights.astype(np.float64),
              s.delays.astype(np.int64)):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def bias_digest(params) -> str:
    """sha256 of a population's ``bias`` and ``bias_syn``: as import set them from the chains' biases, or edited."""
    h = hashlib.sha256()
    for key in ("bias", "bias_syn"):
        h.update(np.ascontiguousarray(params[key], np.float64).tobytes())
    return h.hexdigest()


def _plain(value):
    """A NIR field as JSON: arrays as nested lists, dicts by value."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, str):
        return value
    a = np.asarray(value)
    return a.tolist() if a.dtype.kind in "biuf" else str(value)


def chain_of(name, sources, preds) -> list | None:
    """The map nodes from a source to ``name`` (source side first), or None where one has several inputs."""
    path = []
    while name not in sources:
        if len(preds[name]) != 1:
            return None
        path.append(name)
        name = preds[name][0]
    return path[::-1]


def record(nodes, path, in_shapes, gain, dt) -> dict:
    """The JSON description of the chain ``path`` (node names); ``in_shapes``: each node's input shape (no batch).

    A Flatten's ``input_type`` and a Conv's missing ``input_shape`` (snntorch writes None) come from the shapes."""
    mixing = [n for n in path if type(nodes[n]).__name__ in MIXING]
    out = []
    for name, in_shape in zip(path, in_shapes):
        node = nodes[name]
        kind = type(node).__name__
        fields = {f.name: _plain(getattr(node, f.name)) for f in dataclasses.fields(node)
                  if f.init and f.name != "metadata"}
        if kind == "Flatten":
            fields["input_type"] = {"input": [int(d) for d in in_shape]}
        if kind in ("Conv1d", "Conv2d") and fields["input_shape"] is None:
            fields["input_shape"] = [int(d) for d in in_shape[-(np.ndim(node.weight) - 2):]]
        if kind == "Delay":
            fields["delay"] = np.rint(np.asarray(node.delay, np.float64) / dt).astype(np.int64).tolist()
        if kind in ("Linear", "Affine") and mixing == [name]:
            fields["weight"] = "synapses"  # W_k = the synapse matrix / g: written from the synapses
        out.append({"name": name, "kind": kind, "fields": fields})
    g = np.asarray(gain, np.float64)
    return {"nodes": out, "in_shape": [int(d) for d in in_shapes[0]],
            "gain": None if np.all(g == 1) else g.tolist()}


def valid(proj, layout) -> bool:
    """The projection still holds the synapses its chain composed to, and its source keeps the chain's shape."""
    chain = proj.metadata.get(KEY)
    return bool(chain) and chain.get("sha256") == synapse_digest(proj) and \
        tuple(chain["in_shape"]) == tuple(layout)


def nodes(proj, dt_nir: float, post_shape) -> list:
    """``[(name, nir node)]`` of a :func:`valid` projection's chain, the gain folded in (module docstring); its
    biases are the target's (the exporter writes them here only while the target's biases are unchanged)."""
    nir = _nir()
    chain = proj.metadata[KEY]
    gain = None if chain["gain"] is None else np.asarray(chain["gain"], np.float64)
    mixing = [i for i, n in enumerate(chain["nodes"]) if n["kind"] in MIXING]
    out = []
    for i, rec in enumerate(chain["nodes"]):
        kind, fields = rec["kind"], dict(rec["fields"])
        fields = {k: _field(k, v, NDIM.get(kind)) for k, v in fields.items()}
        if kind == "Delay":
            fields["delay"] = np.asarray(rec["fields"]["delay"], np.float64) * dt_nir
        if mixing == [i]:
            gain = _fold(kind, fields, gain, proj, tuple(post_shape))
        out.append((rec["name"], getattr(nir, kind)(**fields)))
    if gain is not None:
        out.append((f"{proj.name}.gain", nir.Scale(scale=gain.reshape(tuple(post_shape)))))
    return out


def _field(key, value, ndim):
    """A recorded field as the NIR node takes it; sizes (stride, kernel, ...) as tuples of ``ndim`` ints (snntorch
    reads a pool's ``tuple(kernel_size)``)."""
    if isinstance(value, dict):
        return {k: np.asarray(v) for k, v in value.items()}
    if key in TUPLES and value is not None and ndim and key != "input_shape":
        return tuple(int(v) for v in np.broadcast_to(value, (ndim,)))
    if key in TUPLES and isinstance(value, list):
        return tuple(int(v) for v in value)
    if key in TUPLES + ("groups", "start_dim", "end_dim") and isinstance(value, (int, float)):
        return int(value)
    return value if value is None or isinstance(value, str) else np.asarray(value)


def _fold(kind, fields, gain, proj, post_shape):
    """Multiply the chain's one mixing node by ``gain`` in place; the gain left over (None: all folded)."""
    g = np.ones(proj.synapses.n_post) if gain is None else gain
    if kind in ("Linear", "Affine") and isinstance(fields["weight"], str):
        s = proj.active()
        w = np.zeros((s.n_post, s.n_pre))
        w[s.indices, s.pre_indices()] = s.weights
        fields["weight"] = w
    elif gain is None:
        return None
    elif kind in ("Conv1d", "Conv2d"):
        per_channel = g.reshape(fields["weight"].shape[0], -1)
        if np.any(per_channel != per_channel[:, :1]):
            return gain
        c = per_channel[:, 0].reshape((-1,) + (1,) * (fields["weight"].ndim - 1))
        fields["weight"] = fields["weight"] * c
        fields["bias"] = np.asarray(fields["bias"], np.float64) * per_channel[:, 0]
        return None
    elif kind == "Scale":
        fields["scale"] = (np.broadcast_to(fields["scale"], post_shape).ravel() * g).reshape(post_shape)
        return None
    else:
        return gain
    if kind == "Affine":
        fields["bias"] = np.asarray(fields["bias"], np.float64) * g
    return None
