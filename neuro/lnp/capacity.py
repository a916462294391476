"""Linear memory capacity of a spiking reservoir (Jaeger 2001), a task-agnostic quality measure.

The network is driven by a white random signal ``u(m) ~ U(0, 1)``, i.i.d. per sample, encoded
exactly like the series tasks (:func:`neuro.lnp.tasks.population_code`: held
``steps_per_sample`` steps, Gaussian tuning curves on the ``input`` population). For every delay
``d`` a ridge readout (:func:`neuro.lnp.tasks.ridge_fit`) of the filtered states ``x(m)`` is
fitted to ``u(m - d)`` on the training samples, and the capacity is its coefficient of
determination on the test samples, clipped to ``[0, 1]``::

    MC_d = max(0, 1 - E[(y_d(m) - u(m - d))^2] / Var[u]),     MC = sum_d MC_d

Since ``u`` is white, ``MC_d`` is what the states still know about the input ``d`` samples ago:
a memoryless network has ``MC_d ~ 0`` for ``d >= 1`` beyond what the readout filter
(``tau_filter``) itself holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuro.lnp.graph import recurrent_populations
from neuro.lnp.tasks import filtered_states, input_size, population_code, ridge_fit, standardise
from neuro.network import Network
from neuro.simulator import Simulator


@dataclass(frozen=True)
class MemoryCapacity:
    """``by_delay[d]`` = ``MC_d`` for ``d = 0 .. len - 1``; ``total`` = their sum."""

    by_delay: np.ndarray

    @property
    def total(self) -> float:
        return float(self.by_delay.sum())

    def as_dict(self) -> dict:
        return {"total": self.total, "by_delay": [float(c) for c in self.by_delay]}


def memory_capacity(net: Network, delays: int = 10, *, segments: int = 6, segment: int = 200, washout: int = 30,
                    test_segments: int = 2, steps_per_sample: int = 10, max_rate: float = 200.0,
                    tau_filter: float = 20e-3, populations=None, seed: int = 0) -> MemoryCapacity:
    """``MC_d`` for ``d = 0 .. delays`` (module docstring).

    ``segments`` trials of ``washout + segment`` samples run in parallel; the last
    ``test_segments`` are the test set. ``populations`` are the state (default: the recurrent
    populations); ``seed`` draws the signal and the spike phases of the code.
    """
    if not (isinstance(delays, int) and 0 <= delays < washout):
        raise ValueError(f"delays must be an integer in [0, washout={washout}), got {delays!r}")
    if not 0 < test_segments < segments:
        raise ValueError(f"test_segments must be in (0, segments={segments}), got {test_segments}")
    pops = tuple(populations) if populations is not None else recurrent_populations(net)
    if not pops:
        raise ValueError("no state populations: the network has no recurrent LIF populations; pass populations=")
    n_input = input_size(net)
    rng = np.random.default_rng(seed)
    u = rng.random((segments, washout + segment))
    inputs = [{"input": population_code(u[r], n_input, steps_per_sample, max_rate, net.dt, seed)}
              for r in range(segments)]
    res = Simulator(net).run((washout + segment) * steps_per_sample, inputs, seed=seed, record=True)
    states = filtered_states(res, pops, steps_per_sample, tau_filter)[:, washout:]
    x = states.reshape(-1, states.shape[-1])
    n_train = (segments - test_segments) * segment
    x_train, x_test = standardise(x[:n_train], x[n_train:])
    capacity = np.zeros(delays + 1)
    for d in range(delays + 1):
        y = u[:, washout - d: washout + segment - d].reshape(-1)
        err = ridge_fit(x_train, y[:n_train])(x_test) - y[n_train:]
        capacity[d] = max(0.0, 1.0 - np.mean(err**2) / np.var(y[n_train:]))
    return MemoryCapacity(capacity)


def plot_memory(capacities: dict, path, title: str = "Linear memory capacity"):
    """``MC_d`` against the delay ``d`` for each named :class:`MemoryCapacity` (e.g. dense vs pruned)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuro.io import save_figure

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, mc in capacities.items():
        ax.plot(np.arange(len(mc.by_delay)), mc.by_delay, "o-", label=f"{name} (MC = {mc.total:.2f})")
    ax.set_xlabel("delay d (samples)")
    ax.set_ylabel("MC_d (test R², clipped at 0)")
    ax.set_title(title)
    ax.legend()
    return save_figure(fig, path)
