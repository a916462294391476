"""The event simulator: the whole time loop compiled with Numba, only spikes propagate.

Time semantics (``docs/time.md``), every step ``t`` and every stage in order:

1. inputs due at ``t`` (synaptic events scheduled earlier, external currents,
   zero-delay spikes of earlier stages this step) are in the input buffer;
2. neurons charge, fire (``v > v_th``) and reset (:mod:`neurons.lif`);
3. each spike of a neuron at ``t`` adds ``w`` to its targets' input at ``t + d``
   (``d`` = synaptic delay in steps) through a ring buffer of ``max_delay + 1`` slots, or,
   for a delay-1 synapse onto a population already updated in this step, straight into the
   target's decayed synaptic current ``D = a * i`` that the simulator stores between steps
   (the order of float additions of ``docs/time.md``).

Only the CSR rows of neurons that fired are touched. Threads: independent trials (other
inputs or seeds, same network) run in parallel with ``prange``; or one network is split
into contiguous neuron ranges, one per thread (:class:`Simulator`'s ``threads``), which
update their neurons and receive the step's spikes in the same order as one thread does,
so every float sum is the same and the spikes are identical.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from neuro.kernels import (
    charge_population,
    deliver_direct,
    deliver_spikes,
    fire_inputs,
    record_spike,
    record_traces,
    step_inputs,
)
from neuro.network import Network
from neurons import lif
from synapses.csr import counting_order

MODEL_CODES = {"lif": 0, "spike_source": 1, "poisson": 2}
STATE_VARS = ("v", "i_exc", "i_inh")
SPLIT_MIN = 100_000  # threads=None splits networks of at least this many neurons across threads


def _advance_impl(t1, t_done, bounds, coef, layout, prob, pop_lo, pop_hi, pop_model, stage_ptr, has_x, csrs,
                  src_ptr, src_idx, cur_idx, cur, v, i_exc, i_inh, refr, now_e, now_i, buf_e, buf_i, rng,
                  rec_mask, rec_t, rec_n, n_rec, max_new, tr_idx, tr_vars, trace, keep_all, t_last):
    """Advance every trial ``r`` from step ``t_done[r]`` to ``t1``, one trial per thread.

    ``csrs = (csr_e, csr_i, direct_e, direct_i)``: per receptor the buffered synapses
    ``(ptr, idx, w, d, row_delay)`` and the direct ones ``(ptr, idx, w)``, each row's synapses
    grouped by the thread range (``bounds``) of their target (:meth:`Simulator._global_csr`).
    ``i_exc``, ``i_inh`` hold the decayed currents ``D`` (docs/time.md); on the steps that keep
    them (every step with ``keep_all``, else the last, ``t_last``) ``now_e``, ``now_i`` receive ``i[t]``.
    ``has_x[p]``: population ``p`` reads an input buffer (else its update skips it).
    """
    n_trials, n = v.shape
    slots = buf_e.shape[1]
    parts = bounds.size - 1
    csr_e, csr_i, direct_e, direct_i = csrs
    for r in prange(n_trials):
        fired = np.empty(n, np.int64)
        spiked = np.zeros(8 * ((n + 7) // 8), np.uint8)
        t = t_done[r]
        while t < t1:
            if n_rec[r] + max_new > rec_t.shape[1]:
                break  # recording buffer full: the caller grows it and resumes
            slot, x_exc, x_inh = step_inputs(buf_e, buf_i, r, t)
            keep = keep_all or t == t_last
            for j in range(cur_idx.size):
                x_exc[cur_idx[j]] += cur[r, t, j]
            for s in range(stage_ptr.size - 1):
                nf = 0
                for p in range(stage_ptr[s], stage_ptr[s + 1]):
                    lo, hi, model = pop_lo[p], pop_hi[p], pop_model[p]
                    if model != 0:
                        nf = fire_inputs(model, lo, hi, t, r, src_ptr, src_idx, prob, rng, fired, nf)
                        continue
                    nf = charge_population(v[r], i_exc[r], i_inh[r], refr[r], x_exc, x_inh, now_e[r], now_i[r], coef,
                                           layout[p], spiked, fired, nf, lo, hi, has_x[p], keep)
                for q in range(nf):
                    record_spike(rec_mask, rec_t, rec_n, n_rec, r, t, fired[q])
                deliver_spikes(buf_e, r, slot, slots, csr_e, fired, nf, parts, 0, parts)
                deliver_spikes(buf_i, r, slot, slots, csr_i, fired, nf, parts, 0, parts)
                deliver_direct(i_exc, r, direct_e, fired, nf, parts, 0, parts)
                deliver_direct(i_inh, r, direct_i, fired, nf, parts, 0, parts)
            record_traces(trace, r, t, tr_idx, tr_vars, v, now_e, now_i)
            t += 1
        t_done[r] = t


def _advance_split_impl(t1, t_done, bounds, coef, layout, prob, pop_lo, pop_hi, pop_model, stage_ptr, has_x, csrs,
                        src_ptr, src_idx, cur_idx, cur, v, i_exc, i_inh, refr, now_e, now_i, buf_e, buf_i, rng,
                        rec_mask, rec_t, rec_n, n_rec, max_new, tr_idx, tr_vars, trace, keep_all, t_last):
    """:func:`_advance_impl` with each trial's neurons split into ranges ``bounds[q] .. bounds[q+1]-1``.

    One parallel region per stage and step: part ``q`` (one thread) first delivers the previous
    stage's spikes, in their order, through the synapses onto its own range (row ``k``'s are
    ``ptr[k * parts + q] .. ptr[k * parts + q + 1]``, in row order), adds the step's external
    currents to its range (first stage), then updates the LIF neurons of its range. The parts'
    spikes are joined in neuron order and the inputs drawn by one thread, population by
    population, as :func:`_advance_impl` does. So every target receives the same additions in the
    same order as from one thread, and the spikes are identical.
    """
    n_trials, n = v.shape
    slots = buf_e.shape[1]
    parts = bounds.size - 1
    csr_e, csr_i, direct_e, direct_i = csrs
    fired = np.empty(n, np.int64)  # this stage's spikes
    pending = np.empty(n, np.int64)  # the previous stage's, not delivered yet
    found = np.empty(n, np.int64)  # the spikes of part q in population p, from max(pop_lo[p], bounds[q]) on
    count = np.zeros((pop_lo.size, parts), np.int64)
    cur_lo = np.searchsorted(cur_idx, bounds)  # part q's currents: cur_lo[q] .. cur_lo[q + 1] - 1
    spiked = np.zeros((parts, 8 * ((np.max(bounds[1:] - bounds[:-1]) + 7) // 8)), np.uint8)
    for r in range(n_trials):
        t = t_done[r]
        n_pending, base = 0, 0
        while t < t1:
            if n_rec[r] + max_new > rec_t.shape[1]:
                break  # recording buffer full: the caller grows it and resumes
            slot, x_exc, x_inh = step_inputs(buf_e, buf_i, r, t)
            keep = keep_all or t == t_last
            for s in range(stage_ptr.size - 1):
                for q in prange(parts):
                    deliver_spikes(buf_e, r, base, slots, csr_e, pending, n_pending, parts, q, q + 1)
                    deliver_spikes(buf_i, r, base, slots, csr_i, pending, n_pending, parts, q, q + 1)
                    deliver_direct(i_exc, r, direct_e, pending, n_pending, parts, q, q + 1)
                    deliver_direct(i_inh, r, direct_i, pending, n_pending, parts, q, q + 1)
                    if s == 0:
                        for j in range(cur_lo[q], cur_lo[q + 1]):
                            x_exc[cur_idx[j]] += cur[r, t, j]
                    for p in range(stage_ptr[s], stage_ptr[s + 1]):
                        a, b = max(pop_lo[p], bounds[q]), min(pop_hi[p], bounds[q + 1])
                        count[p, q] = 0
                        if pop_model[p] != 0 or a >= b:
                            continue
                        count[p, q] = charge_population(v[r], i_exc[r], i_inh[r], refr[r], x_exc, x_inh, now_e[r],
                                                        now_i[r], coef, layout[p], spiked[q], found, a, a, b,
                                                        has_x[p], keep) - a
                nf = 0
                for p in range(stage_ptr[s], stage_ptr[s + 1]):
                    if pop_model[p] == 0:
                        for q in range(parts):  # a loop, not a slice copy (numba would start threads for it)
                            first = max(pop_lo[p], bounds[q])
                            for j in range(count[p, q]):
                                fired[nf + j] = found[first + j]
                            nf += count[p, q]
                    else:
                        nf = fire_inputs(pop_model[p], pop_lo[p], pop_hi[p], t, r, src_ptr, src_idx, prob, rng,
                                         fired, nf)
                for j in range(nf):
                    record_spike(rec_mask, rec_t, rec_n, n_rec, r, t, fired[j])
                fired, pending = pending, fired
                n_pending, base = nf, slot
            record_traces(trace, r, t, tr_idx, tr_vars, v, now_e, now_i)
            t += 1
        for q in prange(parts):  # the last stage's spikes, before returning
            deliver_spikes(buf_e, r, base, slots, csr_e, pending, n_pending, parts, q, q + 1)
            deliver_spikes(buf_i, r, base, slots, csr_i, pending, n_pending, parts, q, q + 1)
            deliver_direct(i_exc, r, direct_e, pending, n_pending, parts, q, q + 1)
            deliver_direct(i_inh, r, direct_i, pending, n_pending, parts, q, q + 1)
        t_done[r] = t


_advance_serial = njit(cache=True, nogil=True)(_advance_impl)
_advance_parallel = njit(cache=True, parallel=True)(_advance_impl)
_advance_split = njit(cache=True, parallel=True)(_advance_split_impl)


@dataclass
class SimulationResult:
    """Spikes as ``(time step, neuron)`` arrays per trial, optional state traces, final state.

    Neuron indices are local to their population in every accessor.
    """

    network: Network
    steps: int
    layout: dict  # population name -> (lo, hi) in the simulator's global index space
    times: list  # per trial: int64 array of time steps
    neurons: list  # per trial: int64 array of global neuron indices
    traces: dict  # (population, var) -> array [trials, steps, k]
    trace_neurons: dict  # population -> local indices traced
    final_state: dict  # var -> array [trials, N] (global order)

    @property
    def n_trials(self) -> int:
        return len(self.times)

    @property
    def dt(self) -> float:
        return self.network.dt

    def spikes(self, population: str, trial: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(time steps, local neuron indices)`` of one population's spikes in one trial."""
        lo, hi = self._range(population)
        t, k = self.times[trial], self.neurons[trial]
        sel = (k >= lo) & (k < hi)
        return t[sel], k[sel] - lo

    def raster(self, population: str, trial: int = 0) -> np.ndarray:
        """Boolean ``[steps, n]`` spike raster."""
        lo, hi = self._range(population)
        out = np.zeros((self.steps, hi - lo), dtype=bool)
        t, k = self.spikes(population, trial)
        out[t, k] = True
        return out

    def counts(self, population: str, trial: int | None = None) -> np.ndarray:
        """Spike count per neuron (``[trials, n]`` when ``trial`` is None)."""
        lo, hi = self._range(population)
        trials = range(self.n_trials) if trial is None else [trial]
        c = np.stack([np.bincount(self.spikes(population, r)[1], minlength=hi - lo) for r in trials])
        return c if trial is None else c[0]

    def rates(self, population: str, trial: int | None = None) -> np.ndarray:
        """Mean firing rate per neuron in Hz."""
        return self.counts(population, trial) / (self.steps * self.dt)

    def trace(self, population: str, var: str = "v") -> np.ndarray:
        """Recorded state ``[trials, steps, k]`` for the neurons in ``trace_neurons[population]``."""
        try:
            return self.traces[(population, var)]
        except KeyError:
            raise KeyError(f"state {var!r} of {population!r} was not recorded; pass record_state=") from None

    def final(self, population: str, var: str = "v") -> np.ndarray:
        lo, hi = self._range(population)
        return self.final_state[var][:, lo:hi]

    def _range(self, population):
        try:
            return self.layout[population]
        except KeyError:
            raise KeyError(f"no population {population!r}; known: {sorted(self.layout)}") from None


