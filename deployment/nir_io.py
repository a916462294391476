"""NIR export and import of a :class:`~neuro.network.Network` (the ``nir`` package, HDF5 files).

NIR describes continuous-time nodes; every NIR consumer (snntorch, Lava's
``nir_to_lava``) discretises them with forward Euler at a step ``dt``
(NIR's default and snntorch's: 1e-4 s). Both directions use that reading::

    LIF:     v[t] = a v[t-1] + (1 - a) v_leak + g x[t],  a = 1 - dt/tau,   g = r dt / tau
    CubaLIF: i[t] = b i[t-1] + (w_in dt / tau_syn) x[t],  b = 1 - dt/tau_syn;  v gets (r dt / tau_mem) i[t]

which maps onto neuro's LIF with ``tau = -dt / ln(a)`` (exact decays), the gains folded into
the incoming weights, ``v_rest = v_leak``. Export writes ``tau = dt_nir / (1 - a)`` and
``r = tau / dt_nir`` (gain 1), a bias as ``v_leak = v_rest + bias / (1 - a)``.

What NIR cannot express is kept in node metadata (``neuro_*`` keys) and restored on import:
the reset mode (NIR only has ``v_reset``), MPR, refractory time, the exact time constants and dt,
a second (inhibitory) synaptic channel, per-synapse delays and the receptor. Pruned synapses
(mask False) are not exported.

Import conventions (``convention=``): ``"nir"`` (default) resets to ``v_reset`` at the spike
(NIR's semantics, and what ``snntorch.import_nir`` builds); ``"snntorch"`` reproduces
snntorch's default ``Leaky``/``Synaptic`` (reset by subtraction one step late:
``m[t] = beta m[t-1] + x[t] - H(m[t-1] - thr) thr``), which is neuro's soft reset with
``v_reset = v_th - thr / beta``. Edges inside one step have no delay; an edge closing a cycle
(found in depth-first order from the inputs) gets 1 step, as snntorch's recurrent layers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from neuro.io import atomic_path
from neuro.network import Network, Population, Projection
from neurons import lif
from synapses.csr import CSR, from_coo, from_dense

NIR_DT = 1e-4
DIGEST = "neuro_sha256"
CONVENTIONS = ("nir", "snntorch")
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
def _neuron_node(pop: Population, net: Network, dt_nir: float):
    nir = _nir()
    p = pop.params
    coef = lif.discretize(p, net.dt, pop.reset)
    a_mem = coef[lif.A_MEM]
    with np.errstate(divide="ignore"):
        tau = np.where(a_mem < 1, dt_nir / (1 - a_mem), np.inf)
        v_leak = np.where(a_mem < 1, p["v_rest"] + p["bias"] / np.where(a_mem < 1, 1 - a_mem, 1), p["v_rest"])
    unsupported = []
    if np.any((a_mem >= 1) & (p["bias"] != 0)):
        unsupported.append("bias of a non-leaky neuron")
    if pop.reset != "hard":
        unsupported.append(f"{pop.reset} reset")
    if np.any(p["t_ref"] > 0):
        unsupported.append("refractory period")
    if np.any(p["tau_syn_inh"] != p["tau_syn"]):
        unsupported.append("second synaptic channel (tau_syn_inh)")
    if pop.metadata.get("mpr") or pop.metadata.get("use_mpr"):
        unsupported.append("MPR")
    meta = {f"neuro_{k}": np.asarray(v) for k, v in p.items()}
    meta.update(neuro_reset=pop.reset, neuro_mpr=int(bool(pop.metadata.get("mpr") or pop.metadata.get("use_mpr"))),
                neuro_unsupported="; ".join(unsupported))
    common = dict(r=tau / dt_nir, v_leak=v_leak, v_threshold=np.array(p["v_th"]), v_reset=np.array(p["v_reset"]),
                  metadata=meta)
    if np.all(coef[lif.A_SYN] == 0):
        return nir.LIF(tau=tau, **common)
    a_syn = coef[lif.A_SYN]
    tau_syn = np.where(a_syn < 1, dt_nir / (1 - a_syn), np.inf)
    return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau, w_in=tau_syn / dt_nir, **common)


def network_to_nir(network: Network, dt_nir: float | None = None):
    """The NIR graph of ``network`` (module docstring). ``dt_nir``: the Euler step readers assume."""
    nir = _nir()
    dt_nir = network.dt if dt_nir is None else _step(dt_nir, "the NIR dt (--nir-dt)")
    nodes, edges = {}, []
    for pop in network.populations:
        if pop.model == "lif":
            nodes[pop.name] = _neuron_node(pop, network, dt_nir)
        else:
            meta = {"neuro_model": pop.model, **{f"neuro_{k}": np.asarray(v) for k, v in pop.params.items()}}
            nodes[pop.name] = nir.Input(input_type={"input": np.array([pop.size])}, metadata=meta)
    for proj in network.projections:
        s = proj.active()
        w = np.zeros((s.n_post, s.n_pre))
        pre = s.pre_indices()
        if np.unique(s.indices.astype(np.int64) * s.n_pre + pre).size != s.nnz:
            raise ValueError(f"projection {proj.name!r} has several synapses between one pair of neurons; "
                             "NIR's Linear holds one weight per pair")
        w[s.indices, pre] = s.weights
        if proj.name in nodes:
            raise ValueError(f"projection name {proj.name!r} is also a population name; NIR needs unique node names")
        nodes[proj.name] = nir.Linear(weight=w, metadata={
            "neuro_receptor": proj.receptor, "neuro_pre": pre, "neuro_post": s.indices.astype(np.int64),
            "neuro_weights": s.weights, "neuro_delays": s.delays})
        edges += [(proj.pre, proj.name), (proj.name, proj.post)]
    feeds_other = {p.pre for p in network.projections if p.pre != p.post}
    lif_pops = [p.name for p in network.populations if p.model == "lif"]
    for name in [n for n in lif_pops if n not in feeds_other] or lif_pops[-1:]:
        size = network.population(name).size
        nodes[f"{name}.output"] = nir.Output(output_type={"output": np.array([size])})
        edges.append((name, f"{name}.output"))
    meta = {"neuro_format": "neuro.Network", "neuro_dt": network.dt, "dt": dt_nir,
            "neuro_discretisation": "forward Euler at dt: a = 1 - dt/tau; neuro tau = -dt/ln(a)"}
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)
    graph.metadata[DIGEST] = graph_digest(graph)
    return graph


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
def _flatten(graph, prefix=""):
    """Nodes and edges with nested NIRGraphs inlined (their ``input``/``output`` nodes become pass-throughs)."""
    nir = _nir()
    nodes, edges, alias_in, alias_out = {}, [], {}, {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges, sub_in, sub_out = _flatten(node, full + ".")
            nodes.update(sub_nodes)
            edges += sub_edges
            ins = [n for n, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [n for n, v in node.nodes.items() if isinstance(v, nir.Output)]
            alias_in[full] = [full + "." + n for n in ins]
            alias_out[full] = [full + "." + n for n in outs]
            alias_in.update(sub_in)
            alias_out.update(sub_out)
        else:
            nodes[full] = node
    for a, b in graph.edges:
        for src in alias_out.get(prefix + a, [prefix + a]):
            for dst in alias_in.get(prefix + b, [prefix + b]):
                edges.append((src, dst))
    return nodes, edges, alias_in, alias_out


def _bypass(nodes, edges, kinds):
    """Remove pass-through nodes of ``kinds`` (inner Input/Output of subgraphs), joining their edges."""
    for name in [n for n, v in nodes.items() if isinstance(v, kinds)]:
        ins = [a for a, b in edges if b == name]
        outs = [b for a, b in edges if a == name]
        if not ins or not outs:
            continue
        edges = [e for e in edges if name not in e] + [(a, b) for a in ins for b in outs]
        del nodes[name]
    return edges


def _neuron_params(node, dt, convention, name):
    """neuro LIF parameters, reset mode and input gain of a NIR LIF / CubaLIF node."""
    nir = _nir()
    meta = getattr(node, "metadata", {}) or {}
    if "neuro_v_th" in meta:
        params = _params_from_meta(meta, name)
        return params, str(meta["neuro_reset"]), 1.0, bool(meta.get("neuro_mpr", 0))
    if isinstance(node, nir.CubaLIF):
        tau_mem, tau_syn = np.asarray(node.tau_mem, float), np.asarray(node.tau_syn, float)
        gain = np.asarray(node.w_in, float) * dt / tau_syn * np.asarray(node.r, float) * dt / tau_mem
    else:
        tau_mem, tau_syn = np.asarray(node.tau, float), None
        gain = np.asarray(node.r, float) * dt / tau_mem
    n = np.asarray(node.v_threshold).size
    a_mem = 1 - dt / tau_mem
    if np.any(a_mem < 0) or (tau_syn is not None and np.any(dt / tau_syn > 1)):
        raise ValueError(f"NIR node {name!r}: a time constant shorter than dt={dt} s has no Euler reading "
                         "(decay factor < 0); pass the dt the file was written for")
    with np.errstate(divide="ignore"):
        tau = np.where(a_mem > 0, -dt / np.log(np.where(a_mem > 0, a_mem, 1.0)), 0.0)
        params = {"tau_mem": np.broadcast_to(np.where(a_mem > 0, tau, 1e-300), (n,))}
        if tau_syn is None:
            params["tau_syn"] = np.zeros(n)
        else:
            a_syn = 1 - dt / tau_syn
            params["tau_syn"] = np.broadcast_to(np.where(a_syn > 0, -dt / np.log(np.where(a_syn > 0, a_syn, 0.5)),
                                                         0.0), (n,))
    params["tau_syn_inh"] = params["tau_syn"]
    v_th = np.broadcast_to(np.asarray(node.v_threshold, float), (n,))
    v_reset = np.zeros(n) if node.v_reset is None else np.broadcast_to(np.asarray(node.v_reset, float), (n,))
    params.update(v_th=v_th, v_rest=np.broadcast_to(np.asarray(node.v_leak, float), (n,)), v_reset=v_reset)
    if convention == "snntorch":
        if np.any(a_mem <= 0):
            raise ValueError(f"NIR node {name!r}: snntorch's delayed subtract reset needs beta > 0")
        params["v_reset"] = v_th - (v_th - v_reset) / a_mem
        return params, "soft", gain, False
    return params, "hard", gain, False


def _params_from_meta(meta, name):
    """neuro's exact parameters kept in node metadata (all keys present, finite where required)."""
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
    nir_tau = node.tau_mem if isinstance(node, nir.CubaLIF) else node.tau
    pairs = (("tau", nir_tau, tau), ("v_threshold", node.v_threshold, params["v_th"]),
             ("v_reset", node.v_reset, params["v_reset"]))
    for what, stored, expected in pairs:
        stored = np.asarray(stored if stored is not None else 0.0, float)
        if stored.size not in (1, np.size(expected)) or not np.allclose(stored, expected, rtol=1e-6, atol=1e-12,
                                                                         equal_nan=False):
            raise ValueError(f"NIR node {name!r}: its NIR {what} disagrees with the neuro_* metadata (expected "
                             f"{np.ravel(expected)[:3]} at dt={dt_nir} s, got {np.ravel(stored)[:3]}); the file "
                             "was edited or damaged")


