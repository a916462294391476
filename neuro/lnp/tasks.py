"""Reservoir tasks with offline data: Mackey-Glass / Lorenz-63 prediction and scikit-learn digits.

The network's recurrent populations are the reservoir; only a linear readout is fitted.

* **Series.** Mackey-Glass ``dx/dt = beta x(t-tau) / (1 + x(t-tau)^10) - gamma x`` (``beta=0.2,
  gamma=0.1, tau=17``; Euler, ``h=0.1``) and Lorenz-63 (``sigma=10, rho=28, beta=8/3``; RK4,
  ``h=0.01``; the ``x`` component), sampled every ``interval`` time units and scaled to ``[0, 1]``.
* **Encoding.** A sample ``u`` is held for ``steps_per_sample`` steps and drives the ``input``
  population by Gaussian tuning curves ``rate_k = max_rate exp(-(u - c_k)^2 / (2 sigma^2))``
  (centres ``c_k`` evenly on ``[0, 1]``, ``sigma`` = their spacing); spikes are regular (an
  accumulator per input neuron with a seeded random phase), so the input is deterministic.
  Digits (8x8, values 0..16) are rate coded: pixel ``k`` is a Poisson train of rate
  ``max_rate * x_k / 16`` (seeded) for ``steps_per_image`` steps, one image per trial.
* **States.** Low-pass filtered spikes ``r_i(t) = sum_s exp(-(t - t_s) / tau_filter)`` of every
  recurrent neuron, read at the last step of each sample (series), or spike counts over the
  image (digits). Many trials run in parallel in the event simulator.
* **Readout.** Ridge regression with intercept (:func:`ridge_fit`, alpha by closed-form
  leave-one-out error on the training set) on standardised states and, as in echo state networks
  (Lukosevicius 2012), the current input sample ``u(m)`` (``include_input``); prediction of
  ``u(m + horizon)`` from the state after sample ``m``. ``NRMSE = RMSE / std(target)`` on the
  test part. Digits: ridge regression on +-1 one-hot targets (argmax decides; as scikit-learn's
  ``RidgeClassifier``) on a seeded stratified 70/30 split; accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neuro.lnp.graph import recurrent_populations
from neuro.lnp.stats import firing_stats, sops
from neuro.network import Network
from neuro.simulator import SimulationResult, Simulator

SERIES = ("mackey_glass", "lorenz")
TASKS = (*SERIES, "digits")
RIDGE_ALPHAS = tuple(np.logspace(-3, 4, 15))


def mackey_glass(n: int, interval: float = 1.0, tau: float = 17.0, beta: float = 0.2, gamma: float = 0.1,
                 h: float = 0.1, washout: float = 500.0) -> np.ndarray:
    """``n`` samples of the Mackey-Glass series (Euler integration; history ``x = 1.2``)."""
    lag = int(round(tau / h))
    every = int(round(interval / h))
    total = int(round(washout / h)) + n * every + 1
    x = np.empty(total + lag)
    x[: lag + 1] = 1.2
    for t in range(lag, total + lag - 1):
        xd = x[t - lag]
        x[t + 1] = x[t] + h * (beta * xd / (1.0 + xd**10) - gamma * x[t])
    return x[lag + int(round(washout / h)):][::every][:n]


def lorenz63(n: int, interval: float = 0.02, h: float = 0.01, washout: float = 20.0,
             sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0) -> np.ndarray:
    """``n`` samples of the ``x`` component of Lorenz-63 (RK4 from ``(1, 1, 1)``)."""
    def f(s):
        return np.array([sigma * (s[1] - s[0]), s[0] * (rho - s[2]) - s[1], s[0] * s[1] - beta * s[2]])

    every = max(1, int(round(interval / h)))
    total = int(round(washout / h)) + n * every
    s = np.array([1.0, 1.0, 1.0])
    out = np.empty(total)
    for t in range(total):
        k1 = f(s)
        k2 = f(s + 0.5 * h * k1)
        k3 = f(s + 0.5 * h * k2)
        k4 = f(s + h * k3)
        s = s + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        out[t] = s[0]
    return out[int(round(washout / h)):][::every][:n]


def series(name: str, n: int) -> np.ndarray:
    """A named series scaled to ``[0, 1]``."""
    if name == "mackey_glass":
        x = mackey_glass(n)
    elif name == "lorenz":
        x = lorenz63(n)
    else:
        raise ValueError(f"unknown series {name!r}; expected one of {SERIES}")
    return (x - x.min()) / (x.max() - x.min())


def regular_spikes(rates: np.ndarray, dt: float, seed=None) -> np.ndarray:
    """Deterministic spike raster ``[T, n]`` with the given rates (Hz): an accumulator per neuron
    with a random initial phase fires whenever it passes an integer."""
    rng = np.random.default_rng(seed)
    acc = np.cumsum(rates * dt, axis=0) + rng.random(rates.shape[1])
    return np.diff(np.floor(acc), axis=0, prepend=np.floor(acc[:1] - rates[:1] * dt)) > 0


def population_code(u: np.ndarray, n_input: int, steps_per_sample: int, max_rate: float, dt: float,
                    seed=None) -> np.ndarray:
    """Boolean raster ``[len(u) * steps_per_sample, n_input]`` (Gaussian tuning curves, module docstring)."""
    centres = np.linspace(0.0, 1.0, n_input)
    width = 1.0 / max(n_input - 1, 1)
    rates = max_rate * np.exp(-((np.asarray(u)[:, None] - centres[None, :]) ** 2) / (2 * width**2))
    return regular_spikes(np.repeat(rates, steps_per_sample, axis=0), dt, seed)


def filtered_states(result: SimulationResult, populations, steps_per_sample: int, tau_filter: float) -> np.ndarray:
    """``[trials, samples, n]`` filtered spikes at the last step of every sample (module docstring)."""
    n_samples = result.steps // steps_per_sample
    decay = np.exp(-result.dt / tau_filter)
    offsets = []
    base = 0
    for p in populations:
        offsets.append(base)
        base += result.network.population(p).size
    out = np.zeros((result.n_trials, n_samples, base))
    for r in range(result.n_trials):
        contrib = np.zeros((n_samples, base))
        for p, off in zip(populations, offsets):
            t, k = result.spikes(p, r)
            m = t // steps_per_sample
            ok = m < n_samples
            end = (m[ok] + 1) * steps_per_sample - 1
            np.add.at(contrib, (m[ok], k[ok] + off), decay ** (end - t[ok]))
        state = np.zeros(base)
        window = decay**steps_per_sample
        for m in range(n_samples):
            state = window * state + contrib[m]
            out[r, m] = state
    return out


@dataclass
class TaskResult:
    """Score of one network on one task, with the activity of the run that produced it."""

    task: str
    metric: str  # 'nrmse' (lower is better) or 'accuracy' (higher is better)
    value: float
    rates: np.ndarray  # mean rate (Hz) of every recurrent neuron, global order
    sops_per_second: float
    stats: dict = field(default_factory=dict)

    def relative_change(self, reference: TaskResult) -> float:
        """Relative degradation w.r.t. ``reference`` (positive = worse)."""
        sign = 1.0 if self.metric == "nrmse" else -1.0
        return sign * (self.value - reference.value) / abs(reference.value)


def ridge_fit(x: np.ndarray, y: np.ndarray, alphas=RIDGE_ALPHAS):
    """Ridge regression with an intercept; ``alpha`` chosen by leave-one-out error (closed form via
    the SVD of the centred ``x``: residual ``e_i / (1 - H_ii)``). Returns ``predict(x_new)``."""
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    u, s, vt = np.linalg.svd(x - x_mean, full_matrices=False)
    uty = u.T @ (y - y_mean)
    best = None
    for alpha in alphas:
        shrink = s**2 / (s**2 + alpha)
        fitted = u @ (shrink[:, None] * uty if uty.ndim > 1 else shrink * uty)
        hat = (u**2) @ shrink + 1.0 / len(x)
        loo = ((y - y_mean - fitted) / (1.0 - hat).reshape(-1, *([1] * (y.ndim - 1)))) ** 2
        if best is None or loo.mean() < best[0]:
            best = (loo.mean(), alpha)
    factor = s / (s**2 + best[1])
    coef = vt.T @ (factor[:, None] * uty if uty.ndim > 1 else factor * uty)
    return lambda x_new: (x_new - x_mean) @ coef + y_mean


def stratified_split(labels: np.ndarray, test_fraction: float, seed) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split keeping the class proportions: ``(train indices, test indices)``."""
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        test.append(idx[: int(round(test_fraction * len(idx)))])
    test = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(labels)), test), test


