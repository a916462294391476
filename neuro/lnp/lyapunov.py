"""Lyapunov exponents of the recurrent spiking dynamics.

**QR (Benettin) method.** For a map ``z_{t+1} = F_t(z_t)`` with Jacobians ``J_t``, iterate
``Q_{t+1} R_{t+1} = J_t Q_t`` (``Q`` has ``k`` orthonormal columns) and average
``lambda_i = (1/T) sum_t log |R_t[i, i]|`` (per step; divide by ``dt`` for 1/s).
For a linear map ``z_{t+1} = A z_t`` the exponents are ``log |eig(A)|``.

**Jacobian of the discrete LIF network** (:mod:`neurons.lif`; written for recurrent delays of
1 step, longer delays below).
The state of neuron ``i`` at step ``t`` is ``(u, i_exc, i_inh)``: ``u`` is the membrane
potential before the reset (the held ``v`` while refractory). With ``s_t = H(u_t - v_th)``,
the surrogate ``D_t = diag(sigma'(u_t - v_th))`` (0 for refractory neurons), the reset
derivative ``P_t = d v_t / d u_t`` (hard: ``(1 - s) + (v_reset - u) D``; soft:
``1 - (v_th - v_reset) D``; none: ``1``; refractory: ``1``) and ``N_{t+1}`` = 1 for neurons
that integrate at ``t+1`` (not refractory)::

    d i_exc' = a_syn * d i_exc + W_exc D_t d u
    d i_inh' = a_inh * d i_inh + W_inh D_t d u
    d u'     = N_{t+1} * (a_mem * P_t d u + d i_exc' + d i_inh') + (1 - N_{t+1}) * P_t d u

With delays up to ``L`` steps, ``W D_t du`` becomes ``sum_l W^(l) D_{t+1-l} du_{t+1-l}`` (``W^(l)``:
the synapses of delay ``l``) and the state carries the last ``L - 1`` values of ``D du``.
``sigma'(x) = 1 / (2 w (1 + |x| / w)^2)`` is the fast-sigmoid derivative normalised to unit
area (``w`` = ``surrogate_width`` in units of ``v_th - v_reset``). The trajectory comes from
the event simulator (float64), so the Jacobian is evaluated on the true spiking orbit.

**Driven (conditional) exponents.** With ``input_rate > 0`` the orbit is driven by seeded
Poisson spikes on the input populations (:func:`probe_input`); the exponents are then those of
the network conditioned on an input, whose sign decides the echo-state property of a reservoir
(different initial states forget their difference under the same input). Input suppresses the
surrogate chaos of this model strongly (docs/lnp.md).

**Direct estimate.** Two nearby trajectories in the event simulator: trials started from
``v0`` and ``v0 + eps * xi`` (same inputs); the slope of the mean ``log ||z_a(t) - z_b(t)||``
over time (``z = (v, i_exc, i_inh)``) estimates the largest exponent while the distance is
small; a chaotic network's spike trains diverge (``diverged``) and its perturbed trials do not
come back (``converged``: the fraction that ends closer to the reference than it started).

**Silent orbits.** If no recurrent neuron spikes after the warm-up, no infinitesimal perturbation
can change a spike and the true exponents are the leak rates ``log a_mem`` (< 0); the surrogate
still couples the neurons through their sub-threshold potentials and can be positive there
(docs/lnp.md). :func:`lyapunov_spectrum` warns in that case; use :func:`perturbation_exponent`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from neuro.lnp.graph import Recurrent, recurrent_of
from neuro.network import Network
from neuro.simulator import Simulator
from neurons import lif


@dataclass
class LyapunovResult:
    """Exponents per step (descending) and per second; ``history`` is the running estimate of the largest;
    ``vectors[d, i]`` the time average of the squared entry ``d`` of the ``i``-th Lyapunov vector."""

    exponents: np.ndarray
    dt: float
    steps: int
    history: np.ndarray
    vectors: np.ndarray

    @property
    def per_second(self) -> np.ndarray:
        return self.exponents / self.dt

    @property
    def largest(self) -> float:
        return float(self.exponents[0])


def qr_exponents(apply_jacobian, dim: int, steps: int, k: int = 1, warmup: int = 0, seed=0):
    """Benettin's QR method: ``apply_jacobian(t, Q) -> J_t Q`` for ``t = 0..steps-1``.

    Returns ``(exponents[k] per step, descending; running estimate of the largest [steps - warmup];
    time average of ``Q**2`` [dim, k], columns in the order of the exponents)``. The first ``warmup``
    steps only align ``Q`` and are not averaged.
    """
    if not 1 <= k <= dim:
        raise ValueError(f"number of exponents k must be in 1..{dim}, got {k}")
    if not 0 <= warmup < steps:
        raise ValueError(f"warmup must be in 0..steps-1 (steps={steps}), got {warmup}")
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, k)))
    total = np.zeros(k)
    squares = np.zeros((dim, k))
    history = np.empty(steps - warmup)
    tiny = np.finfo(float).tiny
    with threadpool_limits(1):  # many small products: threads only add overhead
        for t in range(steps):
            q, r = np.linalg.qr(apply_jacobian(t, q))
            if t >= warmup:
                total += np.log(np.maximum(np.abs(np.diag(r)), tiny))
                squares += q**2
                history[t - warmup] = total[0] / (t - warmup + 1)
    order = np.argsort(-total, kind="stable")
    return total[order] / (steps - warmup), history, squares[:, order] / (steps - warmup)


def linear_exponents(matrix, steps: int = 2000, k: int | None = None, seed=0) -> np.ndarray:
    """QR exponents of the linear map ``z -> A z`` (closed form: sorted ``log |eig(A)|``).

    The first ``steps // 10`` steps align ``Q`` and are not averaged (the projection of the
    random start on the leading directions would otherwise bias the estimate by ``O(1/steps)``).
    """
    a = np.asarray(matrix, float)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"A must be a square matrix, got shape {a.shape}")
    return qr_exponents(lambda t, q: a @ q, a.shape[0], steps, k or a.shape[0], steps // 10, seed)[0]


def surrogate_derivative(x: np.ndarray, width: float) -> np.ndarray:
    """Unit-area fast-sigmoid derivative ``1 / (2 w (1 + |x|/w)^2)``."""
    return 0.5 / width / (1.0 + np.abs(x) / width) ** 2


class SilentOrbitWarning(UserWarning):
    """The surrogate exponents were computed on an orbit without recurrent spikes."""


@dataclass
class Trajectory:
    """Per step ``t`` and recurrent neuron: pre-reset potential ``u``, spikes, integrating flag."""

    u: np.ndarray
    spikes: np.ndarray
    integrating: np.ndarray


def trajectory(net: Network, rec: Recurrent, steps: int, inputs=None, seed: int = 0) -> Trajectory:
    """Run the event simulator (float64) and reconstruct the Jacobian's state along the orbit."""
    sim = Simulator(net, dtype=np.float64)
    res = sim.run(steps, inputs, seed=seed, record=list(rec.populations),
                  record_state={p: None for p in rec.populations}, state_vars=("v", "i_exc", "i_inh"))
    v, ie, ii = (np.concatenate([res.trace(p, var)[0] for p in rec.populations], axis=1)
                 for var in ("v", "i_exc", "i_inh"))
    s = np.concatenate([res.raster(p, 0) for p in rec.populations], axis=1)
    c = rec.coef
    v0 = np.concatenate([sim.initial["v"][slice(*sim.layout[p])] for p in rec.populations])
    v_prev = np.vstack([v0, v[:-1]])
    u = c[lif.V_REST] + c[lif.A_MEM] * (v_prev - c[lif.V_REST]) + ie + ii + c[lif.BIAS]
    integrating = _integrating(s, c[lif.N_REF].astype(int))
    u = np.where(integrating, u, v)
    return Trajectory(u, s, integrating)


