"""``neuro simulate CONFIG``: build the configured network, run it, write plots and a summary."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from neuro import plots
from neuro.checks import NON_NEGATIVE_INT, POSITIVE_INT, check_table, like, mapping, optional
from neuro.commands.arguments import non_negative_int, positive_int
from neuro.config import network_from_config
from neuro.io import ConfigError, atomic_path, check_keys, load_config, output_folder, save_figure, write_json
from neuro.simulator import SimulationResult, Simulator

HELP = "simulate a network described by a YAML/TOML config"
TOP_KEYS = ("dt", "seed", "populations", "projections", "metadata", "run")
RUN_KEYS = ("steps", "trials", "seed", "record_state", "state_vars")


def add_arguments(parser):
    parser.add_argument("config", help="YAML or TOML file (schema: docs/core.md)")
    parser.add_argument("--out", default="runs/simulate", help="output folder (default: %(default)s)")
    parser.add_argument("--steps", type=positive_int, help="override run.steps")
    parser.add_argument("--seed", type=non_negative_int, help="override the seed of network and run")
    parser.add_argument("--threads", type=positive_int,
                        help="split the network into this many neuron ranges, one thread each (same spikes); "
                             "default: all threads for 100,000 neurons or more, else trials in parallel")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def summarize(result: SimulationResult, wall_s: float) -> dict:
    """Per-population spike counts and rates (mean over trials) and the run's timing."""
    pops = {}
    for name, (lo, hi) in result.layout.items():
        counts = result.counts(name)
        pops[name] = {"neurons": hi - lo, "spikes_per_trial": counts.sum(1).tolist(),
                      "mean_rate_hz": float(counts.mean() / (result.steps * result.dt)),
                      "silent_fraction": float((counts.sum(0) == 0).mean())}
    return {"steps": result.steps, "dt": result.dt, "trials": result.n_trials,
            "neurons": result.network.size, "synapses": result.network.n_synapses,
            "wall_time_s": round(wall_s, 3), "populations": pops}


def write_outputs(result: SimulationResult, out: Path, summary: dict) -> list[Path]:
    """Raster, rate, traces and connectivity PNGs, spikes ``.npz`` and ``summary.json`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = [save_figure(plots.raster(result), out / "raster.png"),
               save_figure(plots.population_rate(result), out / "rate.png")]
    for pop in result.trace_neurons:
        written.append(save_figure(plots.membrane_traces(result, pop), out / f"traces_{pop}.png"))
    if result.network.projections:
        written.append(save_figure(plots.connectivity_histograms(result.network), out / "connectivity.png"))
    with atomic_path(out / "spikes.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **{f"trial{r}_{k}": a for r in range(result.n_trials)
                                       for k, a in (("times", result.times[r]), ("neurons", result.neurons[r]))},
                                populations=np.array(list(result.layout)),
                                ranges=np.array(list(result.layout.values())))
    written += [out / "spikes.npz", write_json(out / "summary.json", summary)]
    return written


def _record_state(value, key):
    """``{population: [local neuron indices] or null (all)}``."""
    mapping(value, key)
    for pop, neurons in value.items():
        optional(like([0]))(neurons, f"{key}.{pop}")


RUN_RULES = {"steps": POSITIVE_INT, "trials": POSITIVE_INT, "seed": NON_NEGATIVE_INT,
             "record_state": optional(_record_state), "state_vars": like(["v"])}


def run_settings(cfg: dict, where: str) -> dict:
    """The checked ``run`` section of a simulate config."""
    check_keys(cfg, TOP_KEYS, where)
    run_cfg = cfg.get("run") or {}
    mapping(run_cfg, f"{where}: run")
    check_keys(run_cfg, RUN_KEYS, f"{where}: run")
    check_table(run_cfg, RUN_RULES, f"{where}: run")
    return dict(run_cfg)


def run(args) -> int:
    cfg = load_config(args.config)
    run_cfg = run_settings(cfg, str(args.config))
    seed = args.seed if args.seed is not None else cfg.get("seed", 0)
    net = network_from_config(cfg, seed=seed)
    steps = args.steps if args.steps is not None else run_cfg.get("steps", 1000)
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"run.steps must be a positive integer, got {steps!r}")
    out = output_folder(args.out)
    net.save(out / "network.npz")
    t0 = time.perf_counter()
    sim = Simulator(net, threads=args.threads)
    result = sim.run(steps, trials=run_cfg.get("trials", 1), seed=run_cfg.get("seed", seed),
                     record_state=run_cfg.get("record_state"),
                     state_vars=tuple(run_cfg.get("state_vars", ("v",))), progress=not args.no_progress)
    summary = {**summarize(result, time.perf_counter() - t0), "neuron_ranges": int(sim.bounds.size - 1)}
    write_outputs(result, out, summary)
    for name, s in summary["populations"].items():
        print(f"{name:>12}: {s['neurons']:6d} neurons, mean rate {s['mean_rate_hz']:8.2f} Hz")
    print(f"wrote {out}/ (network.npz, spikes.npz, summary.json, raster.png, rate.png)")
    return 0
