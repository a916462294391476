"""Current-based leaky integrate-and-fire (CUBA LIF): the one discrete update.

Every engine in the project (the Numba event simulator here, the torch twin in
:mod:`neurons.lif_torch`) implements exactly this update, step ``t``::

    i_exc[t] = a_syn[k] * i_exc[t-1] + x_exc[t] + bias_syn # synaptic currents,
    i_inh[t] = a_inh[k] * i_inh[t-1] + x_inh[t]            # always updated
    if refractory[k] > 0:                                   # v is held, no spike
        refractory[k] -= 1
    else:
        v[t] = v_rest + a_mem * (v[t-1] - v_rest) + i_exc[t] + i_inh[t] + bias
        s[t] = v[t] > v_th                                  # strict, as Lava
        if s[t]:
            hard:  v[t] = v_reset
            soft:  v[t] = v[t] - (v_th - v_reset)          # keeps the residual
            none:  v[t] unchanged
            refractory[k] = n_ref

(The event simulator adds delay-1 recurrent events into ``a_syn * i_exc[t-1]`` before the
other inputs: the same sum in another float order, ``docs/time.md``.)
``bias_syn`` is a constant current into the excitatory channel (a bias on the synapse, as
a torch ``nn.Linear`` bias feeding a synaptic current, or NIR's ``Affine`` bias into a
``CubaLIF``); ``bias`` is a constant added to ``v``. With ``tau_syn = 0`` the two are the same.
With per-neuron decays ``a = exp(-dt / tau)`` (``tau = inf`` gives ``a = 1``,
the IF neuron; ``tau = 0`` gives ``a = 0``, no memory) and ``n_ref =
round(t_ref / dt)`` steps. Currents are in the units of ``v`` per step (the
convention of Lava and snntorch): a synaptic weight ``w`` raises ``i`` by ``w``.
Exact integration of the continuous CUBA model is obtained by scaling weights
(see ``docs/time.md``). The two synaptic channels exist so that excitatory and
inhibitory synapses may have different time constants (Brette et al. 2007);
with ``tau_syn_inh == tau_syn`` they are one current.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from neurons.spec import NeuronModel, ParamSpec

RESET_MODES = ("hard", "soft", "none")
RESET_HARD, RESET_SOFT, RESET_NONE = 0, 1, 2

LIF = NeuronModel(
    name="lif",
    params={
        "tau_mem": ParamSpec(20e-3, "membrane time constant (s); inf gives IF", lower=0.0, allow_inf=True),
        "tau_syn": ParamSpec(5e-3, "excitatory/primary synaptic time constant (s)", lower=0.0, allow_inf=True,
                             lower_inclusive=True),
        "tau_syn_inh": ParamSpec(5e-3, "inhibitory-channel synaptic time constant (s)", lower=0.0,
                                 allow_inf=True, lower_inclusive=True),
        "v_th": ParamSpec(1.0, "threshold; a spike when v > v_th"),
        "v_reset": ParamSpec(0.0, "reset potential (hard reset) / reference of the soft reset"),
        "v_rest": ParamSpec(0.0, "resting potential the membrane leaks towards"),
        "bias": ParamSpec(0.0, "constant input added to v every step"),
        "bias_syn": ParamSpec(0.0, "constant input added to the excitatory synaptic current every step"),
        "t_ref": ParamSpec(0.0, "refractory period (s)", lower=0.0, lower_inclusive=True),
    },
    state=("v", "i_exc", "i_inh"),
    options={"reset": RESET_MODES},
)

# Rows of the discretised coefficient matrix shared by every engine.
A_MEM, A_SYN, A_INH, V_TH, V_RESET, V_REST, BIAS, N_REF, RESET, BIAS_SYN = range(10)
COEFFICIENTS = ("a_mem", "a_syn", "a_inh", "v_th", "v_reset", "v_rest", "bias", "n_ref", "reset", "bias_syn")


def decay(tau: np.ndarray, dt: float) -> np.ndarray:
    """``exp(-dt / tau)`` with ``tau = inf -> 1`` and ``tau = 0 -> 0``."""
    tau = np.asarray(tau, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.exp(-dt / tau)


def refractory_steps(t_ref: np.ndarray, dt: float) -> np.ndarray:
    """Refractory period in whole steps, ``round(t_ref / dt)``."""
    return np.rint(np.asarray(t_ref, dtype=np.float64) / dt)


def discretize(params: dict, dt: float, reset: str = "hard", dtype=np.float64) -> np.ndarray:
    """Per-neuron coefficient matrix ``[len(COEFFICIENTS), n]`` for step size ``dt``."""
    if reset not in RESET_MODES:
        raise ValueError(f"unknown reset mode {reset!r}; expected one of {RESET_MODES}")
    n = len(params["v_th"])
    coef = np.empty((len(COEFFICIENTS), n), dtype=dtype)
    coef[A_MEM] = decay(params["tau_mem"], dt)
    coef[A_SYN] = decay(params["tau_syn"], dt)
    coef[A_INH] = decay(params["tau_syn_inh"], dt)
    coef[V_TH] = params["v_th"]
    coef[V_RESET] = params["v_reset"]
    coef[V_REST] = params["v_rest"]
    coef[BIAS] = params["bias"]
    coef[N_REF] = refractory_steps(params["t_ref"], dt)
    coef[RESET] = RESET_MODES.index(reset)
    coef[BIAS_SYN] = params["bias_syn"] if "bias_syn" in params else 0.0
    return coef


def at(c, k):
    """``c[k]`` for a per-neuron coefficient array, ``c`` for a population-wide scalar."""
    return c[k]


@overload(at, inline="always")
def _at(c, k):
    if isinstance(c, types.Array):
        return lambda c, k: c[k]
    return lambda c, k: c


@njit(inline="always")
def coefficients(coef, lo, hi):
    """Columns ``lo..hi-1`` of ``coef`` as a tuple of rows (``COEFFICIENTS`` order), one value per neuron."""
    return (coef[0, lo:hi], coef[1, lo:hi], coef[2, lo:hi], coef[3, lo:hi], coef[4, lo:hi],
            coef[5, lo:hi], coef[6, lo:hi], coef[7, lo:hi], coef[8, lo:hi], coef[9, lo:hi])


@njit(inline="always")
def uniform_coefficients(coef, lo):
    """Column ``lo`` of ``coef`` as a tuple of scalars, for a population whose neurons all share it."""
    return (coef[0, lo], coef[1, lo], coef[2, lo], coef[3, lo], coef[4, lo],
            coef[5, lo], coef[6, lo], coef[7, lo], coef[8, lo], coef[9, lo])


@njit(inline="always")
def decay_coefficients(coef, lo, hi):
    """Per-neuron decays ``a_mem, a_syn, a_inh`` (arrays), every other coefficient one scalar (column ``lo``)."""
    return (coef[0, lo:hi], coef[1, lo:hi], coef[2, lo:hi], coef[3, lo], coef[4, lo],
            coef[5, lo], coef[6, lo], coef[7, lo], coef[8, lo], coef[9, lo])


PER_NEURON, UNIFORM, PER_NEURON_DECAYS = 0, 1, 2


def layout(coef: np.ndarray) -> int:
    """How one population's coefficients ``[len(COEFFICIENTS), n]`` vary across its neurons.

    ``UNIFORM``: every column equals the first; ``PER_NEURON_DECAYS``: only the decays
    (time constants) differ; ``PER_NEURON`` otherwise (and for an empty population).
    """
    if coef.shape[1] == 0:
        return PER_NEURON
    same = (coef == coef[:, :1]).all(axis=1)
    if same.all():
        return UNIFORM
    return PER_NEURON_DECAYS if same[V_TH:].all() else PER_NEURON


def plus_input(c, x, k):
    """``c + x[k]`` for an input array ``x``, ``c`` when the population has no input buffer (``x`` is None)."""
    return c + x[k]


@overload(plus_input, inline="always")
def _plus_input(c, x, k):
    if isinstance(x, types.NoneType):
        return lambda c, x, k: c
    return lambda c, x, k: c + x[k]


def consume(x, k):
    """``x[k] = 0`` (the input is used up); nothing when ``x`` is None."""
    x[k] = 0


@overload(consume, inline="always")
def _consume(x, k):
    if isinstance(x, types.NoneType):
        return lambda x, k: None

    def zero(x, k):
        x[k] = 0.0
    return zero


@njit(inline="always")
def lif_step(v, i_exc, i_inh, refr, x_exc, x_inh, c, spiked, fired, n_fired, offset, decay_in, decay_out):
    """Advance one population of ``n = v.size`` neurons by one step (module docstring).

    ``c``: the coefficients in ``COEFFICIENTS`` order, each a per-neuron array or one scalar
    for the whole population (Numba compiles a specialised loop for each combination used:
    :func:`coefficients`, :func:`uniform_coefficients`, :func:`decay_coefficients`).
    ``x_exc``/``x_inh`` are this step's inputs and are consumed (zeroed); ``None`` when the
    population has no input buffer (a loop that neither reads nor zeroes one).

    The synaptic currents are read and written in one of two forms: ``decay_in`` true, ``i_exc``
    holds ``i[t-1]`` and the step computes ``i[t] = a_syn * i[t-1] + x[t] + bias_syn``; false,
    it holds the decayed current ``D[t] = a_syn * i[t-1]`` (plus what the event simulator added
    into it, ``docs/time.md``) and ``i[t] = D[t] + x[t] + bias_syn``. ``decay_out`` true writes
    ``D[t+1] = a_syn * i[t]`` back, false writes ``i[t]`` (same for ``i_inh`` with ``a_inh``).

    ``spiked``: ``uint8`` scratch indexed by local neuron, ``8 * ceil(n / 8)`` entries or more
    (:func:`scratch`). The first, branch-free pass charges every neuron and flags threshold
    crossings (it vectorises); the second reads the flags 8 at a time, resets the neurons that
    fired and appends ``offset + k`` to ``fired``. Returns the new number of entries in ``fired``.
    """
    a_mem, a_syn, a_inh, v_th, v_reset, v_rest, bias, n_ref, mode, bias_syn = c
    n = v.size
    any_spike = False
    for k in range(n):
        de = at(a_syn, k) * i_exc[k] if decay_in else i_exc[k]
        di = at(a_inh, k) * i_inh[k] if decay_in else i_inh[k]
        ie = plus_input(de, x_exc, k) + at(bias_syn, k)
        ii = plus_input(di, x_inh, k)
        consume(x_exc, k)
        consume(x_inh, k)
        i_exc[k] = at(a_syn, k) * ie if decay_out else ie
        i_inh[k] = at(a_inh, k) * ii if decay_out else ii
        r = refr[k]
        active = r <= 0
        rest = at(v_rest, k)
        charged = rest + at(a_mem, k) * (v[k] - rest) + ie + ii + at(bias, k)
        vk = charged if active else v[k]
        v[k] = vk
        refr[k] = r - 1 if r > 0 else r
        s = active & (vk > at(v_th, k))
        spiked[k] = s
        any_spike |= s
    if not any_spike:
        return n_fired
    words = spiked.view(np.uint64)
    for w in range((n + 7) // 8):
        if words[w]:
            for k in range(8 * w, min(8 * w + 8, n)):
                if spiked[k]:
                    fired[n_fired] = offset + k
                    n_fired += 1
                    reset(v, refr, k, at(mode, k), at(v_th, k), at(v_reset, k), at(n_ref, k))
    return n_fired


@njit(inline="always")
def current_now(i_exc, i_inh, x_exc, x_inh, now_exc, now_inh, c):
    """The currents ``i[t]`` that :func:`lif_step` with ``decay_in`` false is about to compute, into
    ``now_exc``/``now_inh`` (the same operations, so the same bits); changes nothing else."""
    bias_syn = c[9]
    for k in range(i_exc.size):
        now_exc[k] = plus_input(i_exc[k], x_exc, k) + at(bias_syn, k)
        now_inh[k] = plus_input(i_inh[k], x_inh, k)


@njit(inline="always")
def reset(v, refr, k, mode, v_th, v_reset, n_ref):
    """Reset neuron ``k`` after a spike: hard ``v = v_reset``, soft ``v -= v_th - v_reset``, or none."""
    if mode == RESET_HARD:
        v[k] = v_reset
    elif mode == RESET_SOFT:
        v[k] = v[k] - (v_th - v_reset)
    refr[k] = n_ref


@njit(cache=True, nogil=True)
def lif_update(v, i_exc, i_inh, refr, x_exc, x_inh, coef, spiked, fired, n_fired, offset):
    """:func:`lif_step` with per-neuron coefficients, columns ``offset .. offset+n-1`` of ``coef``, on the
    currents ``i[t-1]`` (the update of the module docstring; ``i_exc``, ``i_inh`` hold ``i[t]`` after it)."""
    c = coefficients(coef, offset, offset + v.size)
    return lif_step(v, i_exc, i_inh, refr, x_exc, x_inh, c, spiked, fired, n_fired, offset, True, False)


def scratch(n: int) -> np.ndarray:
    """The ``uint8`` spike-flag scratch of :func:`lif_step` for up to ``n`` neurons."""
    return np.zeros(8 * ((n + 7) // 8), np.uint8)


def lif_run_numpy(coef: np.ndarray, x_exc: np.ndarray, x_inh: np.ndarray | None = None, v0=None):
    """Run one population of ``n`` neurons over inputs ``x[T, n]``; returns ``(spikes, v)``.

    A convenience driver around :func:`lif_update` for tests and small studies.
    """
    x_exc = np.ascontiguousarray(x_exc, dtype=coef.dtype)
    steps, n = x_exc.shape
    x_inh = np.zeros_like(x_exc) if x_inh is None else np.ascontiguousarray(x_inh, dtype=coef.dtype)
    v = np.array(coef[V_REST] if v0 is None else v0, dtype=coef.dtype)
    i_exc, i_inh, refr = (np.zeros(n, coef.dtype) for _ in range(3))
    fired = np.empty(n, np.int64)
    spiked = scratch(n)
    spikes = np.zeros((steps, n), dtype=bool)
    trace = np.empty((steps, n), dtype=coef.dtype)
    for t in range(steps):
        nf = lif_update(v, i_exc, i_inh, refr, x_exc[t].copy(), x_inh[t].copy(), coef, spiked, fired, 0, 0)
        spikes[t, fired[:nf]] = True
        trace[t] = v
    return spikes, trace


def exact_current_gain(tau_syn, tau_mem, dt: float) -> np.ndarray:
    """Weight factor that makes the discrete update the exact solution of the continuous CUBA model.

    For ``tau_m dv/dt = -(v - v_rest) + I`` with ``tau_s dI/dt = -I`` and jumps
    ``I += w`` (``I`` in units of ``v``), integrating one step exactly gives
    ``v += g * I`` with ``g = tau_s (a_s - a_m) / (tau_s - tau_m)`` (``g = (dt/tau_m) a_m``
    when ``tau_s == tau_m``). Use weights ``g * w`` and delay 1 to reproduce
    Brian2's ``method='exact'`` (see ``docs/time.md``).
    """
    tau_s = np.asarray(tau_syn, dtype=np.float64)
    tau_m = np.asarray(tau_mem, dtype=np.float64)
    a_s, a_m = decay(tau_s, dt), decay(tau_m, dt)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = tau_s * (a_s - a_m) / (tau_s - tau_m)
    return np.where(np.isclose(tau_s, tau_m), dt / tau_m * a_m, g)
