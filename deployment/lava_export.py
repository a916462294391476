"""Build the Lava process graph of a network and run it in a watched child process.

Graph (:class:`LavaGraph`, plain data, built here and instantiated in the child):

* each ``spike_source``/``poisson`` population -> a ``RingBuffer`` holding its spikes;
* each LIF population -> Lava's built-in ``LIF`` when it can hold it (hard reset, no
  refractory period, one synaptic channel), split into sub-populations of equal
  ``(du, dv)`` (Lava holds one du/dv/vth per process) when there are at most
  ``max_groups`` of them, otherwise (or with ``hetero="custom"``) one
  :class:`~deployment.soft_reset_process.SoftResetLIF` process with per-neuron
  decays. SoftResetLIF is a custom process, not a built-in Loihi neuron;
* each projection -> one ``Dense`` (``Sparse`` below 25% density) per pair of
  (pre group, post group) with synapses, or ``DelayDense(delays = d - 1)`` when a
  delay exceeds 1 (Dense itself adds one step);
* a :class:`~deployment.spike_recorder.SpikeRecorder` on each LIF group, and a dense one on the
  membrane of a readout.

Timing (:mod:`deployment.lava_timing`): zero-delay projections are compiled by running each
population ``shift`` steps behind neuro; every result is returned in neuro's time (shift undone).
A shifted population that would drift before its first step (a bias or a nonzero initial
state) is reset to its initial state when its first step begins (Lava's ``LIFReset``, or
:class:`~deployment.soft_reset_process.SoftResetLIF`'s reset). Many samples run in one Lava
run as consecutive slots of ``interval`` steps (``interval = steps per sample + the largest
delay``): every population resets at the start of its slot, and one that feeds a delayed
projection is silent after the sample's steps, so nothing crosses into the next sample.

:func:`run_graph` forks a child (its own process group, so Lava's forked workers go
with it), runs ``Loihi2SimCfg(select_tag="fixed_pt" | "floating_pt")``, and always
kills the whole group afterwards; a hang becomes :class:`LavaTimeout`, a crash
:class:`LavaError` with the child's traceback.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deployment.lava_timing import compile_timing
from deployment.quantize import initial_currents, is_readout, receptors_of, synaptic_bias
from neuro.fixed_point import FixedPointNetwork
from neuro.io import atomic_path
from neuro.network import Network
from neurons import lif

HETERO_MODES = ("auto", "split", "custom")
DEFAULT_MAX_GROUPS = 8
SPARSE_BELOW = 0.25


class LavaError(RuntimeError):
    """Lava failed to build or run the network; ``pid`` is the child (and process group) that ran it."""

    def __init__(self, message: str, pid: int | None = None):
        super().__init__(message)
        self.pid = pid


class LavaTimeout(LavaError):
    """Lava did not finish within the time limit (its processes were killed)."""


@dataclass
class NeuronGroup:
    name: str
    population: str
    index: np.ndarray  # local neuron indices in the population
    process: str  # "LIF" or "SoftResetLIF"
    params: dict


@dataclass
class Block:
    name: str
    projection: str
    pre: str  # group or source name
    post: str
    port: str  # "a_in" or "a_in_inh"
    weights: np.ndarray  # [n_post, n_pre]
    delays: np.ndarray | None  # Lava delays (d - 1) [n_post, n_pre] or None for plain Dense
    kwargs: dict
    sparse: bool


@dataclass
class LavaGraph:
    mode: str  # "fixed" or "float"
    steps: int  # Lava steps to run: neuro's steps + the largest shift
    sources: dict  # name -> int raster [n, steps]
    groups: list
    blocks: list
    notes: list = field(default_factory=list)
    shifts: dict = field(default_factory=dict)  # population -> steps Lava runs behind neuro
    readouts: list = field(default_factory=list)  # groups whose membrane is recorded

    @property
    def neuro_steps(self) -> int:
        return self.steps - max(self.shifts.values(), default=0)

    def describe(self) -> str:
        kinds = {}
        for g in self.groups:
            kinds.setdefault(g.population, []).append(f"{g.process}({g.index.size})")
        conns = {}
        for b in self.blocks:
            kind = "DelayDense" if b.delays is not None else "Sparse" if b.sparse else "Dense"
            conns[kind] = conns.get(kind, 0) + 1
        lines = [f"Lava graph ({self.mode}): {len(self.sources)} RingBuffer source(s), {len(self.groups)} neuron "
                 f"process(es), {len(self.blocks)} connection process(es) "
                 f"({', '.join(f'{v} {k}' for k, v in sorted(conns.items()))})"]
        lines += [f"  {pop}: {' + '.join(v)}" for pop, v in kinds.items()]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


# --- building ---------------------------------------------------------------------------------------
def _custom_reasons(reset, n_ref, two_channels, bias_syn) -> list:
    """Why Lava's built-in LIF cannot hold a population (empty: it can)."""
    return ([f"{reset} reset"] if reset != "hard" else []) + (["a refractory period"] if np.any(n_ref) else []) + \
        (["two synaptic channels (tau_syn_inh != tau_syn)"] if two_channels else []) + \
        (["a synaptic bias (bias_syn into u; Lava's LIF has a bias into v only)"] if np.any(bias_syn) else [])


