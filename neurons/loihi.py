"""Loihi fixed-point CUBA LIF: the integer update of Lava's ``PyLifModelBitAcc``, per neuron.

State is integer: currents ``u`` (and ``u_inh`` for a second synaptic channel)
and voltage ``v``, 24 bits wide. Each step, for input ``a`` (the summed Dense
outputs, int32)::

    decay(x, d) = sgn(x (4096 - d)) * (|x (4096 - d)| >> 12)      # truncates towards 0
    u   = wrap24(int32(int32(decay(u, du + 1) + int32(a << 6)) + bias_syn))   # ds_offset = 1
    v   = clip(decay(v, dv) + u (+ u_inh) + bias, -(2^23 - 1), 2^23 - 1)
    s   = v > vth << 6                                              # strict
    hard: v = 0     soft: v = v - (vth << 6)     none: v unchanged
    bias = bias_mant << bias_exp,   bias_syn = bias_syn_mant << bias_syn_exp

``bias_syn`` is a constant current into ``u`` every step (neuro's ``bias_syn``; the excitatory channel ``u``
when there are two). Lava's LIF has none (its ``bias`` goes into ``v``), and none of its parameters
equals it: a constant ``B`` into ``u`` adds ``B (1 + a + ... + a^t)`` (``a`` the current's decay) to the
``v`` input at step ``t``, a ramp no constant bias matches, and once ``u`` is near its fixed point the
truncating ``decay`` of the summed ``u`` still differs from ``decay`` of its parts. Only without a
current memory (``du = 4095``: ``decay(u, 4096) = 0``) is it exactly ``bias``, which is where the
quantizer puts it; otherwise the custom process of ``deployment`` holds it (``bias_syn = 0`` there
is ``PyLifModelBitAcc``'s update).

``wrap24`` is Lava's one-sided fold: ``x > 2^23 -> x - 2^24``, ``x <= -2^23 -> x + 2^24``.
With ``du == du_inh`` and a single channel, hard reset and no refractory period
this is exactly ``PyLifModelBitAcc`` (du/dv per neuron instead of per process).
The second channel, soft/no reset and refractory steps (``v`` held, no spike,
currents still decay) are the custom soft-reset process of ``deployment``, not
a built-in Loihi neuron. Parameter ranges: du, dv in 0..4095, vth in 0..2^17-1,
bias_mant and bias_syn_mant in -4096..4095, bias_exp and bias_syn_exp in 0..7.
"""

from __future__ import annotations

import numpy as np
from numba import njit

DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT
VTH_SHIFT = 6
ACT_SHIFT = 6
DS_OFFSET = 1
UV_BITS = 24
MAX_UV = 1 << (UV_BITS - 1)
DU_MAX = DV_MAX = DECAY_UNITY - 1
VTH_MAX = (1 << 17) - 1
BIAS_MANT_MIN, BIAS_MANT_MAX = -(1 << 12), (1 << 12) - 1
BIAS_EXP_MAX = 7
RESET_HARD, RESET_SOFT, RESET_NONE = 0, 1, 2
SIGN_MODES = {"excitatory": (0, 255, 1), "inhibitory": (-255, 0, 1), "mixed": (-256, 254, 2)}  # lo, hi, step
MAX_WEIGHT_EXP = 7
READOUT_WEIGHT_MAX = 254  # a readout's largest weight, in mantissa units (8 bits at weight_exp 0)


def sign_mode(w: np.ndarray) -> str:
    """Lava's Dense sign mode for weights ``w``: excitatory, inhibitory or mixed (one bit less)."""
    return "excitatory" if w.min(initial=0.0) >= 0 else "inhibitory" if w.max(initial=0.0) <= 0 else "mixed"


def fit_weights(w_units: np.ndarray) -> tuple[np.ndarray, int, str] | None:
    """8-bit weights ``q``, the smallest exponent ``e`` in ``0..7`` with ``q 2^e ~ w_units``, and the sign mode;
    None when the weights do not fit even at ``e = 7``."""
    mode = sign_mode(w_units)
    lo, hi, step = SIGN_MODES[mode]
    for e in range(MAX_WEIGHT_EXP + 1):
        q = (np.rint(w_units / 2**e / step) * step).astype(np.int64)
        if q.min(initial=0) >= lo and q.max(initial=0) <= hi:
            return q, e, mode
    return None


