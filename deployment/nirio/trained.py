"""The NIR weight nodes a trained model's projection is composed of: its convolution and pooling again.

:func:`neuro.training.convert.to_network` unrolls a ``Conv`` layer into the CSR and folds ``Pool`` layers into
the next layer's weights, ``M = W P_k ... P_1``, recording the geometry in the projection's metadata (``conv``,
``pool``). :func:`adopt` turns such a record into the chain description import keeps
(:mod:`deployment.nirio.chains`), so that export writes::

    [SumPool2d | AvgPool2d]*  Conv2d                     (the layer after the pools is a Conv)
    [SumPool2d | AvgPool2d]+  Flatten  Linear | Affine   (a Dense, Recurrent or Readout layer)

The last node's weights ``W`` are read back from the synapses: every pooled value ``q`` needs an input ``j`` that
no other window reads (non-overlapping windows, stride >= kernel), so ``W[:, q] = M[:, j] / P[q, j]``; a kernel
from its taps. The chain is adopted only when composing it as import does (:class:`deployment.nirio.maps.Composer`)
gives the projection's synapses bit for bit, and when the target's biases can ride on its last node (one per
channel after a conv; ``bias_syn`` with a synaptic current, ``bias`` without, the other one zero). Otherwise
(pruned or edited synapses, overlapping pools, a division that does not come back exactly) the exporter writes the
projection as a Linear/Affine, as before.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import sparse

from deployment.nirio import chains, maps
from neuro.training.convert import unroll_conv

POOL_NODES = {"sum": "SumPool2d", "avg": "AvgPool2d"}


def _nir():
    import nir

    return nir


def adopt(network):
    """``network`` with a chain record on every projection ``to_network`` recorded as conv/pool layers and that is
    still exactly their composition (module docstring), and the bias digest on its target."""
    pops = {p.name: p for p in network.populations}
    projections, fed = [], set()
    for proj in network.projections:
        meta = proj.metadata
        record = None
        if proj.post not in fed and chains.KEY not in meta and ("conv" in meta or "pool" in meta):
            record = _record(proj, pops[proj.post])
        if record is None:
            projections.append(proj)
            continue
        fed.add(proj.post)
        projections.append(replace(proj, metadata={**meta, chains.KEY: record}))
        post = pops[proj.post]
        pops[post.name] = replace(post, metadata={**post.metadata, chains.BIAS_KEY: chains.bias_digest(post.params)})
    return replace(network, populations=tuple(pops.values()), projections=tuple(projections))


def _record(proj, post) -> dict | None:
    """The chain description of ``proj`` (with the sha256 of its synapses), or None where it is not adopted."""
    s = proj.active()
    conv = proj.metadata.get("conv")
    if proj.receptor != "exc" or np.any(s.delays != 0) or (conv is not None and len(conv["kernel"]) != 2):
        return None
    bias = _riding_bias(post, conv["out_channels"] if conv else None)
    if bias is False:
        return None
    pools = [(f"{proj.name}.pool{i}", _pool_node(geo)) for i, geo in enumerate(proj.metadata.get("pool", []))]
    first = proj.metadata["pool"][0]["input_shape"] if pools else (conv["in_channels"], *conv["input_size"])
    first = tuple(int(d) for d in first)
    if int(np.prod(first)) != s.n_pre:
        return None
    pooled, shapes = _compose(pools, first)
    reps = _representatives(pooled)
    if reps is None:
        return None
    m = sparse.csr_matrix((s.weights, (s.indices, s.pre_indices())), shape=(s.n_post, s.n_pre))
    w = m[:, reps].tocoo()
    w = sparse.coo_matrix((w.data / pooled[np.arange(reps.size), reps].A1[w.col], (w.row, w.col)), shape=w.shape)
    tail = _conv_node(proj.name, w, conv, bias) if conv else _dense_nodes(proj.name, w, shapes[-1], bias)
    if tail is None:
        return None
    nodes = pools + tail
    composed, shapes = _compose(nodes, first)
    if not _same(composed, m):
        return None
    record = chains.record(dict(nodes), [name for name, _ in nodes], shapes[:-1], 1.0, 1.0)
    return {**record, "sha256": chains.synapse_digest(proj)}


def _riding_bias(post, channels):
    """The bias the chain's last node carries (per channel after a conv; None: none), or False where the target's
    biases cannot ride on it: ``bias_syn`` with a synaptic current, ``bias`` without (as import gives them back)."""
    p = post.params
    rides, stays = ("bias_syn", "bias") if np.any(p["tau_syn"] > 0) else ("bias", "bias_syn")
    if np.any(p[stays] != 0):
        return False
    b = np.asarray(p[rides], np.float64)
    if not np.any(b):
        return None
    if channels is None:
        return b.copy()
    per_channel = b.reshape(channels, -1)
    return per_channel[:, 0].copy() if np.all(per_channel == per_channel[:, :1]) else False


def _pool_node(geo):
    return getattr(_nir(), POOL_NODES[geo["kind"]])(kernel_size=np.array(geo["kernel"]),
                                                     stride=np.array(geo["stride"]),
                                                     padding=np.array(geo["padding"]))


def _compose(nodes, in_shape):
    """``(matrix, shapes)``: the nodes multiplied out as import does (``op @ (... (op_1 @ I))``), and the input
    shape of every node followed by the output shape."""
    acc = sparse.identity(int(np.prod(in_shape)), format="csr")
    shapes = [tuple(in_shape)]
    for name, node in nodes:
        op = maps.node_op(node, shapes[-1], 1.0, name)
        acc = op.matrix @ acc
        shapes.append(op.out_shape)
    return acc.tocsr(), shapes


def _representatives(pooled):
    """For every row ``q`` of the pooling matrix an input column read by ``q`` alone, or None if some ``q`` has none
    (overlapping windows)."""
    pooled = pooled.tocsc()
    alone = np.diff(pooled.indptr) == 1
    rows = np.full(pooled.shape[0], -1)
    cols = np.flatnonzero(alone)
    rows_of = pooled.indices[pooled.indptr[cols]]
    rows[rows_of[::-1]] = cols[::-1]  # the first such column of each row
    return None if np.any(rows < 0) else rows


def _conv_node(name, w, conv, bias):
    """``[(name, Conv2d)]`` of a weight matrix ``w[post, input]`` that is the convolution ``conv`` describes, or
    None (a synapse outside the kernel's taps, or two synapses of one tap that differ)."""
    taps = (conv["out_channels"], conv["in_channels"] // conv["groups"], *conv["kernel"])
    pre, post, tap = unroll_conv(np.arange(1, np.prod(taps) + 1, dtype=np.float64).reshape(taps),
                                 conv["input_size"], conv["stride"], conv["padding"], conv["dilation"], conv["groups"])
    which = sparse.csr_matrix((tap, (post, pre)), shape=w.shape)[w.row, w.col].A1.astype(np.int64) - 1
    if w.shape[1] != conv["in_channels"] * int(np.prod(conv["input_size"])) or np.any(which < 0):
        return None
    kernel = np.zeros(int(np.prod(taps)))
    kernel[which] = w.data
    if not np.array_equal(kernel[which], w.data):
        return None
    node = _nir().Conv2d(input_shape=tuple(conv["input_size"]), weight=kernel.reshape(taps),
                         stride=tuple(conv["stride"]), padding=tuple(conv["padding"]), dilation=tuple(conv["dilation"]),
                         groups=conv["groups"], bias=np.zeros(taps[0]) if bias is None else bias)
    return [(name, node)]


def _dense_nodes(name, w, pooled_shape, bias):
    """``[Flatten, Linear | Affine]`` of a weight matrix ``w[post, pooled]``."""
    nir = _nir()
    dense = w.toarray()
    flatten = nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array(pooled_shape)})
    node = nir.Linear(weight=dense) if bias is None else nir.Affine(weight=dense, bias=bias)
    return [(f"{name}.flatten", flatten), (name, node)]


def _same(a, b) -> bool:
    """Two sparse matrices with the same nonzero entries, bit for bit."""
    a, b = a.tocsr(), b.tocsr()
    for x in (a, b):
        x.eliminate_zeros()
        x.sort_indices()
    return a.shape == b.shape and np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices) \
        and np.array_equal(a.data, b.data)