def _integrating(spikes: np.ndarray, n_ref: np.ndarray) -> np.ndarray:
    """True where a neuron integrates (is not refractory) at step t: no spike in the previous n_ref steps."""
    out = np.ones_like(spikes, dtype=bool)
    for lag in range(1, int(n_ref.max(initial=0)) + 1):
        out[lag:] &= ~(spikes[:-lag] & (n_ref >= lag))
    return out


def lif_jacobian(rec: Recurrent, traj: Trajectory, reset: np.ndarray, width: float, detach_reset: bool = True):
    """``(apply_jacobian(t, Q), dim)`` for :func:`qr_exponents` (module docstring).

    The state is ``(u, i_exc, i_inh)`` per neuron and, if the longest recurrent delay ``L`` is
    more than 1 step, the ``L - 1`` previous ``D du`` (the spikes still in flight): ``dim = (2 + L) n``.
    """
    n, c = rec.n, rec.coef
    delays = rec.delay.astype(np.int64)
    if np.any(delays < 1):
        raise ValueError("the LIF Jacobian needs recurrent delays of at least 1 step")
    lags = int(delays.max(initial=1))
    by_lag = [np.where(delays == lag, rec.weight, 0.0) for lag in range(1, lags + 1)]
    w_exc, w_inh = [rec.dense("exc", w) for w in by_lag], [rec.dense("inh", w) for w in by_lag]
    scale = c[lif.V_TH] - c[lif.V_RESET]
    a_mem, a_syn, a_inh = (c[r][:, None] for r in (lif.A_MEM, lif.A_SYN, lif.A_INH))
    x = traj.u - c[lif.V_TH]
    d = np.where(traj.integrating, surrogate_derivative(x / scale, width) / scale, 0.0)
    hard, soft = reset == lif.RESET_HARD, reset == lif.RESET_SOFT
    p = np.where(hard, (1.0 - traj.spikes) + (c[lif.V_RESET] - traj.u) * d,
                 np.where(soft, 1.0 - scale * d, 1.0))
    if detach_reset:
        p = np.where(hard, 1.0 - traj.spikes, 1.0)
    p = np.where(traj.integrating, p, 1.0)

    def apply(t, q):
        du, de, di = q[:n], q[n:2 * n], q[2 * n:3 * n]
        # D du of steps t, t-1, ..., t-L+1: the input that delay 1, 2, ..., L delivers at t+1
        sent = [d[t][:, None] * du] + [q[(2 + lag) * n:(3 + lag) * n] for lag in range(1, lags)]
        de2 = a_syn * de + sum(w @ s for w, s in zip(w_exc, sent))
        di2 = a_inh * di + sum(w @ s for w, s in zip(w_inh, sent))
        pdu = p[t][:, None] * du
        nxt = traj.integrating[t + 1][:, None]
        du2 = np.where(nxt, a_mem * pdu + de2 + di2, pdu)
        return np.vstack([du2, de2, di2, *sent[:-1]])

    return apply, (2 + lags) * n