def split_bias(b_units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mantissa (13-bit signed) and smallest exponent ``0..7`` with ``mant << exp ~ b_units``; exponent -1 where
    even ``exp = 7`` does not hold the value."""
    b_units = np.asarray(b_units, np.float64)
    mant = np.zeros(b_units.shape, np.int64)
    exp = np.full(b_units.shape, -1, np.int64)
    for e in range(BIAS_EXP_MAX + 1):
        m = np.rint(b_units / 2**e).astype(np.int64)
        ok = (exp < 0) & (m >= BIAS_MANT_MIN) & (m <= BIAS_MANT_MAX)
        mant[ok], exp[ok] = m[ok], e
    return mant, exp


def vth_mantissa(max_weight_per_threshold: float, headroom: int) -> int:
    """Largest threshold mantissa ``V <= 2^17 / headroom`` with every weight ``<= 254 * 2^7`` mantissa units
    (a weight ``w`` of a neuron with threshold distance ``theta`` is ``w V / theta`` units)."""
    cap = (VTH_MAX + 1) // headroom
    if max_weight_per_threshold > 0:
        cap = min(cap, int(np.floor(254 * 2**MAX_WEIGHT_EXP / max_weight_per_threshold)))
    return cap


def membrane_bound(drive, a_mem, a_syn) -> float | None:
    """``max_k drive_k / (1 - a_mem_k)``: the largest ``|v|`` a leaky neuron reaches when its summed absolute
    input per step is at most ``drive`` (binary inputs, no synaptic memory); None when it is not bounded
    that way (an IF neuron, or a current with memory)."""
    a_mem, a_syn = np.asarray(a_mem, np.float64), np.asarray(a_syn, np.float64)
    if not (np.all(a_mem < 1) and np.all(a_syn == 0)):
        return None
    return float(np.max(np.asarray(drive, np.float64) / (1.0 - a_mem)))


def readout_units(w_max: float, drive_bound: float | None) -> float:
    """Voltage units per volt of a non-spiking readout: the largest weight at 254 units (8 bits, ``e = 0``),
    lowered so that a membrane bounded by ``drive_bound`` volts stays below ``VTH_MAX << 6``."""
    units = 64.0 * READOUT_WEIGHT_MAX / w_max if w_max > 0 else 64.0
    limit = 64.0 * VTH_MAX - 1
    if drive_bound is not None and drive_bound * units > limit:
        units = limit / drive_bound
    return units


@njit(inline="always")
def wrap32(x):
    """Two's-complement wrap of an int64 to int32."""
    return ((x + 2147483648) & 0xFFFFFFFF) - 2147483648


@njit(inline="always")
def decay(x, d):
    """``sgn(x (4096 - d)) * (|x (4096 - d)| >> 12)``, in int64."""
    p = x * (DECAY_UNITY - d)
    return p >> DECAY_SHIFT if p >= 0 else -((-p) >> DECAY_SHIFT)


@njit(inline="always")
def current_step(u, du, a, bias_syn=0):
    """One current update with input ``a`` (int32 Dense sum): decay, add ``a << 6`` and ``bias_syn``, fold to 24
    bits."""
    x = wrap32(wrap32(wrap32(decay(u, du + DS_OFFSET)) + wrap32(wrap32(a) << ACT_SHIFT)) + bias_syn)
    if x > MAX_UV:
        return x - 2 * MAX_UV
    if x <= -MAX_UV:
        return x + 2 * MAX_UV
    return x


@njit(cache=True, nogil=True)
def loihi_lif_update(u, u_inh, v, refr, a_exc, a_inh, du, du_inh, dv, vth, bias, bias_syn, reset, n_ref,
                     two_channels, lo, hi, fired, n_fired):
    """Advance neurons ``lo..hi-1`` one step (module docstring); append spikes to ``fired``.

    ``vth``, ``bias`` and ``bias_syn`` are the effective values (``vth << 6``, ``mant << exp``).
    Without ``two_channels[k]`` the inhibitory input ``a_inh`` is added to ``a_exc``
    (one Lava InPort). Inputs are consumed (zeroed). Returns the new spike count.
    """
    for k in range(lo, hi):
        if two_channels[k]:
            u[k] = current_step(u[k], du[k], a_exc[k], bias_syn[k])
            u_inh[k] = current_step(u_inh[k], du_inh[k], a_inh[k])
        else:
            u[k] = current_step(u[k], du[k], wrap32(a_exc[k] + a_inh[k]), bias_syn[k])
        a_exc[k] = 0
        a_inh[k] = 0
        if refr[k] > 0:
            refr[k] -= 1
            continue
        vk = decay(v[k], dv[k]) + u[k] + bias[k]
        if two_channels[k]:
            vk += u_inh[k]
        vk = min(max(vk, 1 - MAX_UV), MAX_UV - 1)
        if vk > vth[k]:
            fired[n_fired] = k
            n_fired += 1
            if reset[k] == RESET_HARD:
                vk = 0
            elif reset[k] == RESET_SOFT:
                vk -= vth[k]
            refr[k] = n_ref[k]
        v[k] = vk
    return n_fired


def effective_bias(bias_mant, bias_exp) -> np.ndarray:
    """``bias_mant << bias_exp`` as int64 (exponent 0..7)."""
    return np.left_shift(np.asarray(bias_mant, np.int64), np.asarray(bias_exp, np.int64))


def effective_threshold(vth) -> np.ndarray:
    """``vth << 6`` as int64."""
    return np.left_shift(np.asarray(vth, np.int64), VTH_SHIFT)
