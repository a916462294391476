"""Synaptic operations and firing statistics of a simulation run.

* ``SOPs = sum_t sum_i s_i(t) * fanout_i``: every spike of neuron ``i`` costs one operation per
  active outgoing synapse (all projections, input populations included).
* rates (Hz), fraction of silent neurons, coefficient of variation of inter-spike intervals
  (``CV = std(ISI) / mean(ISI)`` over neurons with >= 3 spikes; ~1 for Poisson-like firing),
  and the synchrony measure ``chi^2 = Var(pop. rate) / mean_i Var(rate_i)`` in 5-step bins
  (Golomb 2007; ~0 asynchronous, 1 fully synchronous).
"""

from __future__ import annotations

import numpy as np

from neuro.network import Network
from neuro.simulator import SimulationResult


def fanout(net: Network, population: str) -> np.ndarray:
    """Active outgoing synapses of each neuron of ``population``."""
    out = np.zeros(net.population(population).size, np.int64)
    for p in net.projections:
        if p.pre == population:
            out += np.bincount(p.synapses.pre_indices()[p.mask], minlength=len(out))
    return out


def sops(result: SimulationResult, populations=None) -> np.ndarray:
    """Synaptic operations per trial, ``[trials]`` (module docstring)."""
    net = result.network
    names = [p.name for p in net.populations] if populations is None else list(populations)
    total = np.zeros(result.n_trials)
    for name in names:
        total += result.counts(name) @ fanout(net, name)
    return total


def firing_stats(result: SimulationResult, populations, bin_steps: int = 5) -> dict:
    """Mean/median rate (Hz), silent fraction, mean CV of ISIs and synchrony chi^2, pooled over trials."""
    counts = np.concatenate([result.counts(p) for p in populations], axis=1)  # [trials, n]
    rates = counts / (result.steps * result.dt)
    cvs, chis = [], []
    for r in range(result.n_trials):
        raster = np.concatenate([result.raster(p, r) for p in populations], axis=1)
        t, k = np.nonzero(raster)
        order = np.lexsort((t, k))
        t, k = t[order], k[order]
        same = k[1:] == k[:-1]
        isi = np.diff(t)[same]
        owner = k[1:][same]
        n_isi = np.bincount(owner, minlength=raster.shape[1])
        ok = n_isi >= 2
        if ok.any():
            mean = np.bincount(owner, isi, minlength=raster.shape[1])[ok] / n_isi[ok]
            sq = np.bincount(owner, isi.astype(float) ** 2, minlength=raster.shape[1])[ok] / n_isi[ok]
            cvs.append(np.sqrt(np.maximum(sq - mean**2, 0.0)) / mean)
        n_bins = result.steps // bin_steps
        if n_bins > 1:
            binned = raster[: n_bins * bin_steps].reshape(n_bins, bin_steps, -1).sum(axis=1).astype(float)
            var_i = binned.var(axis=0).mean()
            chis.append(binned.mean(axis=1).var() / var_i if var_i > 0 else np.nan)
    cv = np.concatenate(cvs) if cvs else np.array([np.nan])
    return {"rate_mean_hz": float(rates.mean()), "rate_median_hz": float(np.median(rates)),
            "silent_fraction": float((counts == 0).mean()), "cv_isi": float(np.nanmean(cv)),
            "synchrony_chi2": float(np.nanmean(chis)) if chis else float("nan")}