class Simulator:
    """Compile a :class:`Network` once into flat arrays; :meth:`run` it many times.

    ``dtype`` is the float type of state, weights and coefficients (float32 by
    default: faster, and the precision of the torch twin).
    ``threads``: ``None`` (auto) splits a network of at least ``SPLIT_MIN`` neurons into
    ``numba.get_num_threads()`` neuron ranges, one thread each, and runs the trials of a
    smaller one in parallel; ``1`` runs everything on one thread; ``N > 1`` splits the network
    into ``N`` ranges (trials one after another) on ``min(N, NUMBA_NUM_THREADS)`` threads.
    Spikes and state are identical for every choice.
    """

    def __init__(self, network: Network, dtype=np.float32, threads: int | None = None):
        self.network = network
        self.dtype = np.dtype(dtype)
        self.threads = None if threads is None else positive_int(threads, "threads")
        available = start_threads()
        order = [network.population(n) for stage in network.stages() for n in stage]
        stage_sizes = [len(stage) for stage in network.stages()]
        self.stage_of = {name: s for s, stage in enumerate(network.stages()) for name in stage}
        self.stage_ptr = np.concatenate([[0], np.cumsum(stage_sizes)]).astype(np.int64)
        bounds = np.concatenate([[0], np.cumsum([p.size for p in order])]).astype(np.int64)
        self.layout = {p.name: (int(bounds[i]), int(bounds[i + 1])) for i, p in enumerate(order)}
        self.pop_lo, self.pop_hi = bounds[:-1].copy(), bounds[1:].copy()
        self.pop_model = np.array([MODEL_CODES[p.model] for p in order], np.int64)
        self.pop_layout = np.zeros(len(order), np.int64)
        self.n = int(bounds[-1])
        self.coef = np.zeros((len(lif.COEFFICIENTS), self.n), self.dtype)
        self.prob = np.zeros(self.n, np.float64)
        self.initial = {var: np.zeros(self.n, self.dtype) for var in STATE_VARS}
        for i, p in enumerate(order):
            lo, hi = self.layout[p.name]
            if p.model == "lif":
                self.coef[:, lo:hi] = lif.discretize(p.params, network.dt, p.reset)
                self.pop_layout[i] = lif.layout(self.coef[:, lo:hi])
                self.initial["v"][lo:hi] = p.initial.get("v", p.params["v_rest"])
                for var in ("i_exc", "i_inh"):
                    self.initial[var][lo:hi] = p.initial.get(var, 0.0)
            elif p.model == "poisson":
                self.prob[lo:hi] = np.minimum(p.params["rate"] * network.dt, 1.0)
        parts = self.threads or (available if self.n >= SPLIT_MIN else 1)
        self.bounds = np.arange(parts + 1, dtype=np.int64) * self.n // parts  # the threads' neuron ranges
        self.csr = {}
        for rec in ("exc", "inh"):
            self.csr[rec], self.csr[rec + " direct"], into = self._global_csr(rec)
            self.buffered_into = into if rec == "exc" else self.buffered_into | into
        max_delay = max([int(c[3].max()) for c in (self.csr["exc"], self.csr["inh"]) if c[3].size] + [0])
        self.slots = max_delay + 1

    def _global_csr(self, receptor):
        """All active synapses onto ``receptor`` as two CSRs over global neuron indices, and a mask.

        Direct synapses (delay 1 from a population updated in the same or a later stage than its
        target) add into the target's decayed current; the others go through the input buffer
        (docs/time.md). Returns ``(ptr, idx, w, d, row_delay)`` of the buffered ones, ``(ptr, idx,
        w)`` of the direct ones, and per neuron whether any buffered synapse reaches it. Each row's
        synapses are grouped (stably) by the thread range ``self.bounds`` of their target:
        ``ptr[k * parts + q] .. ptr[k * parts + q + 1]`` are row ``k``'s synapses onto range ``q``.
        """
        pre, post, w, d, direct = ([np.empty(0, t)] for t in (np.int64, np.int64, float, np.int64, bool))
        for proj in self.network.projections:
            if proj.receptor != receptor:
                continue
            s = proj.active()
            pre.append(s.pre_indices() + self.layout[proj.pre][0])
            post.append(s.indices.astype(np.int64) + self.layout[proj.post][0])
            w.append(s.weights)
            d.append(s.delays)
            direct.append((s.delays == 1) & (self.stage_of[proj.pre] >= self.stage_of[proj.post]))
        pre, post, w, d, direct = (np.concatenate(a) for a in (pre, post, w, d, direct))
        buffered = ~direct
        d = d[buffered]
        delay_dtype = np.uint8 if d.size == 0 or d.max() < 256 else np.int32
        ptr, post_b, w_b, order = self._grouped(pre[buffered], post[buffered], w[buffered])
        d = d[order].astype(delay_dtype)
        into = np.zeros(self.n, bool)
        into[post_b] = True
        return ((ptr, post_b, w_b, d, row_delays(ptr[::self.bounds.size - 1], d)),
                self._grouped(pre[direct], post[direct], w[direct])[:3], into)

    def _grouped(self, pre, post, w):
        """``(ptr, idx, w, order)``: synapses ``pre -> post`` sorted by row and thread range (stable)."""
        parts = self.bounds.size - 1
        key = pre * parts + np.searchsorted(self.bounds, post, side="right") - 1
        order = counting_order(key, self.n * parts)
        ptr = np.concatenate([[0], np.cumsum(np.bincount(key, minlength=self.n * parts))]).astype(np.int64)
        return ptr, post[order].astype(np.int32), w[order].astype(self.dtype), order

    # --------------------------------------------------------------------------------------------
    def run(self, steps: int, inputs=None, *, trials: int | None = None, seed: int = 0, record=True,
            record_state: dict | None = None, state_vars=("v",), initial: dict | None = None,
            progress: bool = False, chunk: int = 2000) -> SimulationResult:
        """Simulate ``steps`` time steps.

        ``inputs``: ``None``, one dict for all trials, or a list of dicts (one
        per trial) mapping a population name to its input: for ``spike_source``
        populations a boolean ``[steps, n]`` raster or a ``(times, indices)``
        pair; for ``lif`` populations an external current ``[steps, n]`` or
        ``[n]`` (constant) added to the excitatory channel.
        ``record``: True (all populations), False, or a list of population names.
        ``record_state``: ``{population: local indices or None (all)}`` with
        ``state_vars`` from ``("v", "i_exc", "i_inh")``.
        ``initial``: ``{population: {var: [n] or [trials, n]}}`` overrides the network's initial state.
        ``seed`` drives the Poisson sources (one independent stream per trial).
        """
        steps = positive_int(steps, "steps")
        per_trial = self._normalise_inputs(inputs, trials)
        n_trials = len(per_trial)
        src_ptr, src_idx = self._pack_spike_inputs(per_trial, steps)
        cur_idx, cur = self._pack_currents(per_trial, steps)
        state = self._initial_state(n_trials, initial)
        has_x = np.array([self.buffered_into[lo:hi].any() or (lo < hi and np.isin(lo, cur_idx))
                          for lo, hi in zip(self.pop_lo, self.pop_hi)], np.bool_)
        buf_e = np.zeros((n_trials, self.slots, self.n), self.dtype)
        buf_i = np.zeros_like(buf_e)
        rng = trial_generators(seed, n_trials)
        rec_mask = self._record_mask(record)
        tr_idx, tr_vars, trace_neurons = self._trace_spec(record_state, state_vars)
        trace = np.zeros((n_trials, steps, len(tr_vars), len(tr_idx)), self.dtype)
        advance, threads = self._kernel(n_trials)
        csrs = tuple(self.csr[k] for k in ("exc", "inh", "exc direct", "inh direct"))
        now = {var: state[var].copy() for var in ("i_exc", "i_inh")}  # i[t] on the steps that keep it
        decayed = {var: state[var] * self.coef[a] for var, a in (("i_exc", lif.A_SYN), ("i_inh", lif.A_INH))}
        keep_all = bool(np.isin(tr_vars, [1, 2]).any())

        def step_to(t1, t_done, rec_t, rec_n, n_rec, max_new):
            advance(t1, t_done, self.bounds, self.coef, self.pop_layout, self.prob, self.pop_lo, self.pop_hi,
                    self.pop_model, self.stage_ptr, has_x, csrs, src_ptr, src_idx, cur_idx, cur,
                    state["v"], decayed["i_exc"], decayed["i_inh"], state["refr"], now["i_exc"], now["i_inh"],
                    buf_e, buf_i, rng, rec_mask, rec_t, rec_n, n_rec, max_new, tr_idx, tr_vars, trace, keep_all,
                    steps - 1)

        before = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            spikes = run_chunks(step_to, steps, n_trials, int(rec_mask.sum()), chunk, progress)
        finally:
            numba.set_num_threads(before)
        return self._result(steps, spikes, trace, tr_idx, [STATE_VARS[v] for v in tr_vars], trace_neurons,
                            {"v": state["v"], **now})

    def _kernel(self, n_trials):
        """The time loop for ``n_trials`` trials and the number of threads it runs on."""
        parts = self.bounds.size - 1
        if parts > 1:
            return _advance_split, min(parts, numba.config.NUMBA_NUM_THREADS)
        if n_trials > 1 and self.threads is None:
            return _advance_parallel, numba.get_num_threads()
        return _advance_serial, numba.get_num_threads()

    def _result(self, steps, spikes, trace, tr_idx, var_names, trace_neurons, final_state) -> SimulationResult:
        """Package recorded spikes ``(rec_t, rec_n, n_rec)`` and traces ``[trials, steps, vars, k]``."""
        rec_t, rec_n, n_rec = spikes
        traces = {(pop, var): trace[:, :, a, sl] for pop, sl in trace_neurons.items()
                  for a, var in enumerate(var_names)}
        local = {pop: (tr_idx[sl] - self.layout[pop][0]) for pop, sl in trace_neurons.items()}
        return SimulationResult(self.network, steps, dict(self.layout),
                                [rec_t[r, :n_rec[r]].copy() for r in range(len(n_rec))],
                                [rec_n[r, :n_rec[r]].copy() for r in range(len(n_rec))],
                                traces, local, final_state)

    # --- input packing ----------------------------------------------------------------------------
    def _normalise_inputs(self, inputs, trials):
        if inputs is None or isinstance(inputs, dict):
            per_trial = [inputs or {}] * (1 if trials is None else positive_int(trials, "trials"))
        else:
            per_trial = list(inputs)
            if trials is not None and trials != len(per_trial):
                raise ValueError(f"trials={trials} but {len(per_trial)} input dicts were given")
            if not per_trial:
                raise ValueError("inputs is an empty list: give at least one trial")
        for r, spec in enumerate(per_trial):
            if not isinstance(spec, dict):
                raise TypeError(f"inputs of trial {r} must be a dict population -> input, got {type(spec).__name__}")
            for name in spec:
                if name not in self.layout:
                    raise ValueError(f"input for unknown population {name!r}; known: {sorted(self.layout)}")
                if self.network.population(name).model == "poisson":
                    raise ValueError(f"population {name!r} is a Poisson source; it takes no input array")
        return per_trial

    def _pack_spike_inputs(self, per_trial, steps):
        ptr = np.zeros((len(per_trial), steps + 1), np.int64)
        chunks, base = [], 0
        for r, spec in enumerate(per_trial):
            t_all, k_all = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
            for name, value in spec.items():
                if self.network.population(name).model != "spike_source":
                    continue
                t, k = _spike_events(value, name, steps, self.network.population(name).size)
                t_all.append(t)
                k_all.append(k + self.layout[name][0])
            t, k = np.concatenate(t_all), np.concatenate(k_all)
            order = np.argsort(t, kind="stable")
            chunks.append(k[order])
            ptr[r] = base + np.concatenate([[0], np.cumsum(np.bincount(t, minlength=steps))])
            base += len(t)
        return ptr, np.concatenate(chunks).astype(np.int64)

    def _pack_currents(self, per_trial, steps):
        names = sorted({n for spec in per_trial for n in spec if self.network.population(n).model == "lif"},
                       key=lambda n: self.layout[n][0])
        idx = np.concatenate([np.arange(*self.layout[n]) for n in names] + [np.empty(0, np.int64)]).astype(np.int64)
        cur = np.zeros((len(per_trial), steps if names else 0, len(idx)), self.dtype)
        col = 0
        for name in names:
            size = self.network.population(name).size
            for r, spec in enumerate(per_trial):
                if name in spec:
                    cur[r, :, col:col + size] = _current(spec[name], name, steps, size)
            col += size
        return idx, cur

    def _initial_state(self, n_trials, initial):
        state = {var: np.tile(self.initial[var], (n_trials, 1)) for var in STATE_VARS}
        for name, values in (initial or {}).items():
            if name not in self.layout:
                raise ValueError(f"initial state for unknown population {name!r}")
            lo, hi = self.layout[name]
            for var, value in values.items():
                if var not in STATE_VARS:
                    raise ValueError(f"unknown state variable {var!r}; expected one of {STATE_VARS}")
                value = np.asarray(value, dtype=self.dtype)
                if value.shape not in ((hi - lo,), (n_trials, hi - lo)) or not np.all(np.isfinite(value)):
                    raise ValueError(f"initial {var} of {name!r} must be finite with shape ({hi - lo},) or "
                                     f"({n_trials}, {hi - lo}), got {value.shape}")
                state[var][:, lo:hi] = value
        state["refr"] = np.zeros((n_trials, self.n), refractory_dtype(self.coef[lif.N_REF]))
        return state

    def _record_mask(self, record):
        mask = np.zeros(self.n, bool)
        names = list(self.layout) if record is True else [] if record is False else list(record)
        for name in names:
            if name not in self.layout:
                raise ValueError(f"cannot record unknown population {name!r}; known: {sorted(self.layout)}")
            mask[slice(*self.layout[name])] = True
        return mask

    def _trace_spec(self, record_state, state_vars):
        unknown = [v for v in state_vars if v not in STATE_VARS]
        if unknown:
            raise ValueError(f"unknown state variable(s) {unknown}; expected from {STATE_VARS}")
        idx, spans, start = [], {}, 0
        for name, local in (record_state or {}).items():
            if name not in self.layout or self.network.population(name).model != "lif":
                raise ValueError(f"record_state: {name!r} is not a LIF population of this network")
            lo, hi = self.layout[name]
            local = np.arange(hi - lo) if local is None else np.asarray(local, dtype=np.int64).ravel()
            if local.size and (local.min() < 0 or local.max() >= hi - lo):
                raise ValueError(f"record_state: indices for {name!r} must be in 0..{hi - lo - 1}")
            idx.append(local + lo)
            spans[name] = slice(start, start + local.size)
            start += local.size
        tr_idx = np.concatenate(idx).astype(np.int64) if idx else np.empty(0, np.int64)
        tr_vars = np.array([STATE_VARS.index(v) for v in state_vars], np.int64) if idx else np.empty(0, np.int64)
        return tr_idx, tr_vars, spans