def _partition(pop_name, arrays, reasons, hetero, max_groups, notes):
    """Neuron index sets per process: equal (du, dv) groups for built-in LIF, or one SoftResetLIF."""
    if not reasons and hetero != "custom":
        keys = np.stack([arrays["du"], arrays["dv"]], axis=1)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        if len(uniq) <= max_groups:
            if len(uniq) > 1:
                notes.append(f"{pop_name}: split into {len(uniq)} LIF sub-populations of equal (du, dv); "
                             "projections split to match")
            return [("LIF", np.flatnonzero(inverse == g)) for g in range(len(uniq))]
        if hetero == "split":
            raise ValueError(f"population {pop_name!r} has {len(uniq)} distinct (du, dv) pairs, more than "
                             f"max_groups={max_groups} LIF processes; use hetero='custom' (SoftResetLIF) or fewer "
                             "distinct time constants")
        notes.append(f"{pop_name}: {len(uniq)} distinct (du, dv) > max_groups={max_groups}: one SoftResetLIF "
                     "process with per-neuron decays (custom process, not a built-in Loihi neuron)")
    elif reasons:
        notes.append(f"{pop_name}: SoftResetLIF (custom process, not a built-in Loihi neuron) for "
                     f"{', '.join(reasons)}")
    return [("SoftResetLIF", np.arange(len(arrays["dv"])))]


def _group_params(process, arrays, idx, reset, timing_params):
    """Constructor arguments of one neuron process for neurons ``idx``."""
    take = {k: np.asarray(v)[idx] for k, v in arrays.items()}
    if process in ("LIF", "LIFReset"):
        params = {"shape": (idx.size,), "du": take["du"][0].item(), "dv": take["dv"][0].item(),
                  "vth": take["vth"][0].item(), "bias_mant": take["bias_mant"], "bias_exp": take["bias_exp"],
                  "u": take["u"], "v": take["v"]}
        if process == "LIFReset":
            params.update(reset_interval=timing_params["reset_interval"], reset_offset=timing_params["reset_offset"])
        return params
    return {"shape": (idx.size,), "reset": reset, **take, **timing_params}


def _timing_params(arrays, shift, lava_steps, interval, active, silent_tail) -> tuple[dict, list]:
    """Reset schedule of a population (Lava counts steps from 1) and what it needs from the neuron process.

    One sequence: reset once, when the population's first step begins, if it would drift
    before (bias or nonzero initial state); with ``silent_tail`` (it feeds a delayed projection) it also
    cannot fire before that step (a bias may make it fire there, and a delayed spike would reach the first
    step). Slots of ``interval`` steps: reset every slot; with ``silent_tail`` no spike after ``active``
    steps of the slot.
    """
    initial = any(np.any(np.asarray(arrays[k]) != 0) for k in ("v", "u", "u_inh"))
    drifts = initial or any(np.any(np.asarray(arrays[k]) != 0) for k in ("bias_mant", "bias_syn_mant"))
    if interval is None:
        if shift == 0 or not drifts:
            return {"reset_interval": 0, "reset_offset": 0, "window": 0}, []
        # Lava's steps 1..shift are phases lava_steps + 1 - shift .. lava_steps: at or past the window
        params = {"reset_interval": lava_steps + 1, "reset_offset": shift + 1,
                  "window": lava_steps + 1 - shift if silent_tail else 0}
        silence = "silence before its first step (it drifts and feeds a delayed projection)"
    else:
        params = {"reset_interval": interval, "reset_offset": (shift + 1) % interval,
                  "window": active if silent_tail else 0}
        silence = "silence between samples (it feeds a delayed projection)"
    reasons = (["a reset to a nonzero initial state"] if initial else []) + ([silence] if params["window"] else [])
    return params, reasons


