"""The recurrent part of a :class:`neuro.Network` as one flat synapse table, and network surgery.

The *recurrent populations* are the LIF populations that project to a LIF population
(for an HRSNN: ``exc`` and ``inh``; an output-only readout is not one). They are
numbered globally in the order of ``net.populations``. Every active synapse between
them is one row of the table: its projection, its index in that projection's CSR,
global pre/post neuron, weight and receptor. Pruning steps work on the table and
write back with :func:`with_synapses` (mask + weights) and :func:`subnetwork`
(removes neurons).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from neuro.network import Network
from neurons import lif
from synapses.csr import CSR


@dataclass(frozen=True, eq=False)
class Recurrent:
    """Flat view of the recurrent synapses of a network (module docstring)."""

    populations: tuple
    layout: dict  # population -> (lo, hi) global range
    coef: np.ndarray  # [9, n] discretised LIF coefficients (neurons.lif.discretize)
    proj: np.ndarray  # per synapse: index into net.projections
    syn: np.ndarray  # per synapse: index into that projection's CSR arrays
    pre: np.ndarray
    post: np.ndarray
    weight: np.ndarray
    inhibitory_receptor: np.ndarray  # bool per synapse: feeds the 'inh' channel
    delay: np.ndarray

    @property
    def n(self) -> int:
        return self.coef.shape[1]

    @property
    def n_synapses(self) -> int:
        return len(self.weight)

    def dense(self, receptor: str | None = None, weight=None) -> np.ndarray:
        """Dense ``W[post, pre]`` of one receptor (``'exc'``/``'inh'``) or of both summed."""
        w = self.weight if weight is None else np.asarray(weight, float)
        sel = np.ones(len(w), bool) if receptor is None else self.inhibitory_receptor == (receptor == "inh")
        out = np.zeros((self.n, self.n))
        np.add.at(out, (self.post[sel], self.pre[sel]), w[sel])
        return out


def recurrent_populations(net: Network) -> tuple:
    lif_pops = {p.name for p in net.populations if p.model == "lif"}
    senders = {p.pre for p in net.projections if p.pre in lif_pops and p.post in lif_pops}
    return tuple(p.name for p in net.populations if p.name in senders)


def recurrent_of(net: Network) -> Recurrent:
    """The :class:`Recurrent` view of ``net``; ``ValueError`` if it has no recurrent LIF populations."""
    names = recurrent_populations(net)
    if not names:
        raise ValueError("the network has no recurrent LIF populations (no LIF population projects to a LIF one)")
    sizes = [net.population(n).size for n in names]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    layout = {n: (int(bounds[i]), int(bounds[i + 1])) for i, n in enumerate(names)}
    coef = np.concatenate([lif.discretize(net.population(n).params, net.dt, net.population(n).reset)
                           for n in names], axis=1)
    cols = {k: [] for k in ("proj", "syn", "pre", "post", "weight", "inh", "delay")}
    for j, p in enumerate(net.projections):
        if p.pre not in layout or p.post not in layout:
            continue
        idx = np.flatnonzero(p.mask)
        s = p.synapses
        cols["proj"].append(np.full(len(idx), j))
        cols["syn"].append(idx)
        cols["pre"].append(s.pre_indices()[idx] + layout[p.pre][0])
        cols["post"].append(s.indices[idx].astype(np.int64) + layout[p.post][0])
        cols["weight"].append(s.weights[idx])
        cols["inh"].append(np.full(len(idx), p.receptor == "inh"))
        cols["delay"].append(s.delays[idx])
    c = {k: np.concatenate(v) for k, v in cols.items()}
    return Recurrent(names, layout, coef, c["proj"], c["syn"], c["pre"], c["post"], c["weight"], c["inh"],
                     c["delay"])


def with_synapses(net: Network, rec: Recurrent, keep, weight=None) -> Network:
    """``net`` with recurrent synapse ``q`` of ``rec`` masked out where ``keep[q]`` is false and its
    weight set to ``weight[q]`` (unchanged when ``weight`` is None)."""
    keep = np.asarray(keep, bool)
    weight = rec.weight if weight is None else np.asarray(weight, float)
    if keep.shape != (rec.n_synapses,) or weight.shape != (rec.n_synapses,):
        raise ValueError(f"keep and weight need one entry per recurrent synapse ({rec.n_synapses})")
    projs = list(net.projections)
    for j in np.unique(rec.proj):
        sel = rec.proj == j
        p = projs[j]
        mask = p.mask.copy()
        mask[rec.syn[sel]] = keep[sel]
        w = p.synapses.weights.copy()
        w[rec.syn[sel]] = weight[sel]
        projs[j] = replace(p, synapses=p.synapses.with_weights(w), mask=mask)
    return net.with_projections(projs)


def subnetwork(net: Network, keep: dict) -> Network:
    """The network restricted to the neurons ``keep[pop]`` (boolean mask per population; populations
    not named keep all neurons). Synapses to or from removed neurons disappear; masks carry over;
    per-neuron lists in population metadata are subset too."""
    masks = {}
    for p in net.populations:
        m = np.ones(p.size, bool) if p.name not in keep else np.asarray(keep[p.name], bool)
        if m.shape != (p.size,):
            raise ValueError(f"keep mask of {p.name!r} has shape {m.shape}, expected ({p.size},)")
        if not m.any():
            raise ValueError(f"pruning would remove every neuron of population {p.name!r}")
        masks[p.name] = m
    unknown = sorted(set(keep) - set(masks))
    if unknown:
        raise ValueError(f"keep names unknown population(s) {unknown}")
    pops = []
    for p in net.populations:
        m = masks[p.name]
        meta = {k: (np.asarray(v)[m].tolist() if isinstance(v, list) and len(v) == p.size else v)
                for k, v in p.metadata.items()}
        pops.append(replace(p, size=int(m.sum()), params={k: v[m] for k, v in p.params.items()},
                            initial={k: v[m] for k, v in p.initial.items()}, metadata=meta))
    projs = []
    for p in net.projections:
        s = p.synapses
        pre_new = np.cumsum(masks[p.pre]) - 1
        post_new = np.cumsum(masks[p.post]) - 1
        pre = s.pre_indices()
        sel = masks[p.pre][pre] & masks[p.post][s.indices]
        counts = np.bincount(pre_new[pre[sel]], minlength=int(masks[p.pre].sum()))
        csr = CSR(int(masks[p.pre].sum()), int(masks[p.post].sum()), np.concatenate([[0], np.cumsum(counts)]),
                  post_new[s.indices[sel]], s.weights[sel], s.delays[sel])
        projs.append(replace(p, synapses=csr, mask=p.mask[sel]))
    return replace(net, populations=tuple(pops), projections=tuple(projs))


def with_params(net: Network, rec: Recurrent, **params) -> Network:
    """``net`` with per-neuron LIF parameters of the recurrent populations replaced by global arrays
    (``params[name][global index]``)."""
    pops = []
    for p in net.populations:
        if p.name in rec.layout:
            lo, hi = rec.layout[p.name]
            p = replace(p, params={**p.params, **{k: np.asarray(v, float)[lo:hi] for k, v in params.items()}})
        pops.append(p)
    return replace(net, populations=tuple(pops))
