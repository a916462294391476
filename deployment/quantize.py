"""Quantize a :class:`~neuro.network.Network` to Loihi fixed point (a :class:`~neuro.fixed_point.FixedPointNetwork`).

Each LIF neuron ``k`` is first normalised so that reset is 0 and threshold is the
population's common ``vth`` (Lava's ``vth`` is one value per process): with
``theta_k = v_th - v_reset`` and ``V`` = the population's threshold mantissa, one
volt of neuron ``k`` is ``s_k = 64 V / theta_k`` integer voltage units. Then::

    dv        = round((1 - a_mem) 4096)            a_mem = exp(-dt / tau_mem), clipped to 0..4095
    du        = round((1 - a_syn) 4096) - 1        (Lava adds ds_offset = 1)
    bias_eff  = s_k (bias + dv/4096 (v_rest - v_reset))  -> bias_mant << bias_exp, mantissa 13 bit, exp 0..7
    bias_syn  = s_k bias_syn  -> bias_syn_mant << bias_syn_exp, a constant into u each step (neurons.loihi);
                where the current has no memory (tau_syn = 0) it is the same as a bias and joins bias_eff
    v0        = s_k (v_init - v_reset),   u0 = s_k i_init
    W         = round(w s_k / 64 / 2^weight_exp)   per projection, 8 bit by sign mode

The leak towards ``v_rest`` becomes part of the bias (exact in the algebra:
``a v' + (1 - a) v'_rest`` with ``v' = v - v_reset``). ``V`` is the largest value
with ``V <= 2^17 / headroom`` (headroom keeps ``v`` and ``u`` far from the 24-bit
limits) and every incoming weight within 8 bits at ``weight_exp <= 7``; the
exponent is the smallest that fits (always ``>= 0``, so splitting a projection
into blocks never changes Lava's per-sum rounding). Sign modes: excitatory
``0..255``, inhibitory ``-255..0``, mixed even values ``-256..254`` (Lava drops
the mixed mode's last bit).

Refused with a ``QuantizationError`` naming the neuron or synapse: a threshold
not above the reset, ``tau_syn = inf``, a bias beyond ``4095 * 2^7`` units, weights
that change some neuron's summed input ``sum |w_q - w| / sum |w|`` by more than
``max_error`` and more than one weight step (a projection's dynamic range beyond 8 bits), an initial state outside
24 bits, delays Lava cannot time (:mod:`deployment.lava_timing`), current inputs, a ``bias_syn`` of a population
fed only by inhibitory projections with ``tau_syn_inh != tau_syn`` (its one current decays as the inhibitory one).

A non-spiking readout (:func:`is_readout`) has no threshold to respect: its voltage
scale uses the 8 weight bits in full while the membrane provably stays within range.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deployment.lava_timing import compile_timing
from neuro.fixed_point import SIGN_MODES, FixedNeurons, FixedPointNetwork, FixedSynapses
from neuro.network import Network
from neurons import lif, loihi

DEFAULT_HEADROOM = 16
DEFAULT_MAX_ERROR = 0.10  # refuse a projection that changes some neuron's summed |input| by more than this


class QuantizationError(ValueError):
    """A parameter of the network cannot be represented in Loihi fixed point."""


def synaptic_bias(pop, coef, primary) -> tuple[np.ndarray, np.ndarray]:
    """``(into v, into u)``: a ``bias_syn`` without current memory (``a_syn = 0``) is a bias into ``v``; with memory it
    goes into ``u`` (the excitatory current). Refused where the one current ``u`` decays as the inhibitory channel
    (only inhibitory projections) and that is not the excitatory decay."""
    b = np.asarray(pop.params["bias_syn"], np.float64)
    memory = coef[lif.A_SYN] != 0
    if primary == lif.A_INH and np.any(memory & (b != 0) & (coef[lif.A_INH] != coef[lif.A_SYN])):
        k = int(np.flatnonzero(memory & (b != 0))[0])
        raise QuantizationError(f"population {pop.name!r}: neuron {k} has a synaptic bias bias_syn={b[k]:g} into its "
                                "excitatory current, but only inhibitory projections reach it and tau_syn_inh != "
                                "tau_syn, so its one Loihi current u decays as the inhibitory channel")
    return np.where(memory, 0.0, b), np.where(memory, b, 0.0)


@dataclass
class QuantizationReport:
    """Quantization error per parameter: rows of ``(where, parameter, max abs error, max rel error, note)``.

    Absolute errors of voltages, biases and weights are in threshold units (``theta``); of time
    constants in seconds. The relative error of a projection's weights is the largest change of a
    target neuron's summed input, ``sum_j |w_q - w| / sum_j |w|`` (:func:`input_error`), among the
    neurons whose input moves by more than one weight step.
    """

    rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def add(self, where, parameter, abs_err, rel_err, note=""):
        self.rows.append((where, parameter, float(abs_err), float(rel_err), note))

    def table(self) -> str:
        head = f"{'where':<24} {'parameter':<12} {'max abs err':>12} {'max rel err':>12}  note"
        lines = [head, "-" * len(head)]
        for where, param, a, r, note in self.rows:
            lines.append(f"{where:<24} {param:<12} {a:>12.3g} {r:>12.3g}  {note}")
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def _decay_code(a: np.ndarray, offset: int, where: str, what: str) -> np.ndarray:
    """``round((1 - a) 4096) - offset`` clipped to 0..4095; ``a = 1`` with offset 1 (no decay) is refused."""
    code = np.rint((1.0 - a) * loihi.DECAY_UNITY).astype(np.int64) - offset
    if offset and np.any(a >= 1.0):
        k = int(np.flatnonzero(a >= 1.0)[0])
        raise QuantizationError(f"{where}: {what} of neuron {k} is inf (a current that never decays); Loihi's "
                                "current decays by at least 1/4096 per step (du >= 0): give a finite tau")
    return np.clip(code, 0, loihi.DU_MAX)


def _tau_error(report, where, what, a_true, code, offset, dt):
    a_q = 1.0 - (code + offset) / loihi.DECAY_UNITY
    with np.errstate(divide="ignore", invalid="ignore"):
        tau_true = np.where(a_true > 0, -dt / np.log(a_true), 0.0)
        tau_q = np.where(a_q > 0, -dt / np.log(np.where(a_q > 0, a_q, 1.0)), 0.0)
        abs_err = np.abs(tau_q - tau_true)
        rel = np.where(tau_true > 0, abs_err / tau_true, 0.0)
    report.add(where, what, abs_err.max(initial=0.0), rel.max(initial=0.0),
               f"{np.unique(code).size} distinct code(s)")


def _split_bias(b: np.ndarray, where: str, what: str = "bias") -> tuple[np.ndarray, np.ndarray]:
    """Mantissa (13-bit signed) and smallest exponent (0..7) with ``mant << exp ~ b``."""
    mant, exp = loihi.split_bias(b)
    if (exp < 0).any():
        k = int(np.flatnonzero(exp < 0)[0])
        raise QuantizationError(f"{where}: {what} of neuron {k} is {b[k]:.4g} voltage units, beyond Loihi's "
                                f"{loihi.BIAS_MANT_MAX} << {loihi.BIAS_EXP_MAX}; "
                                + ("lower the bias or the resting potential's distance from the reset"
                                   if what == "bias" else f"lower {what}") + ", or raise headroom")
    return mant, exp


def _fit_weights(w_units: np.ndarray, where: str) -> FixedSynapses:
    """8-bit weights with the smallest exponent ``0..7`` for ``w_units`` (in vth-mantissa units)."""
    if w_units.size == 0:
        return FixedSynapses(np.zeros(0, np.int64), 0, "mixed")
    fit = loihi.fit_weights(w_units)
    if fit is None:
        raise QuantizationError(f"{where}: weights up to {np.abs(w_units).max():.4g} vth units do not fit 8 bits "
                                f"with weight_exp <= {loihi.MAX_WEIGHT_EXP}")
    return FixedSynapses(*fit)


def input_error(w, w_q, post, n_post) -> tuple[np.ndarray, np.ndarray]:
    """Per target neuron: ``(sum_j |w_q - w|, sum_j |w_q - w| / sum_j |w|)`` over its synapses (0 without any)."""
    moved = np.bincount(post, np.abs(w_q - w), minlength=n_post)
    total = np.bincount(post, np.abs(w), minlength=n_post)
    return moved, np.divide(moved, total, out=np.zeros(n_post), where=total > 0)


def _check_input_error(where, moved, err, lsb, lost_per_neuron, max_error) -> float:
    """The largest input error of a neuron whose input moves by more than one weight step; refused beyond
    ``max_error`` (a smaller change is below the resolution of 8 bits whatever the scale)."""
    significant = np.where(moved > lsb, err, 0.0)
    bad = significant > max_error
    if bad.any():
        k = int(np.flatnonzero(bad)[np.argmax(err[bad])])
        raise QuantizationError(
            f"{where}: the 8-bit weights change the input of neuron {k} by {err[k]:.1%} (sum |w_q - w| / sum |w|; "
            f"{int(lost_per_neuron[k])} of its synapses round to 0): the weights span more than Loihi's 8-bit range; "
            f"allowed: {max_error:.0%} (raise max_error, or train with quantization-aware training, model.qat)")
    return float(significant.max(initial=0.0))


def receptors_of(network: Network, pop) -> set:
    """Receptors (``exc``/``inh``) that feed ``pop``: by a projection or a nonzero initial current."""
    used = {p.receptor for p in network.projections if p.post == pop.name and p.active().nnz}
    used |= {r for r in ("exc", "inh") if np.any(pop.initial.get(f"i_{r}", 0.0))}
    return used


def initial_currents(pop, two_channels: bool) -> tuple[np.ndarray, np.ndarray]:
    """Initial ``(u, u_inh)``: both currents in ``u`` when Lava holds one channel."""
    i_exc, i_inh = (np.broadcast_to(pop.initial.get(f"i_{r}", 0.0), (pop.size,)) for r in ("exc", "inh"))
    return (i_exc, i_inh) if two_channels else (i_exc + i_inh, np.zeros(pop.size))


def _incoming(network: Network, name: str):
    return [p for p in network.projections if p.post == name]


def _threshold_mantissa(network, pop, theta, headroom, where) -> int:
    """Largest ``V <= 2^17 / headroom`` with every incoming weight <= 254 * 2^7 units."""
    rel = max([float((np.abs(s.weights) / theta[s.indices]).max()) for s in
               (p.active() for p in _incoming(network, pop.name)) if s.nnz] + [0.0])
    cap = loihi.vth_mantissa(rel, headroom)
    if cap < 1:
        raise QuantizationError(f"{where}: incoming weights exceed {254 * 2**loihi.MAX_WEIGHT_EXP} thresholds")
    return cap


def is_readout(network: Network, pop) -> bool:
    """A non-spiking readout (a trained model's membrane readout): reset ``none`` and no outgoing projection.

    Only its membrane matters, so its threshold is never represented: it gets its own voltage scale.
    """
    marked = pop.metadata.get("readout") or pop.metadata.get("layer") == "Readout"
    return bool(marked and pop.reset == "none" and not any(p.pre == pop.name for p in network.projections))


def _readout_scale(network, pop, coef) -> tuple[float, str]:
    """Units per volt of a readout: the 8 incoming weight bits used in full, ``|v|`` provably below ``vth << 6``.

    ``|v| <= (sum_pre |w| + |bias|) / (1 - a_mem)`` bounds the membrane (binary inputs,
    ``tau_syn = 0``); with a slower current or an IF readout the bound is not proven and only the
    weights set the scale (the report says so).
    """
    incoming = [p.active() for p in _incoming(network, pop.name) if p.active().nnz]
    w_max = max((np.abs(s.weights).max() for s in incoming), default=0.0)
    drive = np.abs(pop.params["bias"]).copy()
    for s in incoming:
        drive += np.bincount(s.indices, np.abs(s.weights), minlength=pop.size)
    bound = loihi.membrane_bound(drive, coef[lif.A_MEM], coef[lif.A_SYN])
    scale = loihi.readout_units(w_max, bound)
    if bound is not None:
        return scale, f"readout: {scale:.4g} units per volt, |v| <= {bound:.4g} proven below the threshold"
    return scale, f"readout: {scale:.4g} units per volt from the weights (|v| bound not proven: tau_syn > 0 or IF)"


def quantize(network: Network, headroom: int = DEFAULT_HEADROOM,
             max_error: float = DEFAULT_MAX_ERROR) -> tuple[FixedPointNetwork, QuantizationReport]:
    """Map ``network`` to Loihi fixed point (module docstring); returns the network and its error report."""
    if int(headroom) != headroom or headroom < 1:
        raise ValueError(f"headroom must be a positive integer, got {headroom!r}")
    compile_timing(network)  # refuses what Lava cannot time before anything else is done
    report = QuantizationReport()
    dt = network.dt
    neurons, scale, readout_scale = {}, {}, {}
    for pop in network.populations:
        if pop.model != "lif":
            continue
        where = f"population {pop.name!r}"
        p = pop.params
        theta = p["v_th"] - p["v_reset"]
        if np.any(theta <= 0):
            k = int(np.flatnonzero(theta <= 0)[0])
            raise QuantizationError(f"{where}: neuron {k} has v_th={p['v_th'][k]} <= v_reset={p['v_reset'][k]}; "
                                    "Loihi needs the threshold above the reset")
        coef = lif.discretize(p, dt, pop.reset)
        if is_readout(network, pop):
            vth = loihi.VTH_MAX
            units, note = _readout_scale(network, pop, coef)
            theta = np.full(pop.size, 64.0 * vth / units)
            readout_scale[pop.name] = units
            report.notes.append(f"{pop.name}: {note}")
        else:
            vth = _threshold_mantissa(network, pop, theta, headroom, where)
        s = 64.0 * vth / theta  # integer voltage units per volt, per neuron
        scale[pop.name] = (vth, theta)
        receptors = receptors_of(network, pop)
        dv = _decay_code(coef[lif.A_MEM], 0, where, "tau_mem")
        primary = lif.A_INH if receptors == {"inh"} else lif.A_SYN
        du = _decay_code(coef[primary], 1, where, "tau_syn" if primary == lif.A_SYN else "tau_syn_inh")
        du_inh = _decay_code(coef[lif.A_INH], 1, where, "tau_syn_inh") if "inh" in receptors else du.copy()
        two = bool(receptors == {"exc", "inh"} and np.any(du_inh != du))
        _tau_error(report, pop.name, "tau_mem", coef[lif.A_MEM], dv, 0, dt)
        _tau_error(report, pop.name, "tau_syn", coef[primary], du, 1, dt)
        if two:
            _tau_error(report, pop.name, "tau_syn_inh", coef[lif.A_INH], du_inh, 1, dt)
        into_v, into_u = synaptic_bias(pop, coef, primary)
        bias = s * (p["bias"] + into_v + dv / loihi.DECAY_UNITY * (p["v_rest"] - p["v_reset"]))
        bias_mant, bias_exp = _split_bias(bias, where)
        bias_q = loihi.effective_bias(bias_mant, bias_exp)
        report.add(pop.name, "bias", np.max(np.abs(bias_q - bias) / s / theta), 0.0,
                   "incl. leak to v_rest" if np.any(p["v_rest"] != p["v_reset"]) else "")
        syn_mant, syn_exp = _split_bias(s * into_u, where, "bias_syn")
        if np.any(into_u != 0):
            report.add(pop.name, "bias_syn", np.max(np.abs(loihi.effective_bias(syn_mant, syn_exp) - s * into_u)
                                                    / s / theta), 0.0, "a constant into u (custom process)")
        state = {}
        u0, u_inh0 = initial_currents(pop, two)
        for var, value in (("v0", pop.initial.get("v", p["v_rest"]) - p["v_reset"]), ("u0", u0), ("u_inh0", u_inh0)):
            q = np.rint(value * s).astype(np.int64)
            if np.any(np.abs(q) >= loihi.MAX_UV):
                k = int(np.flatnonzero(np.abs(q) >= loihi.MAX_UV)[0])
                raise QuantizationError(f"{where}: initial {var[:-1]} of neuron {k} ({value[k]:.4g}) is beyond the "
                                        "24-bit state range at this scale; lower headroom or the initial state")
            state[var] = q
        n_ref = lif.refractory_steps(p["t_ref"], dt).astype(np.int64)
        neurons[pop.name] = FixedNeurons(du=du, dv=dv, vth=np.full(pop.size, vth, np.int64), bias_mant=bias_mant,
                                         bias_exp=bias_exp, du_inh=du_inh, n_ref=n_ref, reset=pop.reset,
                                         two_channels=two, bias_syn_mant=syn_mant, bias_syn_exp=syn_exp, **state)
        if pop.name not in readout_scale:
            report.add(pop.name, "v_th", 0.0, 0.0, f"vth mantissa {vth} (per-neuron thresholds scale the weights)")
        if pop.metadata.get("mpr") or pop.metadata.get("use_mpr"):
            report.notes.append(f"{pop.name}: MPR changes only surrogate gradients; forward spikes are "
                                "H(v - v_th) and need nothing on chip")
    synapses = {}
    for proj in network.projections:
        s = proj.active()
        vth, theta = scale[proj.post]
        w_units = s.weights * vth / theta[s.indices]
        where = f"projection {proj.name!r}"
        syn = _fit_weights(w_units, where)
        synapses[proj.name] = syn
        w_back = syn.weights * 2.0**syn.weight_exp * theta[s.indices] / vth
        err = np.abs(w_back - s.weights) / theta[s.indices]
        n_post = network.population(proj.post).size
        moved, in_err = input_error(s.weights, w_back, s.indices, n_post)
        lost = (syn.weights == 0) & (s.weights != 0)
        lsb = SIGN_MODES[syn.sign_mode][2] * 2.0**syn.weight_exp * theta / vth  # one weight step, per target
        worst = _check_input_error(where, moved, in_err, lsb, np.bincount(s.indices, lost, minlength=n_post),
                                   max_error)
        report.add(proj.name, "weight", err.max(initial=0.0), worst,
                   f"{syn.sign_mode}, weight_exp {syn.weight_exp}, input error mean {in_err.mean():.2%}"
                   + (f", {int(lost.sum())} rounded to 0" if lost.any() else ""))
    fixed = FixedPointNetwork(network, neurons, synapses, {"headroom": headroom, "readout_scale": readout_scale})
    return fixed, report