def _assemble(network, mode, per_pop, per_proj, sources, steps, hetero, max_groups, interval=None,
              active=None) -> LavaGraph:
    if hetero not in HETERO_MODES:
        raise ValueError(f"hetero must be one of {HETERO_MODES}, got {hetero!r}")
    timing = compile_timing(network)
    lava_steps = steps + timing.max_shift
    sources = {k: np.pad(v, ((0, 0), (0, timing.max_shift))) for k, v in sources.items()}
    delayed_sources = {p.pre for p in network.projections if p.active().nnz and p.active().delays.max() >= 1}
    notes = [timing.describe()] if timing.max_shift else []
    groups, where, readouts = [], {}, []
    for pop in network.populations:
        if pop.model == "lif":
            arrays, reasons, reset, two = per_pop[pop.name]
            shift = timing.shifts[pop.name]
            tparams, more = _timing_params(arrays, shift, lava_steps, interval, active, pop.name in delayed_sources)
            readout = is_readout(network, pop)
            reasons = reasons + more + (["a membrane readout"] if readout else [])
            parts = _partition(pop.name, arrays, reasons, hetero, max_groups, notes)
            slot = np.zeros(pop.size, np.int64)
            local = np.zeros(pop.size, np.int64)
            names = []
            for g, (process, idx) in enumerate(parts):
                name = pop.name if len(parts) == 1 else f"{pop.name}#{g}"
                if process == "LIF" and tparams["reset_interval"]:
                    process = "LIFReset"
                groups.append(NeuronGroup(name, pop.name, idx, process,
                                          _group_params(process, arrays, idx, reset, tparams)))
                slot[idx], local[idx] = g, np.arange(idx.size)
                names.append((name, idx.size, process, two))
                if readout:
                    readouts.append(name)
            where[pop.name] = (slot, local, names)
        else:
            where[pop.name] = (np.zeros(pop.size, np.int64), np.arange(pop.size), [(pop.name, pop.size, "src", False)])
    blocks = []
    for proj in network.projections:
        s = proj.active()
        if not s.nnz:
            continue
        weights, kwargs = per_proj[proj.name]
        lava_delays = timing.delays[proj.name]
        pre, post = s.pre_indices(), s.indices.astype(np.int64)
        pslot, plocal, pnames = where[proj.pre]
        qslot, qlocal, qnames = where[proj.post]
        for gp, gq in sorted(set(zip(pslot[pre].tolist(), qslot[post].tolist()))):
            sel = (pslot[pre] == gp) & (qslot[post] == gq)
            (pre_name, n_pre, _, _), (post_name, n_post, process, two) = pnames[gp], qnames[gq]
            rows, cols = qlocal[post[sel]], plocal[pre[sel]]
            if np.unique(rows * n_pre + cols).size != rows.size:
                raise ValueError(f"projection {proj.name!r} has several synapses between one pair of neurons; "
                                 "Lava's Dense holds one weight per pair: merge them (or give them separate "
                                 "projections)")
            w = np.zeros((n_post, n_pre), weights.dtype)
            w[rows, cols] = weights[sel]
            d = lava_delays[sel]
            delays = None
            if d.max() > 1:
                delays = np.zeros((n_post, n_pre), np.int64)
                delays[rows, cols] = d - 1
            port = "a_in_inh" if (process == "SoftResetLIF" and two and proj.receptor == "inh") else "a_in"
            sparse = bool(delays is None and sel.sum() < SPARSE_BELOW * w.size)
            blocks.append(Block(f"{proj.name}[{pre_name}->{post_name}]", proj.name, pre_name, post_name, port, w,
                                delays, dict(kwargs), sparse))
    return LavaGraph(mode, lava_steps, sources, groups, blocks, notes, dict(timing.shifts), readouts)


def _source_rasters(network: Network, source_spikes: dict, steps: int) -> dict:
    out = {}
    for pop in network.populations:
        if pop.model == "lif":
            continue
        if pop.name not in source_spikes:
            raise ValueError(f"no spikes given for input population {pop.name!r}")
        t, k = source_spikes[pop.name]
        raster = np.zeros((pop.size, steps), np.int32)
        raster[np.asarray(k, np.int64), np.asarray(t, np.int64)] = 1
        out[pop.name] = raster
    return out