def start_threads() -> int:
    """Numba's number of threads; the first call starts its pool with OpenMP's passive wait policy.

    A split network meets its threads once per stage and step. Spinning OpenMP threads hold their
    core while they wait, and on a busy machine that made 2 threads 10-20x slower than one
    (docs/performance.md); passive ones sleep. A policy set by the user wins, and the variable is
    removed again, so OpenMP libraries loaded later (torch's) do not see it.
    """
    if "OMP_WAIT_POLICY" in os.environ:
        return numba.get_num_threads()
    os.environ["OMP_WAIT_POLICY"] = "passive"
    try:
        return numba.get_num_threads()
    finally:
        del os.environ["OMP_WAIT_POLICY"]


def refractory_dtype(n_ref: np.ndarray):
    """The narrowest signed integer holding every refractory count ``n_ref`` (steps): the countdown is
    read and written for every neuron at every step, and int8 made that update 10-15 % faster than
    float32 (docs/performance.md)."""
    top = float(n_ref.max()) if n_ref.size else 0.0
    return next(t for t in (np.int8, np.int16, np.int32, np.int64) if top <= np.iinfo(t).max)


def row_delays(ptr: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Per CSR row: the delay all its synapses share (0 for an empty row), or -1 when they differ."""
    n = ptr.size - 1
    first = np.zeros(n, np.int64)
    nonempty = ptr[1:] > ptr[:-1]
    first[nonempty] = d[ptr[:-1][nonempty]]
    row = np.repeat(np.arange(n), np.diff(ptr))
    mixed = np.bincount(row, weights=d != first[row], minlength=n) > 0
    return np.where(mixed, -1, first).astype(np.int32)


def trial_generators(seed: int, n_trials: int) -> np.ndarray:
    """Independent, nonzero xorshift64* states for ``n_trials`` trials, derived from ``seed``."""
    return np.array([s.generate_state(1, np.uint64)[0] | np.uint64(1)
                     for s in np.random.SeedSequence(seed).spawn(n_trials)], dtype=np.uint64)


def run_chunks(step_to, steps: int, n_trials: int, max_new: int, chunk: int = 2000, progress: bool = False):
    """Drive a compiled kernel to ``steps`` in chunks; returns the spike buffers ``(rec_t, rec_n, n_rec)``.

    ``step_to(t1, t_done, rec_t, rec_n, n_rec, max_new)`` advances every trial ``r``
    from ``t_done[r]`` towards ``t1`` and stops early when its recording buffer
    has no room for ``max_new`` more spikes; the buffers are then doubled and the
    call repeated. Between chunks the progress bar advances.
    """
    cap = max(1024, min(max_new * steps, 4 * max_new + 100_000))
    rec_t = np.empty((n_trials, cap), np.int64)
    rec_n = np.empty((n_trials, cap), np.int64)
    n_rec = np.zeros(n_trials, np.int64)
    t_done = np.zeros(n_trials, np.int64)
    bar = _progress(steps, progress)
    for t1 in range(min(chunk, steps), steps + chunk, chunk):
        t1 = min(t1, steps)
        while True:
            step_to(t1, t_done, rec_t, rec_n, n_rec, max_new)
            if (t_done >= t1).all():
                break
            rec_t, rec_n = _grow(rec_t), _grow(rec_n)
        if bar is not None:
            bar.update(t1 - bar.n)
        if t1 == steps:
            break
    if bar is not None:
        bar.close()
    return rec_t, rec_n, n_rec


def positive_int(value, name):
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _spike_events(value, name, steps, size):
    """``(times, indices)`` from a boolean raster ``[steps, n]`` or a ``(times, indices)`` pair."""
    if isinstance(value, tuple):
        t, k = (np.asarray(a, dtype=np.int64).ravel() for a in value)
        if t.shape != k.shape:
            raise ValueError(f"input of {name!r}: times and indices differ in length ({t.size} vs {k.size})")
    else:
        raster = np.asarray(value)
        if raster.shape != (steps, size):
            raise ValueError(f"input raster of {name!r} has shape {raster.shape}, expected ({steps}, {size})")
        t, k = np.nonzero(raster)
    if t.size and (t.min() < 0 or t.max() >= steps or k.min() < 0 or k.max() >= size):
        raise ValueError(f"input spikes of {name!r} must have times in 0..{steps - 1} and indices in 0..{size - 1}")
    return t.astype(np.int64), k.astype(np.int64)


def _current(value, name, steps, size):
    value = np.asarray(value, dtype=np.float64)
    if value.shape not in ((size,), (steps, size)):
        raise ValueError(f"input current of {name!r} has shape {value.shape}, expected ({steps}, {size}) or ({size},)")
    if not np.all(np.isfinite(value)):
        raise ValueError(f"input current of {name!r} contains NaN or inf")
    return value


def _grow(a):
    out = np.empty((a.shape[0], 2 * a.shape[1]), a.dtype)
    out[:, :a.shape[1]] = a
    return out


def _progress(total, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="step", desc="simulate")


def simulate(network: Network, steps: int, inputs=None, **kwargs) -> SimulationResult:
    """One-call convenience: ``Simulator(network, dtype, threads).run(steps, inputs, **kwargs)``."""
    dtype, threads = kwargs.pop("dtype", np.float32), kwargs.pop("threads", None)
    return Simulator(network, dtype=dtype, threads=threads).run(steps, inputs, **kwargs)
