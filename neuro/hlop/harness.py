"""The continual-learning harness: one task sequence, one seeded initial model, every method trained alike.

For each seed and each sequential method (``hlop``, ``finetune``, ``ewc``) the
harness builds the same initial :class:`~neuro.hlop.model.SpikingMLP`,
measures its accuracy ``b`` on every task, trains the tasks in order (SGD,
``epochs`` passes per task) and after each task ``i`` fills row ``i`` of the
accuracy matrix ``A`` by testing on all tasks. Biases and other 1-D
parameters train on task 0 only (:func:`neuro.hlop.projection.continual_parameters`),
for every method, as in the paper's code. ``multitask`` trains one model on
the union of all tasks for the same number of epochs: its single row is the
upper bound. Metrics are in :mod:`neuro.hlop.metrics`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from tqdm import tqdm

from neuro.checks import check_like
from neuro.hlop.methods import Strategy, make_strategy
from neuro.hlop.metrics import continual_metrics
from neuro.hlop.model import TRAINING_MODES, SpikingMLP
from neuro.hlop.network import to_network
from neuro.hlop.projection import continual_parameters
from neuro.hlop.tasks import KINDS, LABELS, Task, build_tasks, check_tasks, n_outputs, restrict_logits
from neuro.io import ConfigError, merge_config
from neuro.network import check_units

METHODS = ("hlop", "finetune", "ewc", "multitask")
#: ``task``: logits restricted to the task's classes (task-incremental); ``shared``: all outputs compete
#: (class-incremental when the tasks have their own labels).
HEADS = ("task", "shared")

DEFAULTS = {
    "tasks": {"kind": "permuted_digits", "n_tasks": 5, "test_fraction": 0.3, "labels": "shared", "heads": "task"},
    "event": {"root": "runs/continual/event-digits", "n_train": 1000, "n_test": 500, "spatial_factor": 0.25,
              "clip": 4.0, "split": False},
    "model": {"hidden": [256, 256], "steps": 8, "dt": 1e-3, "tau_mem": 5e-3, "v_th": 0.3, "reset": "soft"},
    "train": {"training": "bptt", "epochs": 3, "batch_size": 64, "lr": 0.05, "momentum": 0.9},
    "hlop": {"lateral_first": [16, 60, 60], "lateral_increment": [12, 30, 30], "lr": [0.1, 0.05, 0.05],
             "iterations": 5, "momentum": 0.9, "clip": 10.0, "spiking": False, "spike_scale": 20.0,
             "spike_steps": 40.0},
    "ewc": {"strength": 1000.0, "fisher_samples": 200},
    "methods": list(METHODS),
    "seeds": [0, 1, 2],
}


def resolve_config(user: dict | None = None) -> dict:
    """``DEFAULTS`` updated by ``user`` (two levels); unknown keys and bad values raise ConfigError."""
    config = merge_config(user, DEFAULTS, "continual config")
    check_like(config, DEFAULTS, "continual config")
    _validate(config)
    check_units({k: config["model"][k] for k in ("tau_mem", "dt")}, "continual config: model.")
    return config


def _validate(config: dict) -> None:
    unknown = sorted(set(config["methods"]) - set(METHODS))
    if unknown or not config["methods"]:
        raise ConfigError(f"continual config: methods must be a non-empty subset of {METHODS}, got {config['methods']}")
    kind = config["tasks"]["kind"]
    if kind not in KINDS and ":" not in kind:
        raise ConfigError(f"continual config: tasks.kind must be one of {KINDS} or 'package.module:function' "
                          f"(a function returning a list of neuro.hlop.tasks.Task), got {kind!r}")
    if config["tasks"]["labels"] not in LABELS:
        raise ConfigError(f"continual config: tasks.labels must be one of {LABELS}")
    if config["tasks"]["heads"] not in HEADS:
        raise ConfigError(f"continual config: tasks.heads must be one of {HEADS}")
    if config["train"]["training"] not in TRAINING_MODES:
        raise ConfigError(f"continual config: train.training must be one of {TRAINING_MODES}")
    layers = len(config["model"]["hidden"]) + 1
    for key in ("lateral_first", "lateral_increment", "lr"):
        if len(config["hlop"][key]) != layers:
            raise ConfigError(f"continual config: hlop.{key} needs one value per synaptic layer ({layers})")
    if not config["seeds"] or any(not isinstance(s, int) for s in config["seeds"]):
        raise ConfigError("continual config: seeds must be a non-empty list of integers")
    for key in ("epochs", "batch_size"):
        if int(config["train"][key]) < 1:
            raise ConfigError(f"continual config: train.{key} must be >= 1")


def build_model(config: dict, n_inputs: int, seed: int, outputs: int = 10) -> SpikingMLP:
    """The seeded initial model with ``outputs`` classes: same ``seed`` gives the same weights for every method."""
    m, h = config["model"], config["hlop"]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return SpikingMLP([n_inputs, *m["hidden"], outputs], steps=m["steps"], dt=m["dt"], tau_mem=m["tau_mem"],
                          v_th=m["v_th"], reset=m["reset"], lateral_lr=h["lr"], iterations=h["iterations"],
                          momentum=h["momentum"], clip=h["clip"], spiking=h["spiking"],
                          spike_scale=h["spike_scale"], spike_steps=h["spike_steps"])


@torch.no_grad()
def accuracy(model: SpikingMLP, task: Task, batch_size: int = 512) -> float:
    """Test accuracy on ``task`` (logits restricted to its classes)."""
    mask = task.output_mask(model.sizes[-1])
    correct = 0
    for start in range(0, len(task.y_test), batch_size):
        z = model(task.x_test[start:start + batch_size]).mean(0)
        correct += int((restrict_logits(z, mask).argmax(1) == task.y_test[start:start + batch_size]).sum())
    return correct / len(task.y_test)


def train_epochs(model: SpikingMLP, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, params, config: dict,
                 rng: np.random.Generator, strategy: Strategy, task_index: int, bar: tqdm | None = None) -> None:
    """SGD over ``(x, y)`` for ``train.epochs`` epochs; ``mask[N, C]`` restricts each sample's logits."""
    t = config["train"]
    optimizer = torch.optim.SGD(params, lr=t["lr"], momentum=t["momentum"])
    project = strategy.projects(task_index)
    for _ in range(int(t["epochs"])):
        order = torch.as_tensor(rng.permutation(len(y)))
        for start in range(0, len(y), int(t["batch_size"])):
            idx = order[start:start + int(t["batch_size"])]
            z = model(x[idx], t["training"], project=project, hebbian=strategy.hebbian)
            loss = model.loss(restrict_logits(z, mask[idx]), y[idx], t["training"])
            penalty = strategy.penalty(model)
            if penalty is not None:
                loss = loss + penalty
            if not torch.isfinite(loss):
                raise ValueError(f"{strategy.name}: the loss became non-finite on task {task_index}; lower "
                                 "train.lr (or ewc.strength)")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if bar is not None:
            bar.update()


