"""NIR export and import of a :class:`~neuro.network.Network` (the ``nir`` package, HDF5 files).

NIR describes continuous-time nodes; every NIR consumer (snntorch, Lava's
``nir_to_lava``) discretises them with forward Euler at a step ``dt``
(NIR's default and snntorch's: 1e-4 s). Both directions use that reading::

    LIF:     v[t] = a v[t-1] + (1 - a) v_leak + g x[t],  a = 1 - dt/tau,   g = r dt / tau
    CubaLIF: i[t] = b i[t-1] + (w_in dt / tau_syn) x[t],  b = 1 - dt/tau_syn;  v gets (r dt / tau_mem) i[t]

which maps onto neuro's LIF with ``tau = -dt / ln(a)`` (exact decays), the gains folded into
the incoming weights, ``v_rest = v_leak``. Export writes ``tau = dt_nir / (1 - a)`` and
``r = tau / dt_nir`` (gain 1), a bias as ``v_leak = v_rest + bias / (1 - a)``.

A non-spiking readout population (reset ``none``, marked as neuro.training's ``Readout``, feeding nothing) is
written as a LI, CubaLI or (no leak, no current) I node; a spiking one without leak or current as IF, one
without any memory as Threshold. A projection imported from a chain of weight nodes is written as that chain
again while its synapses are unchanged (:mod:`deployment.nirio.chains`), a trained model's conv and pool layers as
Conv2d and SumPool2d/AvgPool2d nodes (:mod:`deployment.nirio.trained`), a projection with one delay per target
neuron as a Linear/Affine then a Delay node.
What NIR cannot express is kept in node metadata
(``neuro_*`` keys) and restored on import: the reset mode (NIR only has ``v_reset``), MPR, refractory time,
the exact time constants and dt, a second (inhibitory) synaptic channel, per-synapse delays and the receptor.
Pruned synapses (mask False) are not exported.

Import: neuron nodes (LIF, CubaLIF, IF, Threshold, LI, CubaLI, I) become populations starting at ``v = 0`` as
NIR's readers do, input nodes spike sources; the weight nodes between them (Linear, Affine, Scale, Flatten,
Conv1d/2d, Sum/AvgPool2d, Delay) are composed into one sparse projection per source, a delay per synapse (per
source and delay where two delays reach one pair of neurons; :mod:`deployment.nirio.maps`), an Affine's bias into
the target's ``bias_syn`` (``bias`` without a synaptic current). The reset convention (``convention=``:
``nir``, ``subtract``, ``snntorch``, ``sinabs``: subtract with a spike at ``v >= v_threshold``;
:mod:`deployment.nirio.neurons`) is read from the metadata when a producer wrote it, else ``nir``; so is a
``threshold_comparison`` of ``">="``. LI, CubaLI and I become neuro's non-spiking readout (reset ``none``) and
may feed Output nodes only. Edges inside one step have no delay; a projection closing a cycle (a depth-first back
edge from the inputs) gets at least 1 step, as snntorch's recurrent layers.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import sparse

from deployment.nirio import chains, maps, trained
from deployment.nirio.graph import back_edges, flat_graph
from deployment.nirio.neurons import CONVENTIONS, NEURON_KINDS, READOUT_KINDS, convention_of, neuron_params, non_strict
from deployment.quantize import is_readout
from neuro.io import atomic_path
from neuro.network import Network, Population, Projection
from neurons import lif
from synapses.csr import CSR, from_coo

NIR_DT = 1e-4
DIGEST = "neuro_sha256"
LIF_PARAMS = tuple(lif.LIF.params)


def _nir():
    import nir

    return nir


def _step(value, what: str) -> float:
    """``value`` as a time step: a finite number of seconds > 0."""
    try:
        dt = float(value)
    except (TypeError, ValueError):
        dt = float("nan")
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"{what} must be a finite number of seconds > 0, got {value!r}")
    return dt


# --- export ------------------------------------------------------------------------------------------------
def _neuron_node(pop: Population, net: Network, dt_nir: float, shape: tuple, bias_in_input: bool = False):
    """``bias_in_input``: the bias travels as the bias of the first incoming Affine/Conv2d (:func:`_input_bias`),
    the form snntorch and most readers take, so ``v_leak`` is the resting potential."""
    nir = _nir()
    p = pop.params
    coef = lif.discretize(p, net.dt, pop.reset)
    a_mem = coef[lif.A_MEM]
    bias = p["bias"] + np.where(coef[lif.A_SYN] == 0, p["bias_syn"], 0.0)  # no current memory: the same
    if bias_in_input:
        bias = np.zeros_like(bias)
    with np.errstate(divide="ignore"):
        tau = np.where(a_mem < 1, dt_nir / (1 - a_mem), np.inf)
        v_leak = np.where(a_mem < 1, p["v_rest"] + bias / np.where(a_mem < 1, 1 - a_mem, 1), p["v_rest"])
    readout = is_readout(net, pop)
    current = _has_current(pop, net.dt)
    kind = _spiking_kind(pop, a_mem, bias, current, readout)
    unsupported = []
    if np.any((a_mem >= 1) & (bias != 0)):
        unsupported.append("bias of a non-leaky neuron")
    if pop.reset == "none" and not readout and kind != "Threshold":
        unsupported.append("no reset (reset 'none')")
    if np.any(p["t_ref"] > 0):
        unsupported.append("refractory period")
    if np.any(p["tau_syn_inh"] != p["tau_syn"]):
        unsupported.append("second synaptic channel (tau_syn_inh)")
    if pop.metadata.get("mpr") or pop.metadata.get("use_mpr"):
        unsupported.append("MPR")
    meta = {f"neuro_{k}": np.asarray(v) for k, v in p.items()}
    if pop.reset != "none":
        meta["reset_method"] = {"hard": "zero", "soft": "subtract"}[pop.reset]
    meta.update(neuro_reset=pop.reset, neuro_mpr=int(bool(pop.metadata.get("mpr") or pop.metadata.get("use_mpr"))),
                neuro_unsupported="; ".join(unsupported))
    if kind == "IF":
        return nir.IF(r=np.ones(shape), v_threshold=np.array(p["v_th"]).reshape(shape),
                      v_reset=np.array(p["v_reset"]).reshape(shape), metadata=meta)
    if kind == "Threshold":
        return nir.Threshold(threshold=np.array(p["v_th"]).reshape(shape), metadata=meta)
    common = dict(r=(tau / dt_nir).reshape(shape), v_leak=v_leak.reshape(shape), metadata=meta)
    if readout and not current and np.all(a_mem >= 1):
        return nir.I(r=np.ones(shape), metadata=meta)
    if not readout:
        common.update(v_threshold=np.array(p["v_th"]).reshape(shape), v_reset=np.array(p["v_reset"]).reshape(shape))
    if not current:
        return (nir.LI if readout else nir.LIF)(tau=tau.reshape(shape), **common)
    a_syn = coef[lif.A_SYN]
    tau_syn = np.where(a_syn < 1, dt_nir / (1 - a_syn), np.inf)
    return (nir.CubaLI if readout else nir.CubaLIF)(tau_syn=tau_syn.reshape(shape), tau_mem=tau.reshape(shape),
                                                    w_in=(tau_syn / dt_nir).reshape(shape), **common)


def _spiking_kind(pop, a_mem, bias, current, readout) -> str | None:
    """``'IF'`` (no leak), ``'Threshold'`` (no memory: ``v = x``, so the reset changes nothing) or None (LIF,
    CubaLIF) for a spiking population without synaptic current, refractory time or a bias left in ``v``."""
    p = pop.params
    if readout or current or np.any(p["t_ref"] > 0) or np.any(bias != 0):
        return None
    if np.all(a_mem >= 1) and pop.reset != "none":
        return "IF"
    if np.all(a_mem == 0) and np.all(p["v_rest"] == 0):
        return "Threshold"
    return None


def _has_current(pop, dt) -> bool:
    """A CubaLIF (synaptic current with memory) rather than a LIF."""
    return bool(np.any(lif.discretize(pop.params, dt, pop.reset)[lif.A_SYN] != 0))


def _chains(network):
    """``(names, layouts)``: the projections written as the chain of weight nodes they were imported from
    (:mod:`deployment.nirio.chains`): synapses unchanged, the target's biases unchanged (they ride on the chain),
    the source in the chain's shape; a source that loses its shape (a projection out of it is no longer a chain)
    invalidates the chains out of it, so this repeats until nothing changes."""
    kept = {p.name for p in network.projections if chains.KEY in p.metadata and
            network.population(p.post).metadata.get(chains.BIAS_KEY) == chains.bias_digest(
                network.population(p.post).params)}
    while True:
        layouts = _layouts(network, kept)
        still = {p.name for p in network.projections if p.name in kept and chains.valid(p, layouts[p.pre])}
        if still == kept:
            return kept, layouts
        kept = still


def _layouts(network, structured) -> dict:
    """Node shape per population: its ``(C, H, W)`` (a conv layer's ``shape`` metadata, an imported node's
    shape) where every projection into it is a Conv2d node or a chain of weight nodes (``structured``; for an
    input: some projection out of it), and no Linear with per-synapse delays leaves it (a Flatten carries no
    delay, a Delay node one per target); flat otherwise."""
    out = {}
    recorded = network.metadata.get("shapes") or {}
    for pop in network.populations:
        shape = tuple(int(d) for d in pop.metadata.get("shape", ()) or recorded.get(pop.name, ()) or ())
        incoming = [p.name for p in network.projections if p.post == pop.name]
        outgoing = [p for p in network.projections if p.pre == pop.name]
        fed = incoming and all(n in structured for n in incoming) if pop.model == "lif" else \
            any(p.name in structured for p in outgoing)
        delayed = any(p.name not in structured and np.any(p.active().delays) and _delay_steps(p) is None
                      for p in outgoing)
        keep = len(shape) > 1 and int(np.prod(shape)) == pop.size and fed and not delayed
        out[pop.name] = shape if keep else (pop.size,)
    return out


def _first_input(network, name):
    return next((p for p in network.projections if p.post == name and p.active().nnz), None)


def _input_bias(network, pop) -> np.ndarray | None:
    """The bias of a LIF population without synaptic memory, as an input bias (per channel after a conv), or
    None (kept in ``v_leak``): readers such as snntorch take biases on Affine/Conv2d nodes, not in ``v_leak``."""
    if pop.model != "lif" or not np.any(pop.params["bias"]) or np.any(pop.params["tau_syn"] > 0):
        return None
    first = _first_input(network, pop.name)
    if first is None or first.pre == pop.name:
        return None
    bias = np.asarray(pop.params["bias"], np.float64)
    if "conv" in first.metadata:
        per_channel = bias.reshape(first.metadata["conv"]["out_channels"], -1)
        return per_channel[:, 0].copy() if np.all(per_channel == per_channel[:, :1]) else None
    return bias


def network_to_nir(network: Network, dt_nir: float | None = None):
    """The NIR graph of ``network`` (module docstring). ``dt_nir``: the Euler step readers assume."""
    nir = _nir()
    dt_nir = network.dt if dt_nir is None else _step(dt_nir, "the NIR dt (--nir-dt)")
    nodes, edges = {}, []
    network = trained.adopt(network)  # a trained model's conv and pool layers: chains of NIR nodes too
    kept, layouts = _chains(network)
    cycle = back_edges([p.name for p in network.populations], [(p.pre, p.post) for p in network.projections],
                       [p.name for p in network.populations if p.model != "lif"])
    chain_fed = {p.post for p in network.projections if p.name in kept}  # their biases ride on the chains
    input_bias = {pop.name: b for pop in network.populations
                  if pop.name not in chain_fed and (b := _input_bias(network, pop)) is not None}
    biases = {proj.name: b for proj in network.projections
              if proj.post not in chain_fed and (b := _node_bias(network, proj, input_bias)) is not None}
    for pop in network.populations:
        if pop.model == "lif":
            nodes[pop.name] = _neuron_node(pop, network, dt_nir, layouts[pop.name],
                                           pop.name in input_bias or pop.name in chain_fed)
        else:
            meta = {"neuro_model": pop.model, **{f"neuro_{k}": np.asarray(v) for k, v in pop.params.items()}}
            nodes[pop.name] = nir.Input(input_type={"input": np.array(layouts[pop.name])}, metadata=meta)
    for proj in network.projections:
        if proj.name in nodes:
            raise ValueError(f"projection name {proj.name!r} is also a population name; NIR needs unique node names")
        source = proj.pre
        if proj.name in kept:  # the weight nodes it was imported from, rebuilt from their description
            for name, node in chains.nodes(proj, dt_nir, layouts[proj.post]):
                name = name if name not in nodes else f"{proj.name}.{name}"
                nodes[name] = node
                edges.append((source, name))
                source = name
            edges.append((source, proj.post))
            continue
        for name, node in _linear_nodes(proj, biases.get(proj.name), layouts[proj.pre], dt_nir, cycle):
            nodes[name] = node
            edges.append((source, name))
            source = name
        edges.append((source, proj.post))
    feeds_other = {p.pre for p in network.projections if p.pre != p.post}
    lif_pops = [p.name for p in network.populations if p.model == "lif"]
    for name in [n for n in lif_pops if n not in feeds_other] or lif_pops[-1:]:
        nodes[f"{name}.output"] = nir.Output(output_type={"output": np.array(layouts[name])})
        edges.append((name, f"{name}.output"))
    meta = {"neuro_format": "neuro.Network", "neuro_dt": network.dt, "dt": dt_nir,
            "neuro_discretisation": "forward Euler at dt: a = 1 - dt/tau; neuro tau = -dt/ln(a)"}
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)
    graph.metadata[DIGEST] = graph_digest(graph)
    return graph


def _node_bias(network, proj, input_bias):
    """The bias carried by ``proj``'s node, the first projection into its target: the target's ``bias_syn``
    (CubaLIF), or its ``bias`` (:func:`_input_bias`); None otherwise."""
    post = network.population(proj.post)
    if _first_input(network, proj.post) is not proj:
        return None
    if post.name in input_bias:
        return input_bias[post.name]
    if np.any(post.params["bias_syn"] != 0) and _has_current(post, network.dt):
        return np.array(post.params["bias_syn"])
    return None


def _delay_steps(proj, cycle=frozenset()) -> np.ndarray | None:
    """The delay of each target neuron in steps, for an excitatory projection with a delay > 0 whose synapses into
    one neuron share one delay: it is written as a Linear/Affine and a Delay node. None otherwise, and for a
    projection that closes a cycle (``(pre, post)`` in ``cycle``) with delay 1 everywhere: readers give a cycle's
    edge that step themselves (snntorch's recurrent layers, neuro's import)."""
    s = proj.active()
    if proj.receptor != "exc" or not np.any(s.delays) or ((proj.pre, proj.post) in cycle and np.all(s.delays == 1)):
        return None
    steps = np.zeros(s.n_post, np.int64)
    steps[s.indices] = s.delays
    return steps if np.array_equal(steps[s.indices], s.delays) else None


def _linear_nodes(proj, bias, pre_layout, dt_nir, cycle) -> list:
    """``[(name, node)]`` from the source on: a Flatten when the source is shaped, a Linear (Affine with a bias) node
    of ``proj``, and a Delay when its delays are one per target neuron (:func:`_delay_steps`).

    Synapse lists, delays and the receptor travel in ``neuro_*`` metadata, except behind a Flatten or before a
    Delay (the Linear is then read as a plain weight matrix, the Delay gives the delays)."""
    nir = _nir()
    steps = _delay_steps(proj, cycle)
    s = proj.active()
    pre = s.pre_indices()
    if np.unique(s.indices.astype(np.int64) * s.n_pre + pre).size != s.nnz:
        raise ValueError(f"projection {proj.name!r} has several synapses between one pair of neurons; "
                         "NIR's Linear holds one weight per pair")
    w = np.zeros((s.n_post, s.n_pre))
    w[s.indices, pre] = s.weights
    if bias is not None and np.size(bias) != s.n_post:  # a conv layer's per-channel bias, unrolled
        bias = np.repeat(bias, s.n_post // np.size(bias))
    out = []
    meta = {"neuro_receptor": proj.receptor, "neuro_pre": pre, "neuro_post": s.indices.astype(np.int64),
            "neuro_weights": s.weights, "neuro_delays": s.delays}
    if len(pre_layout) > 1:  # a dense layer reads a conv layer flattened (C-order)
        out.append((f"{proj.name}.flatten", nir.Flatten(start_dim=0, end_dim=-1,
                                                         input_type={"input": np.array(pre_layout)})))
    if len(pre_layout) > 1 or steps is not None:
        meta = {}
    node = nir.Linear(weight=w, metadata=meta) if bias is None else nir.Affine(weight=w, bias=bias, metadata=meta)
    if steps is None:
        return out + [(proj.name, node)]
    return out + [(f"{proj.name}.weight", node), (proj.name, nir.Delay(delay=steps * dt_nir))]


def graph_digest(graph) -> str:
    """sha256 of every node's parameters and metadata, the edges and the graph metadata (not the digest):
    values as float64 bytes, text as text, so that it survives the HDF5 round trip."""
    h = hashlib.sha256()

    def feed(key, value):
        if isinstance(value, dict):
            for k in sorted(value, key=str):
                feed(f"{key}.{k}", value[k])
            return
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        a = np.asarray(value) if value is not None and not isinstance(value, str) else None
        if a is not None and a.dtype.kind in "biuf":
            h.update(f"{key}{a.shape}|".encode() + np.ascontiguousarray(a, np.float64).tobytes())
        else:
            h.update(f"{key}={value}|".encode())

    for name in sorted(graph.nodes, key=str):
        node = graph.nodes[name]
        fields = {k: v for k, v in vars(node).items() if k != "metadata"}
        feed(f"{name}:{type(node).__name__}", {"fields": fields, "meta": dict(node.metadata or {})})
    feed("graph", {k: v for k, v in (graph.metadata or {}).items() if k != DIGEST})
    h.update(repr(sorted((str(a), str(b)) for a, b in graph.edges)).encode())
    return h.hexdigest()


def export_nir(network: Network, path, dt_nir: float | None = None) -> Path:
    """Write ``network`` as a NIR HDF5 file (atomically)."""
    graph = network_to_nir(network, dt_nir)
    path = Path(path)
    with atomic_path(path, suffix=".nir") as tmp:
        _nir().write(str(tmp), graph)
    return path


# --- import ------------------------------------------------------------------------------------------------
def _shapes(nodes, preds, name, known, busy=()):
    """Output shape of node ``name`` (channels first, no batch), from its parameters or its inputs."""
    nir = _nir()
    if name in known:
        return known[name]
    node = nodes[name]
    if isinstance(node, nir.Input):
        known[name] = tuple(int(d) for d in np.atleast_1d(np.asarray(node.input_type["input"])))
        return known[name]
    own = _own_shape(node)
    if own is not None and type(node).__name__ in NEURON_KINDS:
        known[name] = own
        return own
    inputs = [_shapes(nodes, preds, p, known, busy + (name,)) for p in preds[name] if p not in busy + (name,)]
    inputs = [s for s in inputs if s is not None]
    if not inputs:
        if own is None and name not in busy:
            raise ValueError(f"NIR node {name!r} ({type(node).__name__}): its input shape cannot be found (no "
                             "input reaches it)")
        return own
    in_shape = inputs[0]
    if type(node).__name__ in NEURON_KINDS + ("Delay", "Scale"):
        known[name] = in_shape
    else:
        known[name] = maps.node_op(node, in_shape, 1.0, name).out_shape
    return known[name]


def _own_shape(node):
    """The shape a neuron node's parameters give, or a Conv's ``input_shape``-free output; None if unknown."""
    field = {"LIF": "v_threshold", "CubaLIF": "v_threshold", "IF": "v_threshold", "Threshold": "threshold", "LI": "tau",
             "CubaLI": "tau_mem", "I": "r", "Linear": "weight", "Affine": "weight"}.get(type(node).__name__)
    if field is None:
        return None
    shape = np.shape(getattr(node, field))
    if field == "weight":
        return (int(shape[0]),)
    return tuple(int(d) for d in shape) if int(np.prod(shape)) > 1 else None


def nir_to_network(graph, dt: float | None = None, convention: str | None = None) -> Network:
    """A :class:`Network` from a NIR graph (module docstring); a ``ValueError`` names what is unsupported.

    ``convention=None`` reads each neuron's reset (and ``threshold_comparison``) from its (or the graph's)
    metadata, ``'nir'`` where none is written. ``network.metadata["outputs"]`` lists the populations that feed
    the graph's Output nodes, ``network.metadata["shapes"]`` every population's shape.
    """
    nir = _nir()
    if convention is not None and convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    gmeta = graph.metadata if isinstance(graph.metadata, dict) else {}
    if DIGEST in gmeta and str(gmeta[DIGEST]) != graph_digest(graph):
        raise ValueError("the NIR graph does not match the sha256 checksum neuro stored in it (the file was damaged "
                         f"or edited); remove the graph metadata {DIGEST!r} to import it anyway")
    file_dt = _step(gmeta.get("dt", NIR_DT), "the NIR graph's metadata 'dt'")
    dt = file_dt if dt is None else _step(dt, "dt")
    net_dt = _step(gmeta.get("neuro_dt", dt), "the NIR graph's metadata 'neuro_dt'")
    nodes, edges = flat_graph(graph)
    for name, node in nodes.items():
        if type(node).__name__ not in NEURON_KINDS + maps.MAP_KINDS and not isinstance(node, (nir.Input, nir.Output)):
            raise ValueError(f"NIR node {name!r} is a {type(node).__name__}; supported: Input, Output, "
                             f"{', '.join(NEURON_KINDS + maps.MAP_KINDS)}")
    preds = {n: [a for a, b in edges if b == n] for n in nodes}
    known = {}
    neurons = [n for n, v in nodes.items() if type(v).__name__ in NEURON_KINDS]
    inputs = [n for n, v in nodes.items() if isinstance(v, nir.Input)]
    pops, info = {}, {}
    for name in inputs:
        _unbatched(name, nodes, edges, known)
        meta = nodes[name].metadata or {}
        model = str(meta.get("neuro_model", "spike_source"))
        params = {"rate": np.asarray(meta["neuro_rate"])} if model == "poisson" else {}
        pops[name] = Population(name, int(np.prod(_shapes(nodes, preds, name, known))), model, params)
    for name in neurons:
        conv = convention_of(nodes[name].metadata, gmeta, convention, name)
        info[name] = _neuron(nodes[name], _shapes(nodes, preds, name, known), dt, net_dt, file_dt, conv,
                             non_strict(nodes[name].metadata, gmeta, conv, name), name)
    _check_outputs(nodes, preds, neurons + inputs)
    _check_readouts(nodes, edges)
    ops = {n: maps.node_op(v, _shapes(nodes, preds, preds[n][0], known), dt, n) for n, v in nodes.items()
           if type(v).__name__ in maps.MAP_KINDS and preds[n]}
    composer = maps.Composer(ops, {n: int(np.prod(known[n])) for n in neurons + inputs}, preds)
    projections, given = [], {}
    for post in neurons:
        params, gain = info[post][0], info[post][2]
        given[post] = {"bias": np.zeros(gain.size), "bias_syn": np.zeros(gain.size)}
        for pre_node in preds[post]:
            projections += _projections(nodes, pre_node, post, composer, gain, params, given[post], (known, dt))
        if "neuro_v_th" not in (nodes[post].metadata or {}):  # a foreign node: its biases are its Affines'
            params.update(given[post])
    back = back_edges(list(pops) + neurons, [(p.pre, p.post) for p in projections], inputs)
    projections = [_sealed(_recurrent(p) if (p.pre, p.post) in back else p) for p in projections]
    for name in neurons:
        params, reset, _, mpr = info[name]
        meta = {"mpr": True} if mpr else {}
        if type(nodes[name]).__name__ in READOUT_KINDS:
            meta.update(layer="Readout", readout=True)  # as neuro.training's Readout: its output is v
        # NIR's readers start at v = 0 (neuro at v_rest); neuro's own nodes keep neuro's start
        foreign = "neuro_v_th" not in (nodes[name].metadata or {})
        initial = {"v": np.zeros(len(params["v_th"]))} if foreign and np.any(params["v_rest"] != 0) else {}
        if all(np.array_equal(params[k], given[name][k]) for k in given[name]):
            meta[chains.BIAS_KEY] = chains.bias_digest(params)  # export writes them on the chains while unchanged
        pops[name] = Population(name, len(params["v_th"]), "lif", params, reset, initial, meta)
    outputs = [a for a, b in edges if isinstance(nodes.get(b), nir.Output) and a in pops]
    return Network(tuple(pops.values()), tuple(projections), net_dt,
                   {"source": "nir", "convention": convention, "outputs": outputs,
                    "shapes": {n: list(known[n]) for n in pops}})


def _unbatched(name, nodes, edges, known):
    """An Input's shape without the batch of one a producer's sample had (snntorch writes ``(1, C, H, W)``) where
    it feeds convolutions only, which read ``(C, H, W)``."""
    shape = _shapes(nodes, {}, name, known)
    after = [nodes[b] for a, b in edges if a == name]
    if len(shape) >= 3 and shape[0] == 1 and after and all(
            type(n).__name__ in ("Conv1d", "Conv2d") and np.ndim(n.weight) == len(shape) for n in after):
        known[name] = shape[1:]


def _neuron(node, shape, dt, net_dt, file_dt, convention, at_threshold, name):
    """``(params, reset, gain, mpr)`` of a neuron node; neuro's own metadata (checked) when present."""
    meta = getattr(node, "metadata", {}) or {}
    if "neuro_v_th" in meta:
        params = _params_from_meta(meta, name)
        _check_meta(node, params, net_dt, file_dt, name)
        return params, str(meta["neuro_reset"]), np.ones(params["v_th"].size), bool(meta.get("neuro_mpr", 0))
    params, reset, gain = neuron_params(node, int(np.prod(shape)), dt, convention, name, at_threshold)
    params.update(bias=np.zeros(gain.size), bias_syn=np.zeros(gain.size))
    return params, reset, gain, False


