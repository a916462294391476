"""Fixed-point mode of the event simulator: Lava's bit-accurate LIF and Dense/Sparse arithmetic, exactly.

A :class:`FixedPointNetwork` is a :class:`~neuro.network.Network` (structure,
names, inputs) plus integer Loihi parameters per LIF population
(:class:`FixedNeurons`) and 8-bit weights with a shared exponent per projection
(:class:`FixedSynapses`); ``deployment.quantize`` builds one. Every step ``t``:

1. stage by stage (``Network.stages()``), each LIF neuron reads ``a = int32(sum over
   projections of its Dense outputs due at t)`` and updates with
   :func:`neurons.loihi.loihi_lif_update` (integer state, wrap/clip, strict ``>``);
2. after each stage, its spikes are summed per (projection, delay, target) as integer weights,
   then shifted by the projection's ``weight_exp`` (``<<`` or arithmetic ``>>``, per sum as
   Lava's Dense does) and delivered at ``t + d``. ``d = 1`` is Lava's Dense (its output is
   the previous step's accumulation); ``d > 1`` is ``DelayDense`` with ``delays = d - 1``;
   ``d = 0`` (feed-forward layers of a trained model, acyclic by construction) reaches the
   later stages of the same step. Lava has no zero delay: the exporter runs such a layer
   behind its source (``deployment.lava_timing``), which gives exactly the same spikes.

Inputs are spike sources (``spike_source`` rasters or seeded ``poisson``, drawn
exactly as the float simulator draws them); results are a
:class:`~neuro.simulator.SimulationResult`, so spikes compare one-to-one with
the float engine and with Lava.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from neuro.network import Network
from neuro.simulator import (
    SimulationResult,
    Simulator,
    fire_inputs,
    positive_int,
    record_spike,
    record_traces,
    run_chunks,
    trial_generators,
)
from neurons import loihi
from neurons.lif import RESET_MODES

FIXED_STATE_VARS = ("v", "u", "u_inh")
SIGN_MODES = loihi.SIGN_MODES
MAX_DELAY = 64  # DelayDense holds delays 0..63 on top of Dense's one step (after the exporter's shift)
_NEURON_RANGES = {"du": (0, loihi.DU_MAX), "du_inh": (0, loihi.DU_MAX), "dv": (0, loihi.DV_MAX),
                  "vth": (0, loihi.VTH_MAX), "bias_mant": (loihi.BIAS_MANT_MIN, loihi.BIAS_MANT_MAX),
                  "bias_exp": (0, loihi.BIAS_EXP_MAX), "bias_syn_mant": (loihi.BIAS_MANT_MIN, loihi.BIAS_MANT_MAX),
                  "bias_syn_exp": (0, loihi.BIAS_EXP_MAX), "u0": (1 - loihi.MAX_UV, loihi.MAX_UV),
                  "u_inh0": (1 - loihi.MAX_UV, loihi.MAX_UV), "v0": (1 - loihi.MAX_UV, loihi.MAX_UV - 1),
                  "n_ref": (0, 2**31 - 1)}


@dataclass(frozen=True, eq=False)
class FixedNeurons:
    """Integer Loihi parameters and initial state of one LIF population (arrays of its size).

    ``two_channels`` keeps the inhibitory current ``u_inh`` (decay ``du_inh``) apart;
    otherwise both receptors feed one current with decay ``du`` (Lava's single ``a_in``).
    ``bias_syn_mant << bias_syn_exp`` is a constant into ``u`` every step (:mod:`neurons.loihi`; None: 0).
    """

    du: np.ndarray
    dv: np.ndarray
    vth: np.ndarray
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    v0: np.ndarray
    u0: np.ndarray
    du_inh: np.ndarray
    u_inh0: np.ndarray
    n_ref: np.ndarray
    reset: str = "hard"
    two_channels: bool = False
    bias_syn_mant: np.ndarray | None = None
    bias_syn_exp: np.ndarray | None = None

    def __post_init__(self):
        if self.reset not in RESET_MODES:
            raise ValueError(f"unknown reset mode {self.reset!r}; expected one of {RESET_MODES}")
        size = len(self.dv)
        for name in ("bias_syn_mant", "bias_syn_exp"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros(size, np.int64))
        for name, (lo, hi) in _NEURON_RANGES.items():
            value = np.asarray(getattr(self, name))
            if value.shape != (size,) or not np.issubdtype(value.dtype, np.integer):
                raise ValueError(f"{name} must be an integer array of shape ({size},), got {value.dtype} {value.shape}")
            bad = (value < lo) | (value > hi)
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise ValueError(f"{name} of neuron {k} is {int(value[k])}, outside the Loihi range {lo}..{hi}")
            object.__setattr__(self, name, value.astype(np.int64))


@dataclass(frozen=True, eq=False)
class FixedSynapses:
    """Integer weights (one per synapse of ``projection.active()``, in its CSR order) and the shared exponent.

    Weights are what Lava's Dense uses after its clip/truncate (``SIGN_MODES``: excitatory ``0..255``,
    inhibitory ``-255..0``, mixed even values ``-256..254``), so both sides use the same numbers.
    """

    weights: np.ndarray
    weight_exp: int = 0
    sign_mode: str = "mixed"

    def __post_init__(self):
        w = np.asarray(self.weights)
        if not np.issubdtype(w.dtype, np.integer) or w.ndim != 1:
            raise ValueError(f"weights must be a 1-D integer array, got {w.dtype} {w.shape}")
        if self.sign_mode not in SIGN_MODES:
            raise ValueError(f"unknown sign mode {self.sign_mode!r}; expected one of {sorted(SIGN_MODES)}")
        lo, hi, step = SIGN_MODES[self.sign_mode]
        bad = (w < lo) | (w > hi) | (w % step != 0)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise ValueError(f"weight {j} is {int(w[j])}: {self.sign_mode} 8-bit Loihi weights are "
                             f"{lo}..{hi}{' and even' if step == 2 else ''} (Lava drops the rest)")
        object.__setattr__(self, "weights", w.astype(np.int64))
        object.__setattr__(self, "weight_exp", int(self.weight_exp))


@dataclass(frozen=True, eq=False)
class FixedPointNetwork:
    """A network with integer Loihi parameters for every LIF population and projection."""

    network: Network
    neurons: dict
    synapses: dict
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        for pop in self.network.populations:
            if pop.model == "lif":
                fixed = self.neurons.get(pop.name)
                if not isinstance(fixed, FixedNeurons) or len(fixed.dv) != pop.size:
                    raise ValueError(f"population {pop.name!r}: needs FixedNeurons of size {pop.size}")
        for proj in self.network.projections:
            syn = self.synapses.get(proj.name)
            active = proj.active()
            if not isinstance(syn, FixedSynapses) or syn.weights.size != active.nnz:
                raise ValueError(f"projection {proj.name!r}: needs FixedSynapses with {active.nnz} weights")
            if active.nnz and active.delays.max() > MAX_DELAY:
                raise ValueError(f"projection {proj.name!r}: delays must be 0..{MAX_DELAY} steps in fixed point "
                                 f"(Lava's DelayDense holds at most {MAX_DELAY}), got up to {active.delays.max()}")


@njit(cache=True, nogil=True)
def _advance_fixed(t1, t_done, pop_lo, pop_hi, pop_model, stage_ptr, prob, src_ptr, src_idx,
                   du, du_inh, dv, vth, bias, bias_syn, reset, n_ref, two_ch,
                   syn_ptr, syn_slot, syn_w, slot_post, slot_delay, slot_exp, slot_inh,
                   u, u_inh, v, refr, ring_e, ring_i, rng,
                   rec_mask, rec_t, rec_n, n_rec, max_new, tr_idx, tr_vars, trace):
    n_trials, n = v.shape
    slots = ring_e.shape[1]
    acc = np.zeros(slot_post.size, np.int64)
    listed = np.zeros(slot_post.size, np.bool_)
    touched = np.empty(slot_post.size, np.int64)
    fired = np.empty(n, np.int64)
    for r in range(n_trials):
        t = t_done[r]
        while t < t1:
            if n_rec[r] + max_new > rec_t.shape[1]:
                break  # recording buffer full: the caller grows it and resumes
            a_e = ring_e[r, t % slots]
            a_i = ring_i[r, t % slots]
            for stage in range(stage_ptr.size - 1):
                nf = 0
                for p in range(stage_ptr[stage], stage_ptr[stage + 1]):
                    lo, hi = pop_lo[p], pop_hi[p]
                    if pop_model[p] == 0:
                        nf = loihi.loihi_lif_update(u[r], u_inh[r], v[r], refr[r], a_e, a_i, du, du_inh, dv, vth,
                                                    bias, bias_syn, reset, n_ref, two_ch, lo, hi, fired, nf)
                    else:
                        nf = fire_inputs(pop_model[p], lo, hi, t, r, src_ptr, src_idx, prob, rng, fired, nf)
                n_touched = 0
                for q in range(nf):
                    k = fired[q]
                    record_spike(rec_mask, rec_t, rec_n, n_rec, r, t, k)
                    for syn in range(syn_ptr[k], syn_ptr[k + 1]):
                        s = syn_slot[syn]
                        if not listed[s]:
                            listed[s] = True
                            touched[n_touched] = s
                            n_touched += 1
                        acc[s] += syn_w[syn]
                for j in range(n_touched):  # delay 0 lands in this step's buffer, read by later stages
                    s = touched[j]
                    e = slot_exp[s]
                    val = acc[s] << e if e >= 0 else acc[s] >> -e
                    acc[s] = 0
                    listed[s] = False
                    target = ring_i if slot_inh[s] else ring_e
                    target[r, (t + slot_delay[s]) % slots, slot_post[s]] += loihi.wrap32(val)
            record_traces(trace, r, t, tr_idx, tr_vars, v, u, u_inh)
            t += 1
        t_done[r] = t


class FixedPointSimulator(Simulator):
    """Compile a :class:`FixedPointNetwork` once; :meth:`run` it with the float simulator's input/record API."""

    def __init__(self, fixed: FixedPointNetwork):
        super().__init__(fixed.network, dtype=np.float64)
        self.fixed = fixed
        n = self.n
        names = ("du", "du_inh", "dv", "vth", "bias", "bias_syn", "reset", "n_ref", "two_ch", "u0", "u_inh0", "v0")
        arr = {k: np.zeros(n, np.int64) for k in names}
        for pop in fixed.network.populations:
            if pop.model != "lif":
                continue
            lo, hi = self.layout[pop.name]
            f = fixed.neurons[pop.name]
            for k in ("du", "du_inh", "dv", "n_ref", "u0", "u_inh0", "v0"):
                arr[k][lo:hi] = getattr(f, k)
            arr["vth"][lo:hi] = loihi.effective_threshold(f.vth)
            arr["bias"][lo:hi] = loihi.effective_bias(f.bias_mant, f.bias_exp)
            arr["bias_syn"][lo:hi] = loihi.effective_bias(f.bias_syn_mant, f.bias_syn_exp)
            arr["reset"][lo:hi] = RESET_MODES.index(f.reset)
            arr["two_ch"][lo:hi] = f.two_channels
        self.arrays = arr
        self._build_synapses()

    def _build_synapses(self):
        """One CSR over presynaptic neurons; each synapse adds to an accumulator slot (projection, delay, target)."""
        pre, slot, w = [np.empty(0, np.int64)], [np.empty(0, np.int64)], [np.empty(0, np.int64)]
        slot_post, slot_delay, slot_exp, slot_inh = ([np.empty(0, np.int64)] for _ in range(4))
        base = 0
        for proj in self.fixed.network.projections:
            s = proj.active()
            syn = self.fixed.synapses[proj.name]
            post_pop = self.fixed.network.population(proj.post)
            two = self.fixed.neurons[proj.post].two_channels
            d_min, d_max = (int(s.delays.min()), int(s.delays.max())) if s.nnz else (1, 1)
            n_post, n_delays = post_pop.size, d_max - d_min + 1
            pre.append(s.pre_indices() + self.layout[proj.pre][0])
            slot.append(base + (s.delays - d_min) * n_post + s.indices)
            w.append(syn.weights)
            lo = self.layout[proj.post][0]
            count = n_delays * n_post
            slot_post.append(lo + np.tile(np.arange(n_post), n_delays))
            slot_delay.append(np.repeat(np.arange(d_min, d_max + 1), n_post))
            slot_exp.append(np.full(count, syn.weight_exp))
            slot_inh.append(np.full(count, int(two and proj.receptor == "inh")))
            base += count
        pre, slot, w = (np.concatenate(a).astype(np.int64) for a in (pre, slot, w))
        order = np.argsort(pre, kind="stable")
        self.syn_ptr = np.concatenate([[0], np.cumsum(np.bincount(pre, minlength=self.n))]).astype(np.int64)
        self.syn_slot, self.syn_w = slot[order], w[order]
        self.slot_post, self.slot_delay, self.slot_exp, self.slot_inh = (
            np.concatenate(a).astype(np.int64) for a in (slot_post, slot_delay, slot_exp, slot_inh))
        self.slots = int(self.slot_delay.max()) + 1 if self.slot_delay.size else 2

    def run(self, steps: int, inputs=None, *, trials: int | None = None, seed: int = 0, record=True,
            record_state: dict | None = None, state_vars=("v",), progress: bool = False,
            chunk: int = 2000) -> SimulationResult:
        """Simulate ``steps`` steps in fixed point; arguments as :meth:`Simulator.run` (spike inputs only).

        ``state_vars`` come from ``("v", "u", "u_inh")`` and are traced as integers.
        """
        steps = positive_int(steps, "steps")
        per_trial = self._normalise_inputs(inputs, trials)
        for spec in per_trial:
            for name in spec:
                if self.network.population(name).model == "lif":
                    raise ValueError(f"fixed-point mode takes spike inputs only; population {name!r} is LIF "
                                     "(drive it through a spike_source population and a projection)")
        n_trials = len(per_trial)
        src_ptr, src_idx = self._pack_spike_inputs(per_trial, steps)
        a = self.arrays
        state = {k: np.tile(a[k + "0"], (n_trials, 1)) for k in FIXED_STATE_VARS}
        refr = np.zeros((n_trials, self.n), np.int64)
        ring_e = np.zeros((n_trials, self.slots, self.n), np.int64)
        ring_i = np.zeros_like(ring_e)
        rng = trial_generators(seed, n_trials)
        rec_mask = self._record_mask(record)
        unknown = [v for v in state_vars if v not in FIXED_STATE_VARS]
        if unknown:
            raise ValueError(f"unknown fixed-point state variable(s) {unknown}; expected from {FIXED_STATE_VARS}")
        tr_idx, _, trace_neurons = self._trace_spec(record_state, ())
        tr_vars = np.array([FIXED_STATE_VARS.index(v) for v in state_vars], np.int64) if tr_idx.size \
            else np.empty(0, np.int64)
        trace = np.zeros((n_trials, steps, len(tr_vars), len(tr_idx)), np.int64)

        def step_to(t1, t_done, rec_t, rec_n, n_rec, max_new):
            _advance_fixed(t1, t_done, self.pop_lo, self.pop_hi, self.pop_model, self.stage_ptr, self.prob,
                           src_ptr, src_idx, a["du"], a["du_inh"], a["dv"], a["vth"], a["bias"], a["bias_syn"],
                           a["reset"], a["n_ref"], a["two_ch"], self.syn_ptr, self.syn_slot, self.syn_w, self.slot_post,
                           self.slot_delay, self.slot_exp, self.slot_inh, state["u"], state["u_inh"],
                           state["v"], refr, ring_e, ring_i, rng, rec_mask, rec_t, rec_n, n_rec, max_new,
                           tr_idx, tr_vars, trace)

        spikes = run_chunks(step_to, steps, n_trials, int(rec_mask.sum()), chunk, progress)
        return self._result(steps, spikes, trace, tr_idx, [FIXED_STATE_VARS[v] for v in tr_vars], trace_neurons,
                            {k: state[k] for k in FIXED_STATE_VARS})