def _masks(task: Task, n_outputs: int) -> torch.Tensor:
    return task.output_mask(n_outputs).expand(len(task.y_train), n_outputs)


def run_sequential(method: str, tasks: list[Task], config: dict, seed: int, bar: tqdm | None = None,
                   keep_model: bool = False) -> dict:
    """Train ``tasks`` in order with ``method``; returns the accuracy matrix, ``b`` and the method's diagnostics
    (and the trained ``model`` with ``keep_model``)."""
    strategy = make_strategy(method, config)
    model = build_model(config, tasks[0].x_train.shape[-1], seed, n_outputs(tasks))
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    initial = [accuracy(model, task) for task in tasks]
    matrix = np.zeros((len(tasks), len(tasks)))
    for i, task in enumerate(tasks):
        strategy.before_task(model, i, generator)
        params = continual_parameters(model, i)
        train_epochs(model, task.x_train, task.y_train, _masks(task, model.sizes[-1]), params, config, rng,
                     strategy, i, bar)
        strategy.after_task(model, task, config["train"]["training"], rng)
        matrix[i] = [accuracy(model, other) for other in tasks]
    return {"matrix": matrix, "initial": np.array(initial), **continual_metrics(matrix, initial),
            "diagnostics": strategy.diagnostics(), **({"model": model} if keep_model else {})}


