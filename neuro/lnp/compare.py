"""LNP against random and activity-based pruning at equal size, over seeds and tasks.

For every seed: build the dense HRSNN, prune it once with LNP (task-agnostic), build the random
baselines at LNP's size, and, per task, the activity baselines from the dense network's rates on
that task; each baseline as selection only and with LNP's stabilisation step
(:data:`neuro.lnp.pipeline.BASELINES`). Every network is scored on every task and by its linear
memory capacity (:mod:`neuro.lnp.capacity`).
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from neuro.builders import build_hrsnn
from neuro.lnp.capacity import memory_capacity
from neuro.lnp.lyapunov import largest_lyapunov
from neuro.lnp.pipeline import BASELINES, baseline_prune, lnp_config, lnp_prune, network_size, summary
from neuro.lnp.tasks import evaluate


def compare_methods(network: dict | None = None, lnp: dict | None = None, seeds=(0, 1, 2),
                    tasks=("mackey_glass", "digits"), task_options: dict | None = None,
                    baselines=BASELINES, progress: bool = True) -> dict:
    """Scores of ``dense``, ``lnp`` and the ``baselines`` per task and seed, with mean and std."""
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; expected some of {BASELINES}")
    cfg = lnp_config(lnp)
    opts = task_options or {}
    rows = []
    bar = tqdm(total=len(seeds) * len(tasks), desc="compare", disable=not progress)
    for seed in seeds:
        dense = build_hrsnn(network, seed=seed)
        lam_dense = largest_lyapunov(dense, cfg["probes"], **cfg["lyapunov"])
        pruned = {"lnp": lnp_prune(dense, cfg, seed)}
        size = network_size(pruned["lnp"][0])
        for method in baselines:
            if method.startswith("random"):
                pruned[method] = baseline_prune(dense, method, size, config=cfg, seed=seed)
        memory = {"dense": memory_capacity(dense, seed=seed).total,
                  **{m: memory_capacity(net, seed=seed).total for m, (net, _) in pruned.items()}}
        for task in tasks:
            ref = evaluate(dense, task, seed=seed, **opts.get(task, {}))
            nets = dict(pruned)
            for method in baselines:
                if method.startswith("activity"):
                    nets[method] = baseline_prune(dense, method, size, ref.rates, cfg, seed)
                    memory[method] = memory_capacity(nets[method][0], seed=seed).total
            rows.append({"seed": seed, "task": task, "method": "dense", **summary(dense, lam_dense, ref),
                         "memory_capacity": memory["dense"]})
            for method, (net, info) in nets.items():
                result = evaluate(net, task, seed=seed, **opts.get(task, {}))
                rows.append({"seed": seed, "task": task, "method": method,
                             **summary(net, info["lambda_after"], result), "memory_capacity": memory[method],
                             "relative_change": result.relative_change(ref),
                             "sops_fraction": result.sops_per_second / ref.sops_per_second})
            bar.update()
    bar.close()
    return {"rows": rows, "table": aggregate(rows)}


def aggregate(rows: list) -> dict:
    """``table[task][method] = {metric: [mean, std]}`` over seeds; for each pruned method other than
    LNP also ``lnp_minus_method``: LNP's relative change minus the method's, paired by seed,
    ``[mean, standard error]`` (negative: LNP better), and ``lnp_better_seeds``."""
    table = {}
    keys = ("nrmse", "accuracy", "lambda_max_per_second", "sops_per_second", "neurons", "recurrent_synapses",
            "relative_change", "memory_capacity")
    for task in dict.fromkeys(r["task"] for r in rows):
        table[task] = {}
        of_task = [r for r in rows if r["task"] == task]
        lnp = {r["seed"]: r["relative_change"] for r in of_task if r["method"] == "lnp"}
        for method in dict.fromkeys(r["method"] for r in of_task):
            sel = [r for r in of_task if r["method"] == method]
            entry = {k: [float(np.mean([r[k] for r in sel])), float(np.std([r[k] for r in sel]))]
                     for k in keys if k in sel[0]}
            if method not in ("dense", "lnp") and lnp:
                diff = np.array([lnp[r["seed"]] - r["relative_change"] for r in sel if r["seed"] in lnp])
                sem = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")
                entry["lnp_minus_method"] = [float(diff.mean()), sem]
                entry["lnp_better_seeds"] = [int((diff < 0).sum()), len(diff)]
            table[task][method] = entry
    return table


COLOURS = {"dense": "grey", "lnp": "tab:blue", "random": "tab:orange", "activity": "tab:green",
           "random_stabilised": "moccasin", "activity_stabilised": "lightgreen"}


def plot_comparison(table: dict, path):
    """Bar chart of the task metric (mean +- std over seeds) per task and method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuro.io import save_figure

    fig, axes = plt.subplots(1, len(table), figsize=(4.5 * len(table), 3.5), squeeze=False)
    for ax, (task, methods) in zip(axes[0], table.items()):
        metric = "nrmse" if "nrmse" in next(iter(methods.values())) else "accuracy"
        names = list(methods)
        mean = [methods[m][metric][0] for m in names]
        std = [methods[m][metric][1] for m in names]
        ax.bar(range(len(names)), mean, yerr=std, capsize=4, color=[COLOURS.get(m, "tab:purple") for m in names])
        ax.set_xticks(range(len(names)), [m.replace("_", "\n") for m in names], fontsize=8)
        ax.set_title(task)
        ax.set_ylabel(metric)
        low, high = min(np.subtract(mean, std)), max(np.add(mean, std))  # zoom on the differences
        ax.set_ylim(low - 0.5 * (high - low), high + 0.2 * (high - low))
    fig.tight_layout()
    return save_figure(fig, path)