def standardise(train, test):
    """Z-score with the training statistics; the scale is floored at 10% of the mean scale so that
    neurons (nearly) silent in training cannot blow up in testing."""
    mu, sd = train.mean(0), train.std(0)
    sd = np.maximum(sd, 0.1 * sd.mean() + 1e-12)
    return (train - mu) / sd, (test - mu) / sd


def input_size(net: Network) -> int:
    """Size of the network's ``input`` population (a spike source the tasks drive)."""
    names = [p.name for p in net.populations if p.model == "spike_source"]
    if "input" not in names:
        raise ValueError("the tasks drive a spike_source population named 'input'; this network has "
                         f"spike sources {names}")
    return net.population("input").size


def _activity(result: SimulationResult, pops) -> tuple[np.ndarray, float, dict]:
    rates = np.concatenate([result.rates(p).mean(axis=0) for p in pops])
    sop_rate = float(sops(result).mean() / (result.steps * result.dt))
    return rates, sop_rate, firing_stats(result, pops)


def predict_series(net: Network, name: str = "mackey_glass", *, n_train: int = 2000, n_test: int = 600,
                   segment: int = 200, washout: int = 50, horizon: int = 1, steps_per_sample: int = 10,
                   max_rate: float = 200.0, tau_filter: float = 20e-3, include_input: bool = False,
                   seed: int = 0) -> TaskResult:
    """``horizon``-sample-ahead prediction of a series with a ridge readout (module docstring)."""
    pops = recurrent_populations(net)
    n_input = input_size(net)
    n_seg = int(np.ceil((n_train + n_test) / segment))
    u = series(name, n_seg * segment + washout + horizon)
    inputs, targets = [], []
    for r in range(n_seg):
        chunk = u[r * segment: r * segment + washout + segment]
        inputs.append({"input": population_code(chunk, n_input, steps_per_sample, max_rate, net.dt, seed)})
        targets.append(u[r * segment + washout + horizon: r * segment + washout + segment + horizon])
    res = Simulator(net).run((washout + segment) * steps_per_sample, inputs, seed=seed, record=True)
    states = filtered_states(res, pops, steps_per_sample, tau_filter)[:, washout:]
    x, y = states.reshape(-1, states.shape[-1]), np.concatenate(targets)
    if include_input:
        u_now = np.concatenate([u[r * segment + washout: r * segment + washout + segment] for r in range(n_seg)])
        x = np.column_stack([x, u_now])
    n_tr = n_train
    x_tr, x_te = standardise(x[:n_tr], x[n_tr:n_train + n_test])
    y_tr, y_te = y[:n_tr], y[n_tr:n_train + n_test]
    err = ridge_fit(x_tr, y_tr)(x_te) - y_te
    nrmse = float(np.sqrt(np.mean(err**2)) / np.std(y_te))
    rates, sop_rate, stats = _activity(res, pops)
    return TaskResult(name, "nrmse", nrmse, rates, sop_rate, stats)