def fixed_graph(fixed: FixedPointNetwork, source_spikes: dict, steps: int, hetero="auto",
                max_groups=DEFAULT_MAX_GROUPS, interval: int | None = None, active: int | None = None) -> LavaGraph:
    """The bit-accurate graph of a quantized network. ``source_spikes``: input population -> ``(t, k)``.

    ``steps`` are neuro's steps; with ``interval`` they are consecutive samples of ``interval``
    steps, each with ``active`` steps of input (module docstring).
    """
    net = fixed.network
    per_pop = {}
    for name, f in fixed.neurons.items():
        arrays = {"du": f.du, "dv": f.dv, "vth": f.vth, "bias_mant": f.bias_mant, "bias_exp": f.bias_exp,
                  "u": f.u0, "v": f.v0, "du_inh": f.du_inh, "u_inh": f.u_inh0, "n_ref": f.n_ref,
                  "bias_syn_mant": f.bias_syn_mant, "bias_syn_exp": f.bias_syn_exp}
        per_pop[name] = (arrays, _custom_reasons(f.reset, f.n_ref, f.two_channels, f.bias_syn_mant), f.reset,
                         f.two_channels)
    per_proj = {name: (syn.weights, {"weight_exp": syn.weight_exp, "num_weight_bits": 8,
                                     "sign_mode": syn.sign_mode}) for name, syn in fixed.synapses.items()}
    return _assemble(net, "fixed", per_pop, per_proj, _source_rasters(net, source_spikes, steps), steps, hetero,
                     max_groups, interval, active)


def float_graph(network: Network, source_spikes: dict, steps: int, hetero="auto",
                max_groups=DEFAULT_MAX_GROUPS, interval: int | None = None, active: int | None = None) -> LavaGraph:
    """The float graph: voltages normalised per neuron to reset 0 and threshold 1 (module ``quantize``)."""
    per_pop, theta = {}, {}
    for pop in network.populations:
        if pop.model != "lif":
            continue
        p = pop.params
        th = p["v_th"] - p["v_reset"]
        if np.any(th <= 0):
            raise ValueError(f"population {pop.name!r}: v_th must exceed v_reset for Lava's reset-to-0 neuron")
        theta[pop.name] = th
        coef = lif.discretize(p, network.dt, pop.reset)
        receptors = receptors_of(network, pop)
        primary = lif.A_INH if receptors == {"inh"} else lif.A_SYN
        into_v, into_u = synaptic_bias(pop, coef, primary)
        two = bool(receptors == {"exc", "inh"} and np.any(coef[lif.A_INH] != coef[lif.A_SYN]))
        u0, u_inh0 = initial_currents(pop, two)
        arrays = {"du": 1.0 - coef[primary], "dv": 1.0 - coef[lif.A_MEM], "vth": np.ones(pop.size),
                  "bias_mant": (p["bias"] + into_v + (1.0 - coef[lif.A_MEM]) * (p["v_rest"] - p["v_reset"])) / th,
                  "bias_exp": np.zeros(pop.size), "bias_syn_mant": into_u / th, "bias_syn_exp": np.zeros(pop.size),
                  "u": u0 / th,
                  "v": (pop.initial.get("v", p["v_rest"]) - p["v_reset"]) / th,
                  "du_inh": 1.0 - coef[lif.A_INH], "u_inh": u_inh0 / th,
                  "n_ref": coef[lif.N_REF].astype(np.int64)}
        per_pop[pop.name] = (arrays, _custom_reasons(pop.reset, arrays["n_ref"], two, into_u), pop.reset, two)
    per_proj = {}
    for proj in network.projections:
        s = proj.active()
        per_proj[proj.name] = (s.weights / theta[proj.post][s.indices], {})
    return _assemble(network, "float", per_pop, per_proj, _source_rasters(network, source_spikes, steps), steps,
                     hetero, max_groups, interval, active)


