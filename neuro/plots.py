"""Plots of simulation results and connectivity (matplotlib, Agg backend); each returns a Figure.

Save with :func:`neuro.io.save_figure` (atomic PNG).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neuro.network import Network  # noqa: E402
from neuro.simulator import SimulationResult  # noqa: E402


def raster(result: SimulationResult, populations=None, trial: int = 0, max_neurons: int = 500):
    """Spike raster, one colour per population, time in ms; at most ``max_neurons`` rows each."""
    pops = list(populations or result.layout)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    base, ticks = 0, []
    for i, name in enumerate(pops):
        lo, hi = result.layout[name]
        shown = min(hi - lo, max_neurons)
        t, k = result.spikes(name, trial)
        keep = k < shown
        ax.scatter(t[keep] * result.dt * 1e3, k[keep] + base, s=1.5, color=f"C{i}", label=name, linewidths=0)
        ticks.append(base + shown / 2)
        base += shown
    ax.set_yticks(ticks, pops)
    ax.set_xlim(0, result.steps * result.dt * 1e3)
    ax.set_ylim(0, max(base, 1))
    ax.set_xlabel("time (ms)")
    ax.set_title(f"spike raster (trial {trial})")
    return fig


def population_rate(result: SimulationResult, populations=None, trial: int = 0, bin_ms: float = 5.0):
    """Population firing rate (Hz per neuron) in bins of ``bin_ms``."""
    pops = list(populations or result.layout)
    bin_steps = max(1, int(round(bin_ms * 1e-3 / result.dt)))
    n_bins = max(1, result.steps // bin_steps)
    fig, ax = plt.subplots(figsize=(9, 3))
    for i, name in enumerate(pops):
        lo, hi = result.layout[name]
        t, _ = result.spikes(name, trial)
        counts = np.bincount(t // bin_steps, minlength=n_bins)[:n_bins]
        rate = counts / ((hi - lo) * bin_steps * result.dt)
        ax.plot((np.arange(n_bins) + 0.5) * bin_steps * result.dt * 1e3, rate, color=f"C{i}", label=name)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("rate (Hz)")
    ax.legend(loc="upper right", fontsize="small")
    ax.set_title(f"population rate ({bin_ms:g} ms bins)")
    return fig


def membrane_traces(result: SimulationResult, population: str, var: str = "v", trial: int = 0, max_traces: int = 8):
    """Recorded state traces of up to ``max_traces`` neurons (record them with ``record_state``)."""
    trace = result.trace(population, var)[trial][:, :max_traces]
    neurons = result.trace_neurons[population][:max_traces]
    t = np.arange(result.steps) * result.dt * 1e3
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for j, k in enumerate(neurons):
        ax.plot(t, trace[:, j], lw=0.8, label=f"neuron {k}")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel(var)
    ax.legend(loc="upper right", fontsize="x-small", ncol=2)
    ax.set_title(f"{population}: {var}")
    return fig


def connectivity_histograms(network: Network, projections=None):
    """Weight, in-degree and out-degree histograms per projection."""
    projs = [network.projection(n) for n in projections] if projections else list(network.projections)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for i, p in enumerate(projs):
        s = p.active()
        kw = {"histtype": "step", "color": f"C{i}", "label": p.name}
        axes[0].hist(s.weights, bins=40, **kw)
        axes[1].hist(s.in_degree(), bins=30, **kw)
        axes[2].hist(s.out_degree(), bins=30, **kw)
    for ax, title in zip(axes, ("weight", "in-degree", "out-degree")):
        ax.set_title(title)
    if projs:
        axes[0].legend(fontsize="x-small")
    fig.tight_layout()
    return fig