def classify_digits(net: Network, *, steps_per_image: int = 50, max_rate: float = 200.0, n_images: int | None = None,
                    seed: int = 0) -> TaskResult:
    """Accuracy of a linear readout of spike counts on scikit-learn digits (module docstring)."""
    from sklearn.datasets import load_digits  # the data ships with scikit-learn

    pops = recurrent_populations(net)
    data = load_digits()
    x_img, labels = data.data[:n_images], data.target[:n_images]
    n_input = input_size(net)
    if n_input != x_img.shape[1]:
        raise ValueError(f"digits need an input population of {x_img.shape[1]} neurons (one per pixel), "
                         f"got {n_input}")
    rng = np.random.default_rng(seed)
    prob = max_rate * net.dt * x_img / 16.0
    inputs = [{"input": rng.random((steps_per_image, n_input)) < prob[i]} for i in range(len(x_img))]
    res = Simulator(net).run(steps_per_image, inputs, seed=seed, record=True)
    counts = np.concatenate([res.counts(p) for p in pops], axis=1).astype(float)
    idx_tr, idx_te = stratified_split(labels, 0.3, seed)
    x_tr, x_te = standardise(counts[idx_tr], counts[idx_te])
    onehot = np.eye(10)[labels[idx_tr]] * 2.0 - 1.0
    scores = ridge_fit(x_tr, onehot, np.logspace(-2, 4, 13))(x_te)
    acc = float((scores.argmax(axis=1) == labels[idx_te]).mean())
    rates, sop_rate, stats = _activity(res, pops)
    return TaskResult("digits", "accuracy", acc, rates, sop_rate, stats)


def evaluate(net: Network, task: str, seed: int = 0, repeats: int = 3, **kwargs) -> TaskResult:
    """Run ``task`` (one of ``TASKS``) on ``net`` with seeds ``seed .. seed + repeats - 1`` and average.

    The seed draws the input realisation (spike phases of the series code, Poisson pixels and the
    split for digits); one realisation moves the NRMSE of the same network by several per cent, so
    the metric, rates, SOPs and firing statistics are means over ``repeats`` realisations.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if not (isinstance(repeats, int) and repeats >= 1):
        raise ValueError(f"repeats (input realisations averaged) must be an integer >= 1, got {repeats!r}")
    runs = [classify_digits(net, seed=seed + r, **kwargs) if task == "digits"
            else predict_series(net, task, seed=seed + r, **kwargs) for r in range(repeats)]
    return TaskResult(task, runs[0].metric, float(np.mean([r.value for r in runs])),
                      np.mean([r.rates for r in runs], axis=0), float(np.mean([r.sops_per_second for r in runs])),
                      {k: float(np.mean([r.stats[k] for r in runs])) for k in runs[0].stats})