def _check_outputs(nodes, preds, sources):
    """Outputs must be fed by neuron or input nodes: neuro's populations emit spikes, not values."""
    nir = _nir()
    for name, node in nodes.items():
        if isinstance(node, nir.Output):
            for p in preds[name]:
                if p not in sources:
                    raise ValueError(f"NIR node {p!r} ({type(nodes[p]).__name__}) feeds the output {name!r} "
                                     "directly; neuro's outputs are spikes, so a graph must end in a neuron node")


def _check_readouts(nodes, edges):
    """A non-spiking node (LI, CubaLI, I) outputs its membrane, a real value; neuro's populations pass on spikes,
    so such a node may feed Output nodes only."""
    nir = _nir()
    for a, b in edges:
        if type(nodes[a]).__name__ in READOUT_KINDS and not isinstance(nodes[b], nir.Output):
            raise ValueError(f"NIR node {a!r} ({type(nodes[a]).__name__}) feeds {b!r}: its output is its membrane "
                             "potential, a real value, and neuro's populations pass on spikes; a LI, CubaLI or I node "
                             "may only feed an Output")


def _projections(nodes, pre_node, post, composer, gain, params, given, shapes_dt):
    """The projections ``pre_node`` (a map or a source node) makes into neuron ``post``; its bias is added to
    ``given["bias_syn"]`` (``given["bias"]`` without a synaptic current). A projection composed from one chain of
    weight nodes keeps the chain's description for export (:mod:`deployment.nirio.chains`)."""
    node = nodes[pre_node]
    meta = getattr(node, "metadata", {}) or {}
    if "neuro_weights" in meta:
        (src,) = composer.preds[pre_node]
        csr = _csr_from_meta(meta, node.weight, pre_node)
        return [Projection(pre_node, src, post, csr, str(meta.get("neuro_receptor", "exc")))]
    terms, bias = composer.output(pre_node)
    key = "bias_syn" if np.any(params["tau_syn"] > 0) else "bias"
    given[key] = given[key] + np.broadcast_to(bias, gain.shape) * gain
    groups = _by_source(terms, gain)
    out = []
    for (src, delay), (pre, post_idx, w, d) in groups.items():
        name = pre_node if len(groups) == 1 else f"{pre_node}:{src}" + (f"@{delay}" if delay else "")
        meta = {}
        if pre_node == src:
            name = f"{src}->{post}"
        elif len(groups) == 1 and (path := chains.chain_of(pre_node, composer.sources, composer.preds)):
            known, dt = shapes_dt
            meta[chains.KEY] = chains.record(nodes, path, [known[composer.preds[n][0]] for n in path], gain, dt)
        out.append(Projection(name, src, post, from_coo(pre, post_idx, w, d, composer.sources[src], gain.size),
                              metadata=meta))
    return out