def probe_input(net: Network, steps: int, rate: float, seed: int = 0) -> dict:
    """Poisson spikes at ``rate`` (Hz) on every ``spike_source`` population: ``{name: bool [steps, size]}``.

    The task-agnostic drive under which the conditional (driven) exponents are measured.
    """
    if not rate >= 0 or rate * net.dt > 1:
        raise ValueError(f"probe input_rate must be in [0, 1/dt] Hz, got {rate}")
    rng = np.random.default_rng(seed)
    return {p.name: rng.random((steps, p.size)) < rate * net.dt for p in net.populations if p.model == "spike_source"}


def lyapunov_spectrum(net: Network, k: int = 1, steps: int = 2000, warmup: int = 200, inputs=None,
                      surrogate_width: float = 0.1, detach_reset: bool = True, seed: int = 0,
                      input_rate: float = 0.0) -> LyapunovResult:
    """The ``k`` largest Lyapunov exponents of ``net``'s recurrent dynamics (module docstring).

    The simulator runs ``steps + 1`` steps with ``inputs``, or, if ``inputs`` is None, with
    :func:`probe_input` at ``input_rate`` Hz (0: no input, the network runs on its bias);
    exponents are averaged over the last ``steps - warmup`` Jacobians.
    """
    rec = recurrent_of(net)
    if not 1 <= k <= 3 * rec.n:
        raise ValueError(f"k must be in 1..{3 * rec.n} (3 state variables per neuron), got {k}")
    if surrogate_width <= 0:
        raise ValueError(f"surrogate_width must be > 0, got {surrogate_width}")
    if inputs is None and input_rate:
        inputs = probe_input(net, steps + 1, input_rate, seed)
    traj = trajectory(net, rec, steps + 1, inputs, seed)
    if not traj.spikes[warmup:].any():
        warnings.warn("the network is silent on this orbit (no recurrent spike after the warm-up): its true "
                      "exponents are the leak rates log a_mem < 0, while the surrogate estimate still couples "
                      "sub-threshold neurons and can be positive; see perturbation_exponent and docs/lnp.md",
                      SilentOrbitWarning, stacklevel=2)
    reset = rec.coef[lif.RESET]
    apply, dim = lif_jacobian(rec, traj, reset, surrogate_width, detach_reset)
    exps, history, vectors = qr_exponents(apply, dim, steps, k, warmup, seed)
    return LyapunovResult(exps, net.dt, steps, history, vectors)


