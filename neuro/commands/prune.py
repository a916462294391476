"""``neuro prune [CONFIG]``: Lyapunov noise pruning (LNP) of a heterogeneous recurrent SNN.

Writes ``pruned.npz`` (``Network.save``), ``report.json`` (neurons and synapses before/after,
largest Lyapunov exponent before/after, task metric, SOPs, firing statistics, memory capacity),
``spectrum.png`` (leading Lyapunov spectra, dense vs pruned), ``memory.png`` (linear memory capacity
per delay, dense vs pruned) and ``sizes.png``; with ``compare`` also
``compare.json`` and ``compare.png`` (LNP vs random vs activity pruning over seeds).
"""

from __future__ import annotations

import numpy as np

from neuro.checks import (
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    check_like,
    check_table,
    like,
    mapping,
    optional,
    text,
)
from neuro.commands.arguments import non_negative_int
from neuro.io import ConfigError, check_keys, load_config, save_figure, staged_folder, write_json

HELP = "Lyapunov noise pruning (LNP) of a heterogeneous recurrent SNN"

DEFAULTS = {
    "seed": 0,
    "network": {},  # HRSNN builder options (neuro.builders.HRSNN_DEFAULTS)
    "network_file": None,  # or a saved network (.npz) with an 'input' population
    "method": "lnp",  # lnp | random | activity | random_stabilised | activity_stabilised
    "lnp": {},  # neuro.lnp.LNP_DEFAULTS
    "task": "mackey_glass",  # mackey_glass | lorenz | digits | none
    "task_options": {},
    "spectrum": {"k": 20, "steps": None},  # steps None: those of the LNP exponent (lnp.lyapunov.steps)
    "output": "runs/prune",
    "compare": None,  # {"seeds": [0, 1, 2], "tasks": ["mackey_glass", "digits"], "baselines": [...]}
}
#: Everything a run writes: the output folder is replaced as a whole (:func:`neuro.io.staged_folder`).
OUTPUTS = ("pruned.npz", "report.json", "spectrum.png", "memory.png", "sizes.png", "compare.json", "compare.png")