def _by_source(terms, gain) -> dict:
    """``{(source, delay): (pre, post, weights, delays)}``: the terms of one source in one projection with a delay
    per synapse (key delay None) where no pair of neurons is reached with two delays, else one per delay."""
    coo = {key: (sparse.diags(gain) @ m).tocoo() for key, m in terms.items()}
    out = {}
    for src in dict.fromkeys(src for src, _ in coo):
        mine = [(d, m) for (s, d), m in coo.items() if s == src]
        pairs = np.concatenate([m.row.astype(np.int64) * m.shape[1] + m.col for _, m in mine])
        if len(mine) > 1 and np.unique(pairs).size != pairs.size:
            out.update({(src, d): (m.col, m.row, m.data, d) for d, m in mine})
            continue
        key = (src, mine[0][0] if len(mine) == 1 else None)
        out[key] = tuple(np.concatenate(a) for a in zip(*((m.col, m.row, m.data, np.full(m.nnz, d)) for d, m in mine)))
    return out


def _sealed(proj):
    """``proj`` with the sha256 of its final synapses in its chain record (:func:`deployment.nirio.chains.valid`)."""
    if chains.KEY not in proj.metadata:
        return proj
    chain = {**proj.metadata[chains.KEY], "sha256": chains.synapse_digest(proj)}
    return replace(proj, metadata={**proj.metadata, chains.KEY: chain})