# --- running --------------------------------------------------------------------------------------------
def build_processes(graph: LavaGraph, outdir: Path):
    """Create the Lava processes of ``graph`` (recorders write to ``outdir``); one process to run per component."""
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF, LIFReset
    from lava.proc.sparse.process import Sparse
    from lava.utils.weightutils import SignMode
    from scipy.sparse import csr_matrix

    from deployment.soft_reset_process import SoftResetLIF
    from deployment.spike_recorder import SpikeRecorder

    fixed = graph.mode == "fixed"
    procs, component = {}, {}
    for name, raster in graph.sources.items():
        procs[name] = RingBuffer(data=raster if fixed else raster.astype(float))
    kinds = {"LIF": LIF, "LIFReset": LIFReset, "SoftResetLIF": SoftResetLIF}
    for i, g in enumerate(graph.groups):
        params = dict(g.params)
        procs[g.name] = kinds[g.process](**params)
        rec = SpikeRecorder(shape=params["shape"], path=str(outdir / f"group{i}.npz"), steps=graph.steps)
        procs[g.name].s_out.connect(rec.s_in)
        if g.name in graph.readouts:
            states = SpikeRecorder(shape=params["shape"], path=str(outdir / f"group{i}_v.npy"), steps=graph.steps,
                                   dense=True)
            procs[g.name].v_out.connect(states.s_in)
    parent = {name: name for name in procs}

    def root(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for b in graph.blocks:
        kwargs = dict(b.kwargs)
        if "sign_mode" in kwargs:
            kwargs["sign_mode"] = SignMode[kwargs["sign_mode"].upper()]
        if b.delays is not None:
            conn = DelayDense(weights=b.weights, delays=b.delays, **kwargs)
        elif b.sparse:
            conn = Sparse(weights=csr_matrix(b.weights), **kwargs)
        else:
            conn = Dense(weights=b.weights, **kwargs)
        procs[b.pre].s_out.connect(conn.s_in)
        conn.a_out.connect(getattr(procs[b.post], b.port))
        parent[root(b.pre)] = root(b.post)
    for name in procs:
        component.setdefault(root(name), procs[name])
    return [p for p in component.values()]


def _child(graph: LavaGraph, outdir: str, errfile: str):
    """Body of the forked child: build and run the graph, leave spikes in ``outdir``; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)  # Lava's workers inherit this group: the parent kills them all at once
        from deployment import lava_compat

        lava_compat.install()
        warnings.filterwarnings("ignore", message="Cannot import module")  # Lava scans sibling modules
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg

        tag = "fixed_pt" if graph.mode == "fixed" else "floating_pt"
        for proc in build_processes(graph, Path(outdir)):
            proc.run(condition=RunSteps(num_steps=graph.steps), run_cfg=Loihi2SimCfg(select_tag=tag))
            proc.stop()
        code = 0
    except BaseException:
        Path(errfile).write_text(traceback.format_exc())
    finally:
        os._exit(code)


def _kill_group(pid: int, timeout: float = 10.0):
    """SIGKILL every process of group ``pid`` and wait (up to ``timeout`` s) until none is left."""
    deadline = time.monotonic() + timeout
    try:
        os.killpg(pid, signal.SIGKILL)
        while time.monotonic() < deadline:
            time.sleep(0.02)
            os.killpg(pid, 0)  # raises ProcessLookupError once the last member is gone
    except (ProcessLookupError, PermissionError):
        pass


def _wait(pid: int, timeout: float) -> int | None:
    """Exit status of child ``pid``, or None if it is still running after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() >= deadline:
            return None
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


@dataclass
class LavaResult:
    """Spikes per population as ``(t, local index)`` in neuro's time (shift undone), sorted by time then index;
    readout membranes ``[neuro steps, n]`` per population; the run's wall time."""

    spikes: dict
    seconds: float
    graph: LavaGraph
    states: dict = field(default_factory=dict)


def run_graph(graph: LavaGraph, timeout: float = 300.0) -> LavaResult:
    """Run ``graph`` in Lava in a child process group; raise :class:`LavaTimeout` / :class:`LavaError`."""
    if graph.steps < 1:
        raise ValueError("steps must be >= 1")
    with tempfile.TemporaryDirectory(prefix="neuro-lava-") as tmp:
        errfile = os.path.join(tmp, "error.txt")
        start = time.perf_counter()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(graph, tmp, errfile)
        code = None
        try:
            code = _wait(pid, timeout)
            if code is None:
                raise LavaTimeout(f"Lava did not finish {graph.steps} steps within {timeout:.0f} s; its processes "
                                  "were killed (raise the timeout for larger networks: Lava takes ~1-3 ms per step "
                                  "per process plus a few seconds to start)", pid)
        finally:
            if code is None:
                _kill_group(pid, timeout=0)  # SIGKILL only
                _wait(pid, 10)  # reap the leader so that the group can empty
            _kill_group(pid)
        seconds = time.perf_counter() - start
        if code != 0:
            detail = Path(errfile).read_text() if os.path.exists(errfile) else f"exit code {code}"
            last = detail.strip().splitlines()[-1] if detail.strip() else detail
            raise LavaError(f"Lava failed: {last}\n--- Lava traceback ---\n{detail}", pid)
        spikes, states = {}, {}
        steps = graph.neuro_steps
        for i, g in enumerate(graph.groups):
            path = os.path.join(tmp, f"group{i}.npz")
            if not os.path.exists(path):
                raise LavaError(f"Lava finished but wrote no spikes for {g.name!r}", pid)
            shift = graph.shifts.get(g.population, 0)
            with np.load(path) as data:
                t, k = data["t"] - shift, g.index[data["k"]]
            keep = (t >= 0) & (t < steps)
            spikes.setdefault(g.population, []).append((t[keep], k[keep]))
            if g.name in graph.readouts:
                v = np.load(os.path.join(tmp, f"group{i}_v.npy"))[shift:shift + steps]
                pop_states = states.setdefault(g.population, {})
                pop_states[g.name] = (g.index, v)
    out = {}
    for pop, parts in spikes.items():
        t = np.concatenate([p[0] for p in parts])
        k = np.concatenate([p[1] for p in parts])
        order = np.lexsort((k, t))
        out[pop] = (t[order], k[order])
    return LavaResult(out, seconds, graph, {pop: _merge_groups(parts) for pop, parts in states.items()})


def _merge_groups(parts: dict) -> np.ndarray:
    """One ``[steps, n]`` array of a population from its groups' ``(index, [steps, n_group])``."""
    n = sum(index.size for index, _ in parts.values())
    steps = next(iter(parts.values()))[1].shape[0]
    out = np.zeros((steps, n))
    for index, values in parts.values():
        out[:, index] = values
    return out


# --- files ---------------------------------------------------------------------------------------------------
def save_graph(graph: LavaGraph, path) -> Path:
    """Write ``graph`` (every process's parameters and weights) to ``.npz``: plain arrays plus a JSON header."""
    arrays, header = {}, {"format": "neuro.LavaGraph", "mode": graph.mode, "steps": graph.steps,
                          "notes": graph.notes, "sources": list(graph.sources), "groups": [], "blocks": [],
                          "shifts": graph.shifts, "readouts": graph.readouts}
    for name, raster in graph.sources.items():
        arrays[f"source/{name}"] = raster
    for i, g in enumerate(graph.groups):
        scalars = {k: v for k, v in g.params.items() if not isinstance(v, np.ndarray)}
        header["groups"].append({"name": g.name, "population": g.population, "process": g.process,
                                 "scalars": {k: (list(v) if isinstance(v, tuple) else v) for k, v in scalars.items()},
                                 "arrays": [k for k, v in g.params.items() if isinstance(v, np.ndarray)]})
        arrays[f"group{i}/index"] = g.index
        arrays.update({f"group{i}/{k}": v for k, v in g.params.items() if isinstance(v, np.ndarray)})
    for j, b in enumerate(graph.blocks):
        header["blocks"].append({"name": b.name, "projection": b.projection, "pre": b.pre, "post": b.post,
                                 "port": b.port, "kwargs": b.kwargs, "sparse": b.sparse})
        arrays[f"block{j}/weights"] = b.weights
        if b.delays is not None:
            arrays[f"block{j}/delays"] = b.delays
    arrays["header"] = np.frombuffer(json.dumps(header, default=lambda o: o.item()).encode(), dtype=np.uint8)
    path = Path(path)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return path


def load_graph(path) -> LavaGraph:
    """Read a file written by :func:`save_graph`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        header = json.loads(arrays.pop("header").tobytes().decode())
        if header.get("format") != "neuro.LavaGraph":
            raise ValueError("wrong format tag")
        groups = []
        for i, h in enumerate(header["groups"]):
            params = {k: (tuple(v) if k == "shape" else v) for k, v in h["scalars"].items()}
            params.update({k: arrays[f"group{i}/{k}"] for k in h["arrays"]})
            groups.append(NeuronGroup(h["name"], h["population"], arrays[f"group{i}/index"], h["process"], params))
        blocks = [Block(h["name"], h["projection"], h["pre"], h["post"], h["port"], arrays[f"block{j}/weights"],
                        arrays.get(f"block{j}/delays"), h["kwargs"], h["sparse"])
                  for j, h in enumerate(header["blocks"])]
        sources = {name: arrays[f"source/{name}"] for name in header["sources"]}
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: not a readable neuro Lava graph file ({type(exc).__name__}: {exc})") from None
    return LavaGraph(header["mode"], header["steps"], sources, groups, blocks, header["notes"],
                     header.get("shifts", {}), header.get("readouts", []))