def add_arguments(parser):
    parser.add_argument("config", nargs="?", help="YAML/TOML config (default: the built-in one)")
    parser.add_argument("--out", help="output directory (overrides 'output')")
    parser.add_argument("--seed", type=non_negative_int, help="seed (overrides 'seed')")
    parser.add_argument("--compare", action="store_true",
                        help="also compare LNP with random and activity pruning (3 seeds, two tasks)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


RULES = {"seed": NON_NEGATIVE_INT, "network": mapping, "network_file": optional(text), "lnp": mapping,
         "task_options": mapping, "spectrum": mapping, "spectrum.k": POSITIVE_INT,
         "spectrum.steps": optional(POSITIVE_INT),
         "output": text}
COMPARE_RULES = {"compare.seeds": like([0]), "compare.tasks": like(["digits"]), "compare.baselines": like(["random"])}


def _check_task_options(task, options, where) -> None:
    """``task_options`` are keyword arguments of the task's function: names and kinds from its defaults."""
    import inspect

    from neuro.lnp.tasks import classify_digits, predict_series

    if task in ("none", None):
        return
    fn = classify_digits if task == "digits" else predict_series
    defaults = {k: p.default for k, p in inspect.signature(fn).parameters.items()
                if p.kind is p.KEYWORD_ONLY and k != "seed"}
    check_keys(options, defaults, f"{where}: task_options")
    check_like(options, defaults, f"{where}: task_options")
    check_table(options, {k: POSITIVE_INT for k, v in defaults.items() if isinstance(v, int) and v > 0}
                | {k: POSITIVE for k, v in defaults.items() if isinstance(v, float) and v > 0}
                | {k: optional(POSITIVE_INT) for k, v in defaults.items() if v is None},
                f"{where}: task_options")


def read_config(path) -> dict:
    cfg = {**DEFAULTS, **(load_config(path) if path else {})}
    check_keys(cfg, DEFAULTS, str(path or "prune config"))
    check_table(cfg, RULES, str(path or "prune config"))
    if cfg["task"] not in ("mackey_glass", "lorenz", "digits", "none", None):
        raise ConfigError(f"task must be mackey_glass, lorenz, digits or none, got {cfg['task']!r}")
    from neuro.lnp.pipeline import METHODS

    if cfg["method"] not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {cfg['method']!r}")
    if cfg["network"] and cfg["network_file"]:
        raise ConfigError("give either 'network' (builder options) or 'network_file', not both")
    if cfg["compare"] is not None:
        if not isinstance(cfg["compare"], dict):
            raise ConfigError("compare must be a mapping with 'seeds' and 'tasks'")
        check_keys(cfg["compare"], ("seeds", "tasks", "baselines"), "compare")
        check_table(cfg, COMPARE_RULES, str(path or "prune config"))
    _check_task_options(cfg["task"], cfg["task_options"], str(path or "prune config"))
    check_keys(cfg["spectrum"], ("k", "steps"), "spectrum")
    cfg["spectrum"] = {**DEFAULTS["spectrum"], **cfg["spectrum"]}
    return cfg


def run(args) -> int:
    cfg = read_config(args.config)
    if args.seed is not None:
        cfg["seed"] = args.seed
    if args.compare and cfg["compare"] is None:
        cfg["compare"] = {}
    with staged_folder(args.out or cfg["output"], OUTPUTS) as out:
        report = _prune(cfg, out, not getattr(args, "no_progress", False))
    _print_summary(report, args.out or cfg["output"])
    return 0


def _prune(cfg, out, progress):
    """Prune, measure and write every output into ``out`` (a staging folder); returns the report."""
    from neuro.builders import build_hrsnn
    from neuro.lnp import lyapunov_spectrum, prune_network
    from neuro.lnp.capacity import MemoryCapacity, plot_memory
    from neuro.lnp.lyapunov import plot_spectrum
    from neuro.network import Network

    seed = cfg["seed"]
    net = Network.load(cfg["network_file"]) if cfg["network_file"] else build_hrsnn(cfg["network"], seed=seed)
    task = None if cfg["task"] in ("none", None) else cfg["task"]
    pruned, report = prune_network(net, cfg["lnp"], seed, task, cfg["method"], cfg["task_options"],
                                   progress=progress)
    pruned.save(out / "pruned.npz")

    lyap = dict(report["config"]["lyapunov"])  # the probe input and horizon of lambda_max
    if cfg["spectrum"]["steps"] is not None:
        lyap["steps"] = int(cfg["spectrum"]["steps"])
    k = int(cfg["spectrum"]["k"])
    before, after = lyapunov_spectrum(net, k=k, **lyap), lyapunov_spectrum(pruned, k=k, **lyap)
    report["spectrum_per_second"] = {"dense": before.per_second, "pruned": after.per_second}
    plot_spectrum(before, out / "spectrum.png", "Leading Lyapunov exponents", {"pruned": after}, label="dense")
    plot_memory({name: MemoryCapacity(np.array(report[name]["memory_capacity"]["by_delay"]))
                 for name in ("dense", "pruned")}, out / "memory.png")
    if task:
        _plot_sizes(report, out / "sizes.png")
    if cfg["compare"] is not None:
        from neuro.lnp.compare import compare_methods, plot_comparison
        from neuro.lnp.pipeline import BASELINES

        comp = compare_methods(cfg["network"], cfg["lnp"], tuple(cfg["compare"].get("seeds", (0, 1, 2))),
                               tuple(cfg["compare"].get("tasks", ("mackey_glass", "digits"))),
                               baselines=tuple(cfg["compare"].get("baselines", BASELINES)))
        write_json(out / "compare.json", comp)
        plot_comparison(comp["table"], out / "compare.png")
        report["compare"] = comp["table"]
    write_json(out / "report.json", report)
    return report


def _print_summary(report, out):
    task = report["dense"].get("task")
    d, p = report["dense"], report["pruned"]
    print(f"neurons {d['neurons']} -> {p['neurons']}, recurrent synapses {d['recurrent_synapses']} -> "
          f"{p['recurrent_synapses']}, lambda_max {d['lambda_max_per_second']:.1f} -> "
          f"{p['lambda_max_per_second']:.1f} 1/s (driven by the probe input)")
    for name, part in (("dense", d), ("pruned", p)):
        a = part["autonomous"]
        print(f"{name} without input: {a['rate_hz']:.1f} Hz, perturbations (eps 0.01) "
              f"{'shrink' if a['direct_per_second'] < 0 else 'grow'} at {a['direct_per_second']:+.1f} 1/s, "
              f"{100 * a['direct_converged']:.0f}% of trials converge")
    print(f"linear memory capacity (white input, samples): {d['memory_capacity']['total']:.2f} -> "
          f"{p['memory_capacity']['total']:.2f}")
    if task:
        metric = "nrmse" if "nrmse" in d else "accuracy"
        print(f"{task} {metric} {d[metric]:.4f} -> {p[metric]:.4f}, SOPs/s {d['sops_per_second']:.3g} -> "
              f"{p['sops_per_second']:.3g}")
    print(f"wrote {out}/pruned.npz, report.json and plots")


def _plot_sizes(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    names = ["neurons", "recurrent_synapses", "sops_per_second"]
    d, p = report["dense"], report["pruned"]
    ratios = [p[n] / d[n] for n in names]
    ax.bar(names, ratios, color="tab:blue")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_ylabel("pruned / dense")
    ax.set_title(f"LNP ({report['method']}): size and synaptic operations")
    for i, r in enumerate(ratios):
        ax.text(i, r, f"{r:.2f}", ha="center", va="bottom")
    ax.set_ylim(0, max(1.1, float(np.max(ratios)) * 1.15))
    save_figure(fig, path)