def _order(names, edges, inputs):
    """Depth-first preorder from the inputs; an edge to an earlier (or the same) node closes a cycle."""
    succ = {n: [b for a, b in edges if a == n] for n in names}
    order, stack = {}, [n for n in reversed(names) if n not in inputs] + list(reversed(inputs))
    while stack:
        n = stack.pop()
        if n in order:
            continue
        order[n] = len(order)
        stack += [m for m in reversed(succ[n]) if m not in order]
    return order


def nir_to_network(graph, dt: float | None = None, convention: str = "nir") -> Network:
    """A :class:`Network` from a NIR graph (module docstring); a ``ValueError`` names what is unsupported.

    ``network.metadata["outputs"]`` lists the populations that feed the graph's Output nodes.
    """
    nir = _nir()
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    gmeta = graph.metadata if isinstance(graph.metadata, dict) else {}
    if DIGEST in gmeta and str(gmeta[DIGEST]) != graph_digest(graph):
        raise ValueError("the NIR graph does not match the sha256 checksum neuro stored in it (the file was damaged "
                         f"or edited); remove the graph metadata {DIGEST!r} to import it anyway")
    file_dt = _step(gmeta.get("dt", NIR_DT), "the NIR graph's metadata 'dt'")
    dt = file_dt if dt is None else _step(dt, "dt")
    net_dt = _step(gmeta.get("neuro_dt", dt), "the NIR graph's metadata 'neuro_dt'")
    nodes, edges, _, _ = _flatten(graph)
    edges = _bypass(nodes, edges, (nir.Input, nir.Output))
    weight_kinds, neuron_kinds = (nir.Linear, nir.Affine), (nir.LIF, nir.CubaLIF)
    for name, node in nodes.items():
        if not isinstance(node, weight_kinds + neuron_kinds + (nir.Input, nir.Output)):
            raise ValueError(f"NIR node {name!r} is a {type(node).__name__}; supported: Input, Output, Linear, "
                             "Affine, LIF, CubaLIF")
    pops, gains, biases = {}, {}, {}
    for name, node in nodes.items():
        if isinstance(node, nir.Input):
            meta = node.metadata or {}
            size = int(np.prod(np.asarray(node.input_type["input"])))
            model = str(meta.get("neuro_model", "spike_source"))
            params = {"rate": np.asarray(meta["neuro_rate"])} if model == "poisson" else {}
            pops[name] = Population(name, size, model, params)
        elif isinstance(node, neuron_kinds):
            params, reset, gain, mpr = _neuron_params(node, dt, convention, name)
            if "neuro_v_th" in (node.metadata or {}):
                _check_meta(node, params, net_dt, file_dt, name)
            gains[name] = np.broadcast_to(gain, (np.asarray(params["v_th"]).size,))
            pops[name] = (params, reset, mpr)
            biases[name] = np.zeros(gains[name].size)
    leaky_only = {n: bool(np.all(np.asarray(v[0]["tau_syn"]) == 0)) for n, v in pops.items() if isinstance(v, tuple)}
    projections = []
    inputs = [n for n, v in nodes.items() if isinstance(v, nir.Input)]
    order = _order(list(nodes), edges, inputs)
    for name, node in nodes.items():
        if not isinstance(node, weight_kinds):
            continue
        pre = [a for a, b in edges if b == name]
        post = [b for a, b in edges if a == name]
        if len(pre) != 1 or len(post) != 1 or pre[0] not in pops or post[0] not in gains:
            raise ValueError(f"NIR node {name!r}: a weight node must connect one neuron/input node to one "
                             f"neuron node (got {pre} -> {post})")
        projections.append(_projection(name, node, pre[0], post[0], gains, biases, leaky_only, order))
    for a, b in edges:
        if a in pops and b in gains:  # a direct neuron -> neuron edge is the identity
            eye = nir.Linear(weight=np.eye(gains[b].size))
            projections.append(_projection(f"{a}->{b}", eye, a, b, gains, biases, leaky_only, order))
    populations = []
    for name, value in pops.items():
        if isinstance(value, tuple):
            params, reset, mpr = value
            params = dict(params)
            params["bias"] = np.asarray(params.get("bias", 0.0)) + biases[name]
            populations.append(Population(name, len(params["v_th"]), "lif", params, reset,
                                          metadata={"mpr": True} if mpr else {}))
        else:
            populations.append(value)
    outputs = [a for a, b in edges if isinstance(nodes.get(b), nir.Output) and a in pops]
    return Network(tuple(populations), tuple(projections), net_dt,
                   {"source": "nir", "convention": convention, "outputs": outputs})


def _projection(name, node, pre, post, gains, biases, leaky_only, order):
    nir = _nir()
    meta = getattr(node, "metadata", {}) or {}
    if "neuro_weights" in meta:
        csr = _csr_from_meta(meta, node.weight, name)
        return Projection(name, pre, post, csr, str(meta.get("neuro_receptor", "exc")))
    w = np.asarray(node.weight, float) * gains[post][:, None]
    if isinstance(node, nir.Affine) and np.any(node.bias != 0):
        if not leaky_only[post]:
            raise ValueError(f"NIR node {name!r}: a bias into {post!r} (CubaLIF) is not supported: it would feed "
                             "the synaptic current, not the membrane")
        biases[post] = biases[post] + np.asarray(node.bias, float) * gains[post]
    delay = 1 if order[post] <= order[pre] else 0
    return Projection(name, pre, post, from_dense(w, delays=delay))


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


def import_nir(source, dt: float | None = None, convention: str = "nir") -> Network:
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