def _recurrent(proj):
    """A projection that closes a cycle takes at least one step (snntorch's recurrent layers)."""
    s = proj.synapses
    if s.nnz == 0 or s.delays.min() >= 1:
        return proj
    return replace(proj, synapses=from_coo(s.pre_indices(), s.indices, s.weights, np.maximum(s.delays, 1),
                                           s.n_pre, s.n_post))


def _params_from_meta(meta, name):
    """neuro's exact parameters kept in node metadata (all keys present, finite where required)."""
    meta = {"neuro_bias_syn": 0.0, **meta}  # files written before bias_syn existed
    missing = [f"neuro_{k}" for k in LIF_PARAMS + ("reset",) if f"neuro_{k}" not in meta]
    if missing:
        raise ValueError(f"NIR node {name!r}: incomplete neuro metadata (missing {missing})")
    try:
        params = {k: np.asarray(meta[f"neuro_{k}"], float) for k in LIF_PARAMS}
    except (TypeError, ValueError) as exc:
        raise ValueError(f"NIR node {name!r}: neuro metadata are not numbers ({exc})") from None
    bad = [f"neuro_{k}" for k, v in params.items() if np.isnan(v).any()]
    if bad:
        raise ValueError(f"NIR node {name!r}: NaN in the neuro metadata {bad}")
    return params