def largest_lyapunov(net: Network, probes: int = 1, seed: int = 0, **kwargs) -> float:
    """Largest exponent per step (:func:`lyapunov_spectrum` with ``k=1``); with ``probes > 1`` the
    mean over that many realisations of the probe input (seeds ``seed, seed + 1, ...``), which
    lowers the spread of the finite-time estimate between realisations."""
    if int(probes) < 1:
        raise ValueError(f"probes must be >= 1, got {probes}")
    return float(np.mean([lyapunov_spectrum(net, k=1, seed=seed + r, **kwargs).largest for r in range(int(probes))]))


@dataclass
class PerturbationResult:
    """Direct estimate: slope of the mean log distance (per step) and the divergence record."""

    exponent: float
    log_distance: np.ndarray  # [steps] mean over perturbed trials
    diverged: float  # fraction of perturbed trials whose spike trains differ from the reference
    spike_distance: np.ndarray  # [steps] mean number of differing spikes per step
    converged: float  # fraction of perturbed trials that end closer to the reference than they started

    @property
    def per_second(self) -> float:
        return self.exponent / self.dt

    dt: float = 1e-3


def perturbation_exponent(net: Network, steps: int = 300, eps: float = 1e-6, trials: int = 8, fit: tuple = (1, 60),
                          inputs=None, seed: int = 0, warmup: int = 200, input_rate: float = 0.0) -> PerturbationResult:
    """Two-trajectory estimate in the event simulator (module docstring).

    A reference run of ``warmup`` steps gives the start state; trial 0 continues from it and trials
    ``1..trials`` from it plus ``eps * xi`` (``xi`` a random unit vector on ``v``), all with the same
    ``inputs`` (if None: :func:`probe_input` at ``input_rate`` Hz, also during the warm-up). The exponent
    is the least-squares slope of the mean log distance over steps ``fit = (first, last)``.
    """
    if any(p.model == "poisson" for p in net.populations):
        raise ValueError("the perturbation estimate needs identical inputs in every trial: "
                         "replace Poisson populations by spike_source inputs")
    rec = recurrent_of(net)
    sim = Simulator(net, dtype=np.float64)
    warm_inputs = None
    if inputs is None and input_rate:
        warm_inputs = probe_input(net, warmup, input_rate, seed + 1)
        inputs = probe_input(net, steps, input_rate, seed)
    start = sim.run(warmup, warm_inputs, record=False, seed=seed)
    rng = np.random.default_rng(seed)
    xi = rng.standard_normal((trials, rec.n))
    xi /= np.linalg.norm(xi, axis=1, keepdims=True)
    initial = {}
    for p in rec.populations:
        lo, hi = rec.layout[p]
        base = {var: start.final(p, var)[0] for var in ("v", "i_exc", "i_inh")}
        v = np.vstack([base["v"], base["v"] + eps * xi[:, lo:hi]])
        initial[p] = {"v": v, "i_exc": np.tile(base["i_exc"], (trials + 1, 1)),
                      "i_inh": np.tile(base["i_inh"], (trials + 1, 1))}
    res = sim.run(steps, inputs, trials=trials + 1, seed=seed, record=list(rec.populations), initial=initial,
                  record_state={p: None for p in rec.populations}, state_vars=("v", "i_exc", "i_inh"))
    z = np.concatenate([res.trace(p, var) for p in rec.populations for var in ("v", "i_exc", "i_inh")], axis=2)
    dist = np.linalg.norm(z[1:] - z[:1], axis=2)  # [trials, steps]
    log_d = np.log(np.maximum(dist, 1e-300)).mean(axis=0)
    rasters = np.stack([np.concatenate([res.raster(p, r) for p in rec.populations], axis=1)
                        for r in range(trials + 1)])
    differ = rasters[1:] != rasters[:1]
    first, last = fit
    t = np.arange(first, min(last, steps))
    slope = float(np.polyfit(t, log_d[t], 1)[0]) if len(t) > 1 else float("nan")
    return PerturbationResult(slope, log_d, float(differ.any(axis=(1, 2)).mean()),
                              differ.sum(axis=2).mean(axis=0), float((dist[:, -1] < dist[:, 0]).mean()), net.dt)


def plot_spectrum(result: LyapunovResult, path, title: str = "Lyapunov spectrum", others: dict | None = None,
                  label: str = "network"):
    """Plot the exponents (1/s) against their index; ``others`` adds labelled spectra."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuro.io import save_figure

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, r in {label: result, **(others or {})}.items():
        ax.plot(np.arange(1, len(r.exponents) + 1), r.per_second, "o-", ms=3, label=name)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel("index i")
    ax.set_ylabel("lambda_i (1/s)")
    ax.set_title(title)
    ax.legend()
    return save_figure(fig, path)
