"""``neuro demo``: the main job on its built-in default, in about a minute.

1. build a heterogeneous recurrent SNN (gamma-distributed timescales, E/I, small world);
2. simulate it in the event simulator (several trials in parallel), raster and rates;
3. prune it with Lyapunov noise pruning (LNP), scored on Mackey-Glass prediction;
4. simulate the pruned network;
5. export the pruned network to Lava and compare spike for spike (fixed point and float).

Writes ``dense.npz``, ``pruned.npz``, ``raster_dense.png``, ``raster_pruned.png``,
``rate_dense.png``, ``lnp_report.json``, ``lava_match.txt`` and ``summary.json``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from neuro import plots
from neuro.commands.arguments import non_negative_int
from neuro.commands.simulate import summarize
from neuro.io import check_keys, load_config, output_folder, save_figure, write_json, write_text
from neuro.network import Network
from neuro.simulator import Simulator

HELP = "the main job on its built-in default: HRSNN -> simulate -> LNP prune -> Lava export"
DEFAULTS = {
    "seed": 0,
    "network": {},  # neuro.builders.HRSNN_DEFAULTS (400 LIF neurons)
    "input_rate_hz": 20.0,  # Poisson-like input spikes on the 'input' population
    "simulate": {"steps": 1000, "trials": 4},
    "lnp": {},  # neuro.lnp.LNP_DEFAULTS
    "task": "mackey_glass",
    "task_options": {},  # neuro.lnp.tasks defaults: 2000 training, 600 test samples
    "verify": {"steps": 300, "timeout": 300.0},
}


def add_arguments(parser):
    parser.add_argument("config", nargs="?", help="optional YAML/TOML overriding the built-in defaults")
    parser.add_argument("--out", default="runs/demo", help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=non_negative_int, help="override the seed")
    parser.add_argument("--skip-lava", action="store_true", help="stop before the Lava export")


def input_spikes(net: Network, steps: int, rate_hz: float, trials: int, seed: int) -> list[dict]:
    """Independent Bernoulli spike trains (``rate_hz``) for the ``input`` population, one dict per trial."""
    n_in = net.population("input").size
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(trials)]
    return [{"input": rng.random((steps, n_in)) < rate_hz * net.dt} for rng in rngs]


def _simulate(net, cfg, seed, out: Path, label: str) -> dict:
    steps, trials = cfg["simulate"]["steps"], cfg["simulate"]["trials"]
    t0 = time.perf_counter()
    result = Simulator(net).run(steps, input_spikes(net, steps, cfg["input_rate_hz"], trials, seed), seed=seed,
                                progress=True)
    summary = summarize(result, time.perf_counter() - t0)
    save_figure(plots.raster(result), out / f"raster_{label}.png")
    save_figure(plots.population_rate(result), out / f"rate_{label}.png")
    return summary


def run(args) -> int:
    from neuro.builders import build_hrsnn
    from neuro.lnp import prune_network

    cfg = {**DEFAULTS, **(load_config(args.config) if args.config else {})}
    check_keys(cfg, DEFAULTS, str(args.config or "demo config"))
    seed = cfg["seed"] if args.seed is None else args.seed
    out = output_folder(args.out)
    stages = tqdm(total=5, desc="demo", unit="stage", position=0)

    stages.set_postfix_str("build HRSNN")
    net = build_hrsnn(cfg["network"], seed=seed)
    net.save(out / "dense.npz")
    stages.update()

    stages.set_postfix_str("simulate dense")
    dense = _simulate(net, cfg, seed, out, "dense")
    stages.update()

    stages.set_postfix_str("LNP prune")
    pruned, lnp_report = prune_network(net, cfg["lnp"], seed=seed, task=cfg["task"], task_options=cfg["task_options"])
    pruned.save(out / "pruned.npz")
    write_json(out / "lnp_report.json", lnp_report)
    stages.update()

    stages.set_postfix_str("simulate pruned")
    after = _simulate(pruned, cfg, seed, out, "pruned")
    stages.update()

    summary = {"seed": seed, "dense": dense, "pruned": after,
               "lnp": {k: lnp_report[k] for k in ("neuron_fraction", "synapse_fraction", "relative_change",
                                                  "sops_fraction") if k in lnp_report},
               "lambda_max_per_step": {"dense": lnp_report["dense"]["lambda_max_per_step"],
                                       "pruned": lnp_report["pruned"]["lambda_max_per_step"]}}
    all_match = True
    if not args.skip_lava:
        from deployment.verify import verify_network

        stages.set_postfix_str("Lava export + verify")
        steps = cfg["verify"]["steps"]
        report = verify_network(pruned, steps, input_spikes(pruned, steps, cfg["input_rate_hz"], 1, seed)[0],
                                seed=seed, timeout=cfg["verify"]["timeout"])
        table = report.table()
        write_text(out / "lava_match.txt", table + "\n")
        summary["lava"] = {"all_match": report.all_match, "steps": steps,
                           "rows": [{"mode": r.mode, "population": r.population, "neuro": r.ours, "lava": r.lava,
                                     "matched": r.matched} for r in report.rows]}
        all_match = report.all_match
    stages.update()
    stages.close()
    write_json(out / "summary.json", summary)

    print(f"\nHRSNN: {net.size} neurons, {net.n_synapses} synapses -> pruned: {pruned.size} neurons, "
          f"{pruned.n_synapses} synapses")
    print(f"largest Lyapunov exponent (per step): dense {summary['lambda_max_per_step']['dense']:+.4f}, "
          f"pruned {summary['lambda_max_per_step']['pruned']:+.4f}")
    if "relative_change" in lnp_report:
        metric = [k for k in lnp_report["pruned"] if k in ("nrmse", "accuracy")][0]
        print(f"{cfg['task']} {metric}: dense {lnp_report['dense'][metric]:.4f}, "
              f"pruned {lnp_report['pruned'][metric]:.4f}")
    for label, s in (("dense", dense), ("pruned", after)):
        rates = ", ".join(f"{k} {v['mean_rate_hz']:.1f} Hz" for k, v in s["populations"].items())
        print(f"{label:>6} rates: {rates}")
    if not args.skip_lava:
        print("\n" + table)
    print(f"\nwrote {out}/ (summary.json, lnp_report.json, rasters, dense.npz, pruned.npz"
          f"{', lava_match.txt' if not args.skip_lava else ''})")
    return 0 if all_match else 1