def _check_meta(node, params, net_dt, dt_nir, name):
    """Refuse a node whose ``neuro_*`` metadata disagree with its NIR parameters (edited or damaged file)."""
    nir = _nir()
    a_mem = lif.decay(params["tau_mem"], net_dt)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = np.where(a_mem < 1, dt_nir / (1 - a_mem), np.inf)
    nir_tau = node.tau_mem if isinstance(node, (nir.CubaLIF, nir.CubaLI)) else getattr(node, "tau", None)
    threshold = node.threshold if isinstance(node, nir.Threshold) else getattr(node, "v_threshold", None)
    pairs = (("tau", nir_tau, tau), ("v_threshold", threshold, params["v_th"]),
             ("v_reset", getattr(node, "v_reset", None), params["v_reset"]))
    for what, stored, expected in pairs:
        if stored is None and type(node).__name__ in READOUT_KINDS + ("IF", "Threshold"):  # fields they lack
            continue
        stored = np.asarray(stored if stored is not None else 0.0, float).ravel()  # (C, H, W) for conv layers
        if stored.size not in (1, np.size(expected)) or not np.allclose(stored, expected, rtol=1e-6, atol=1e-12,
                                                                         equal_nan=False):
            raise ValueError(f"NIR node {name!r}: its NIR {what} disagrees with the neuro_* metadata (expected "
                             f"{np.ravel(expected)[:3]} at dt={dt_nir} s, got {np.ravel(stored)[:3]}); the file "
                             "was edited or damaged")


