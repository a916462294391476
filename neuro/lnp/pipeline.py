"""Lyapunov noise pruning (LNP) end to end, and the baselines through the same code path.

``prune_network(net, config, seed) -> (pruned, report)``::

    1. sparsify   keep ~synapse_keep of the recurrent synapses, sampled by noise score, reweighted 1/p
    2. neurons    keep the neuron_keep fraction per population with the least participation in the leading
                  Lyapunov vectors of the sparsified network (or the highest betweenness); optionally
                  (delocalize) shrink hub in-weights so the leading eigenvectors spread
    3. stabilise  lower the drive until the network is silent without input (rest), then scale the
                  recurrent weights (optionally first the membrane time constants) until the driven
                  lambda_max <= target

Baselines replace steps 1-2 by a selection of the same final size (neurons per population and
recurrent synapses of the LNP result): ``random`` and ``activity`` are that selection alone (the
baselines as the issue and the paper define them: pruning, weights untouched), and
``random_stabilised`` / ``activity_stabilised`` also go through LNP's step 3 (our control: it
separates what LNP's selection contributes from what its stabilisation contributes).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from tqdm.auto import tqdm

from neuro.checks import NON_NEGATIVE, POSITIVE, POSITIVE_INT, check_like, check_table, number
from neuro.lnp.baselines import activity_selection, random_selection
from neuro.lnp.capacity import memory_capacity
from neuro.lnp.delocalize import delocalize, localisation
from neuro.lnp.graph import recurrent_of, subnetwork, with_synapses
from neuro.lnp.lyapunov import SilentOrbitWarning, largest_lyapunov, perturbation_exponent
from neuro.lnp.neuron_prune import betweenness_scores, lyapunov_participation, select_top
from neuro.lnp.sparsify import sparsify_synapses
from neuro.lnp.stabilize import lower_rest, mean_rate, stabilize
from neuro.lnp.tasks import TaskResult, evaluate
from neuro.network import Network

LNP_DEFAULTS = {
    "synapse_keep": 0.5,  # step 1: expected fraction of recurrent synapses kept
    "neuron_keep": 0.6,  # step 2: fraction of neurons kept per population
    "noise_gain": 0.9,  # kappa of the linearised model (sparsify.py)
    "neuron_score": "lyapunov",  # step 2: lyapunov (participation in unstable directions) | betweenness
    "vectors": 5,  # lyapunov score: number of leading Lyapunov vectors
    "pivots": 64,  # betweenness: sampled source neurons
    "delocalize": False,  # between steps 2 and 3: shrink hub in-weights until the leading eigenvectors spread
    "stabilize": True,
    "rest": 0.9,  # step 3: lower the drive so that steady states sit at 0.9 of threshold (silent without input)
    "preserve_rate": False,  # step 3, instead: lower the drive to the pre-stabilisation rate (session 2; rest: null)
    "target": -0.005,  # step 3: lambda_max (per step) must end <= target (-5/s: a margin for the estimate's spread)
    "min_factor": 1.0,  # step 3: smallest time-constant factor (1: the timescales are kept, docs/lnp.md)
    "iterations": 6,
    "lyapunov": {"steps": 2000, "warmup": 200, "surrogate_width": 1.0, "input_rate": 10.0},
    "probes": 3,  # lambda_max = mean over this many probe realisations (seeds 0, 1, ...)
}
BASELINES = ("random", "activity", "random_stabilised", "activity_stabilised")
METHODS = ("lnp", *BASELINES)
NEURON_SCORES = ("lyapunov", "betweenness")


FRACTION = number(0, 1, low_open=True)
#: Rules beyond the kind of the default (:func:`neuro.checks.check_like`).
LNP_RULES = {"synapse_keep": FRACTION, "neuron_keep": FRACTION, "noise_gain": POSITIVE, "vectors": POSITIVE_INT,
             "pivots": POSITIVE_INT, "iterations": POSITIVE_INT, "min_factor": POSITIVE,
             "lyapunov.steps": POSITIVE_INT, "lyapunov.surrogate_width": POSITIVE, "lyapunov.input_rate": NON_NEGATIVE}


def lnp_config(config: dict | None) -> dict:
    cfg = {**LNP_DEFAULTS, **(config or {})}
    unknown = sorted(set(cfg) - set(LNP_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown LNP option(s) {unknown}; known: {sorted(LNP_DEFAULTS)}")
    cfg["lyapunov"] = {**LNP_DEFAULTS["lyapunov"], **(cfg["lyapunov"] or {})}
    check_like(cfg, LNP_DEFAULTS, "lnp", skip=("rest", "probes", "stabilize", "preserve_rate", "delocalize"))
    check_table(cfg, LNP_RULES, "lnp")
    if not (isinstance(cfg["probes"], int) and not isinstance(cfg["probes"], bool) and cfg["probes"] >= 1):
        raise ValueError(f"probes (probe realisations averaged for lambda_max) must be an integer >= 1, "
                         f"got {cfg['probes']!r}")
    rest = cfg["rest"]
    if rest is not None and not (isinstance(rest, (int, float)) and 0 <= rest < 1):
        raise ValueError(f"rest (steady state as a fraction of the way to threshold) must be in [0, 1) "
                         f"or null, got {rest!r}")
    for flag in ("stabilize", "preserve_rate", "delocalize"):
        if not isinstance(cfg[flag], bool):
            raise ValueError(f"{flag} must be true or false, got {cfg[flag]!r}")
    if cfg["neuron_score"] not in NEURON_SCORES:
        raise ValueError(f"unknown neuron_score {cfg['neuron_score']!r}; expected one of {NEURON_SCORES}")
    return cfg


def _finish(net: Network, cfg: dict) -> tuple[Network, dict]:
    if not cfg["stabilize"]:
        lam = largest_lyapunov(net, cfg["probes"], **cfg["lyapunov"])
        return net, {"lambda_before": lam, "lambda_after": lam, "tau_factor": 1.0, "weight_factor": 1.0}
    return stabilize(net, cfg["target"], cfg["min_factor"], cfg["iterations"], cfg["lyapunov"], cfg["rest"],
                     cfg["preserve_rate"], cfg["probes"])


def lnp_select(net: Network, config: dict | None = None, seed=0) -> tuple[Network, dict]:
    """LNP steps 1-2 (sparsify, prune neurons): the unstabilised network, and the synapses kept by
    step 1 and the drive factor of ``rest`` (applied before the neuron scores) as a dict."""
    cfg = lnp_config(config)
    rng = np.random.default_rng(seed)
    rec = recurrent_of(net)
    keep, weight, _ = sparsify_synapses(rec, cfg["synapse_keep"], cfg["noise_gain"], rng)
    sparse = with_synapses(net, rec, keep, weight)
    drive = 1.0
    if cfg["rest"] is not None and cfg["stabilize"]:  # score the neurons at the operating point step 3 sets
        sparse, drive = lower_rest(sparse, cfg["rest"])
    if cfg["neuron_score"] == "lyapunov":
        scores = -lyapunov_participation(sparse, cfg["vectors"], **cfg["lyapunov"])
    else:
        scores = betweenness_scores(rec, keep, weight, cfg["pivots"], rng)
    neurons = select_top(rec, scores, cfg["neuron_keep"])
    return subnetwork(sparse, neurons), {"synapses_after_sparsify": int(keep.sum()), "drive_factor": drive}


def lnp_prune(net: Network, config: dict | None = None, seed=0) -> tuple[Network, dict]:
    """The three LNP steps (module docstring); returns the pruned network and step information."""
    cfg = lnp_config(config)
    pruned, selected = lnp_select(net, cfg, seed)
    extra = {}
    if cfg["delocalize"]:
        pruned, extra["delocalisation"] = delocalize(pruned)
    stable, info = _finish(pruned, cfg)
    return stable, {**info, **extra, "synapses_after_sparsify": selected["synapses_after_sparsify"],
                    "drive_factor": selected["drive_factor"] * info.get("drive_factor", 1.0)}


def baseline_prune(net: Network, method: str, size: dict, rates=None, config: dict | None = None,
                   seed=0) -> tuple[Network, dict]:
    """A baseline of :data:`BASELINES` at ``size = {'neurons': {pop: n}, 'synapses': m}``: random or
    activity-based selection, then step 3 only for the ``*_stabilised`` variants."""
    if method not in BASELINES:
        raise ValueError(f"unknown baseline {method!r}; expected one of {BASELINES}")
    selection, _, stabilised = method.partition("_")
    cfg = lnp_config(config)
    cfg["stabilize"] = cfg["stabilize"] and bool(stabilised)
    rec = recurrent_of(net)
    if selection == "random":
        neurons, keep = random_selection(rec, size["neurons"], size["synapses"], seed)
    else:
        if rates is None:
            raise ValueError("activity-based pruning needs the dense network's rates")
        neurons, keep = activity_selection(rec, rates, size["neurons"], size["synapses"])
    pruned = subnetwork(with_synapses(net, rec, keep), neurons)
    return _finish(pruned, cfg)


def network_size(net: Network) -> dict:
    rec = recurrent_of(net)
    return {"neurons": {p: hi - lo for p, (lo, hi) in rec.layout.items()}, "synapses": rec.n_synapses}


def summary(net: Network, lam: float, task: TaskResult | None) -> dict:
    """Sizes, lambda_max and (if given) task metric, SOPs and firing statistics of one network."""
    size = network_size(net)
    out = {"neurons": int(sum(size["neurons"].values())), "neurons_per_population": size["neurons"],
           "recurrent_synapses": size["synapses"], "synapses_total": net.n_synapses,
           "lambda_max_per_step": float(lam), "lambda_max_per_second": float(lam / net.dt)}
    if task is not None:
        out.update({"task": task.task, task.metric: task.value, "sops_per_second": task.sops_per_second,
                    "firing": task.stats})
    return out


def autonomous_record(net: Network, lyapunov: dict) -> dict:
    """The network without input: mean rate, the surrogate QR exponent and the direct estimate
    (:func:`perturbation_exponent`, eps = 0.01 of the threshold, 8 trials). A silent network's
    true exponents are its leak rates; the surrogate still sees coupling through sub-threshold
    potentials and is positive there (docs/lnp.md), so the direct estimate is the one to read."""
    direct = perturbation_exponent(net, steps=300, eps=1e-2, trials=8)
    with warnings.catch_warnings():  # a silent orbit is expected here; the record says how to read it
        warnings.simplefilter("ignore", SilentOrbitWarning)
        surrogate = largest_lyapunov(net, **{**lyapunov, "input_rate": 0.0})
    return {"rate_hz": mean_rate(net), "lambda_max_surrogate_per_second": surrogate / net.dt,
            "direct_per_second": direct.per_second, "direct_diverged": direct.diverged,
            "direct_converged": direct.converged}


def _next_stage(bar, name: str) -> None:
    bar.update()
    bar.set_postfix_str(name)


def prune_network(net: Network, config: dict | None = None, seed=0, task: str | None = "mackey_glass",
                  method: str = "lnp", task_options: dict | None = None,
                  progress: bool = False) -> tuple[Network, dict]:
    """Prune ``net`` with LNP (or a baseline at LNP's size) and report before/after.

    The report holds ``dense`` and ``pruned`` summaries (:func:`summary`, plus the largest exponent
    without input and under another realisation of the probe input, the linear memory capacity
    of :mod:`neuro.lnp.capacity` and ``n * IPR`` of the leading eigenvectors of the recurrent weights,
    :mod:`neuro.lnp.delocalize`), ratios, the stabilisation
    record and the wall time. ``task=None`` skips the task evaluation; ``progress`` shows the
    stages in a progress bar.
    """
    start = time.perf_counter()
    if method not in METHODS:
        raise ValueError(f"unknown pruning method {method!r}; expected one of {METHODS}")
    cfg = lnp_config(config)
    task_options = dict(task_options or {})
    stages = tqdm(total=5, desc="prune", disable=not progress)
    stages.set_postfix_str("dense task")
    dense_task = evaluate(net, task, seed=seed, **task_options) if task else None
    _next_stage(stages, "dense exponent")
    lam_dense = largest_lyapunov(net, cfg["probes"], **cfg["lyapunov"])
    _next_stage(stages, f"{method} pruning")
    if method == "lnp":
        pruned, info = lnp_prune(net, cfg, seed)
    else:  # the baselines take LNP's size, which stabilisation does not change
        rates = dense_task.rates if dense_task is not None else None
        size = network_size(lnp_select(net, cfg, seed)[0])
        pruned, info = baseline_prune(net, method, size, rates, cfg, seed)
    _next_stage(stages, "pruned task")
    pruned_task = evaluate(pruned, task, seed=seed, **task_options) if task else None
    _next_stage(stages, "exponents for the record")
    dense, after = summary(net, lam_dense, dense_task), summary(pruned, info["lambda_after"], pruned_task)
    unseen = cfg["probes"]  # the first probe seed that lambda_max was not measured on
    for part, network in ((dense, net), (after, pruned)):  # for the record: an unseen probe input, no input, memory
        part["lambda_max_new_probe_per_second"] = largest_lyapunov(network, seed=unseen, **cfg["lyapunov"]) / network.dt
        part["autonomous"] = autonomous_record(network, cfg["lyapunov"])
        part["memory_capacity"] = memory_capacity(network, seed=seed).as_dict()
        part["eigenvector_localisation"] = localisation(recurrent_of(network))["n_ipr"]
    _next_stage(stages, "done")
    stages.close()
    report = {"method": method, "seed": seed, "config": cfg, "dense": dense, "pruned": after,
              "neuron_fraction": after["neurons"] / dense["neurons"],
              "synapse_fraction": after["recurrent_synapses"] / max(dense["recurrent_synapses"], 1),
              "total_synapse_fraction": after["synapses_total"] / max(dense["synapses_total"], 1),
              "stabilisation": info}
    if task:
        report["relative_change"] = pruned_task.relative_change(dense_task)
        report["sops_fraction"] = after["sops_per_second"] / max(dense["sops_per_second"], 1e-12)
    report["seconds"] = time.perf_counter() - start
    return pruned, report