def run_multitask(tasks: list[Task], config: dict, seed: int, bar: tqdm | None = None) -> dict:
    """One model trained on the union of all tasks: the upper bound (one row of accuracies)."""
    model = build_model(config, tasks[0].x_train.shape[-1], seed, n_outputs(tasks))
    x = torch.cat([t.x_train for t in tasks])
    y = torch.cat([t.y_train for t in tasks])
    mask = torch.cat([_masks(t, model.sizes[-1]) for t in tasks])
    train_epochs(model, x, y, mask, list(model.parameters()), config, np.random.default_rng(seed), Strategy(), 0,
                 bar)
    row = np.array([accuracy(model, task) for task in tasks])
    return {"accuracies": row, "ACC": float(row.mean())}


def run_experiment(config: dict, progress: bool = True, networks: dict | None = None, tasks=None) -> dict:
    """Every method on every seed; per-seed results and mean/std of ACC, BWT, FWT per method.

    ``tasks`` (optional) replaces the config's sequence: a list of :class:`Task`, or a
    function ``seed -> list of Task`` (any classes: the output layer has ``max class + 1``
    neurons, at least 10). A ``networks`` dict receives each sequential run's final model as
    a :class:`neuro.Network` (``"<method>_seed<k>"``, :func:`neuro.hlop.network.to_network`).
    """
    config = resolve_config(config)
    results: dict[str, list[dict]] = {m: [] for m in config["methods"]}
    t = config["tasks"]

    def sequence(seed):
        if tasks is None:
            made = build_tasks(t["kind"], int(t["n_tasks"]), seed, t["test_fraction"],
                               steps=config["model"]["steps"], event=config["event"], labels=t["labels"])
        else:
            made = check_tasks(tasks(seed) if callable(tasks) else tasks, "run_experiment tasks")
        if t["heads"] == "shared":
            every = tuple(range(n_outputs(made)))
            made = [dataclasses.replace(task, classes=every) for task in made]
        return made

    first = sequence(config["seeds"][0])
    n_tasks, epochs = len(first), int(config["train"]["epochs"])
    total = len(config["seeds"]) * epochs * n_tasks * len(config["methods"])
    with tqdm(total=total, desc="continual", unit="epoch", disable=not progress) as bar:
        for k, seed in enumerate(config["seeds"]):
            tasks_now = first if k == 0 else sequence(seed)
            for method in config["methods"]:
                bar.set_postfix(seed=seed, method=method)
                if method == "multitask":
                    results[method].append(run_multitask(tasks_now, config, seed, bar))
                    bar.update(epochs * (n_tasks - 1))
                else:
                    result = run_sequential(method, tasks_now, config, seed, bar, keep_model=networks is not None)
                    if networks is not None:
                        networks[f"{method}_seed{seed}"] = to_network(result.pop("model"))
                    results[method].append(result)
    summary = {m: _summarise(runs) for m, runs in results.items()}
    return {"config": config, "tasks": [task.name for task in tasks_now], "summary": summary, "runs": results}


def _summarise(runs: list[dict]) -> dict:
    out = {}
    for key in ("ACC", "BWT", "FWT"):
        if key in runs[0]:
            values = np.array([r[key] for r in runs])
            out[key] = {"mean": float(values.mean()), "std": float(values.std()), "values": values.tolist()}
    return out