def _csr_from_meta(meta, weight, name) -> CSR:
    """The synapses kept in metadata, refused unless they are exactly the NIR weight matrix's entries."""
    weight = np.asarray(weight, float)
    n_post, n_pre = weight.shape
    try:
        csr = from_coo(*(np.asarray(meta[f"neuro_{k}"]) for k in ("pre", "post", "weights", "delays")),
                       n_pre, n_post)
    except KeyError as exc:
        raise ValueError(f"NIR node {name!r}: incomplete neuro metadata (missing {exc})") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"NIR node {name!r}: bad neuro synapse metadata ({exc})") from None
    dense = np.zeros_like(weight)
    dense[csr.indices, csr.pre_indices()] = csr.weights
    if not np.array_equal(dense, weight):
        raise ValueError(f"NIR node {name!r}: its NIR weight matrix disagrees with the neuro_* synapse metadata; "
                         "the file was edited or damaged")
    return csr


def import_nir(source, dt: float | None = None, convention: str | None = None) -> Network:
    """Read a NIR file (or take a ``nir.NIRGraph``) and build a :class:`Network`; clear errors for bad files."""
    nir = _nir()
    if isinstance(source, nir.NIRGraph):
        return nir_to_network(source, dt, convention)
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such NIR file")
    try:
        graph = nir.read(str(path))
    except Exception as exc:  # h5py / nir raise many types on a corrupt or foreign file
        raise ValueError(f"{path}: not a readable NIR file ({type(exc).__name__}: {exc})") from None
    return nir_to_network(graph, dt, convention)
