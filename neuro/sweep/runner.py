"""The Ray side of a sweep: the Ray session and one Ray Tune run of the units.

Grid, random search and seeds: Tune runs one trial per unfinished unit (the units are known up front).
Bayesian optimisation: Tune with one Optuna TPE searcher per study proposes parameter sets; each Tune trial
runs the set at every seed and reports the mean of the objective. Units finished by an earlier run are
skipped, and for Bayesian optimisation handed to their study's searcher as already evaluated points (resume).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from neuro.sweep.plan import label, make_unit
from neuro.sweep.progress import Progress, plain, say
from neuro.sweep.spec import Spec
from neuro.sweep.trial import read_metrics, read_result, run_unit

try:
    from ray.tune.search import Searcher
except ImportError:  # ray missing: the command says so before it gets here
    Searcher = object


def init_kwargs(workers: int | None = None, address: str | None = None) -> dict:
    """Arguments of ``ray.init``: a local instance with ``workers`` CPUs, or join ``address``.

    Ray's workers get this checkout first on their path, so they import the same ``neuro`` as the driver.
    """
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
             "runtime_env": {"env_vars": {"PYTHONPATH": trial_env(1)["PYTHONPATH"]}}}
    return {"address": address, **quiet} if address else {"address": "local", "num_cpus": workers, **quiet}


@contextlib.contextmanager
def ray_session(cpus: int, address: str | None):
    """Start (or join) Ray for the sweep and stop it after; an already running session is used as is."""
    import ray

    if ray.is_initialized():
        yield
        return
    if address and address != "auto":
        _check_reachable(address)
    try:
        ray.init(**init_kwargs(cpus, address))
    except ConnectionError as exc:
        hint = "" if os.environ.get("RAY_AUTH_MODE") else (" (a cluster with token authentication needs "
                                                           "RAY_AUTH_MODE=token and its token: docs/sweep.md)")
        raise ValueError(f"cannot join the Ray cluster at {address!r}: {exc}{hint}") from None
    try:
        yield
    finally:
        ray.shutdown()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast (Ray itself retries for minutes) when nothing listens at ``HOST:PORT``."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--address must be HOST:PORT or auto, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ValueError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None


def trial_env(cpus_per_trial: int) -> dict:
    """Environment of every trial's command: this checkout first on the path, ``cpus_per_trial`` threads."""
    import neuro

    root = str(Path(neuro.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    threads = str(cpus_per_trial)
    return {"PYTHONPATH": path, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads, "NUMBA_NUM_THREADS": threads}


def _unit_trial(config, units, trials, cwd, env):
    record = run_unit(units[config["unit"]], trials, cwd, env)
    return {"ok": record["status"] == "ok", "error": record.get("error", "")}


def _bayes_trial(config, spec, trials, cwd, env):
    params = {k: plain(config[k]) for k in spec.space}
    records = []
    for seed in spec.seeds:
        records.append(run_unit(make_unit(spec, params, seed, config["study"]), trials, cwd, env))
        if records[-1]["status"] != "ok":
            return {"ok": False, "error": records[-1]["error"], "objective": float("nan")}
    return {"ok": True, "error": "", "objective": objective_of(spec, Path(trials), records)}


def run_units(spec: Spec, units: list[dict], trials: Path, workers: int | None, address: str | None = None
              ) -> list[dict]:
    """Run the unfinished ``units`` with Tune; the failures, ``[{"trial", "error"}]``."""
    from ray import tune

    pending = {u["name"]: u for u in units if read_result(trials / u["name"]) is None}
    say(f"sweep: {len(units)} trial(s), {len(units) - len(pending)} already finished")
    if not pending:
        return []
    return _fit(spec, (_unit_trial, {"units": pending}), {"unit": tune.grid_search(list(pending))}, trials,
                (workers, address), Progress(len(pending)), num_samples=1)


def run_bayes(spec: Spec, trials: Path, workers: int | None, address: str | None = None) -> list[dict]:
    """Bayesian optimisation of ``spec.objective`` over ``spec.space``: every Bayesian study of
    :meth:`Spec.studies` (budget ``spec.samples`` each) in one Tune run (:class:`StudySearcher`)."""
    import optuna
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    domains = {"uniform": tune.uniform, "loguniform": tune.loguniform, "randint": tune.randint}
    space = OptunaSearch.convert_search_space(
        {k: tune.choice(a) if d == "choice" else domains[d](*a) for k, (d, a) in spec.space.items()})
    mode = spec.objective["mode"]
    studies, done = {}, 0
    for study, kind, seed in spec.studies():
        if kind != "bayes":
            continue
        prior = finished_sets(spec, trials, study)
        done += len(prior)
        searcher = OptunaSearch(space, metric="objective", mode=mode,
                                sampler=optuna.samplers.TPESampler(seed=seed + len(prior)),
                                points_to_evaluate=[u[0]["params"] for u in prior.values()] or None,
                                evaluated_rewards=[objective_of(spec, trials, u) for u in prior.values()] or None)
        studies[study] = (searcher, spec.samples - len(prior))
    remaining = sum(budget for _, budget in studies.values())
    say(f"sweep: Bayesian optimisation, {len(studies)} stud(ies) x {spec.samples} parameter set(s) x "
        f"{len(spec.seeds)} seed(s), {done} set(s) already finished")
    if remaining <= 0:
        return []
    return _fit(spec, (_bayes_trial, {"spec": spec}), {}, trials, (workers, address), Progress(remaining),
                num_samples=remaining, search_alg=StudySearcher(studies, "objective", mode))


class StudySearcher(Searcher):
    """Several Optuna studies in one Tune run. Each study has one set running at a time, so its sequence
    of proposals (seeded TPE) is the same whatever the number of workers; the studies run side by side.

    ``studies``: ``name -> (OptunaSearch, budget)``. Proposals carry ``study``: the study's name."""

    def __init__(self, studies: dict, metric: str, mode: str):
        super().__init__(metric=metric, mode=mode)
        self.searchers = {name: searcher for name, (searcher, _) in studies.items()}
        self.left = {name: budget for name, (_, budget) in studies.items()}
        self.running: dict[str, str] = {}  # Tune trial id -> study

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # each study has its space, metric and mode

    def suggest(self, trial_id: str):
        busy = set(self.running.values())
        for name, left in self.left.items():
            if left > 0 and name not in busy:
                self.left[name] -= 1
                self.running[trial_id] = name
                return {**self.searchers[name].suggest(trial_id), "study": name}
        return Searcher.FINISHED if not any(self.left.values()) else None  # None: wait for a study to finish

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        self.searchers[self.running.pop(trial_id)].on_trial_complete(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: a resumed sweep rebuilds the studies from the trial folders (:func:`run_bayes`)."""


def finished_sets(spec: Spec, trials: Path, study: str) -> dict[str, list[dict]]:
    """Bayesian optimisation: the parameter sets of ``study`` finished at every seed, ``label -> unit
    records``, in the order they finished (the last of their seeds)."""
    found: dict[str, dict] = {}
    folder = trials / study
    for path in sorted(folder.glob("*/result.json")) if folder.is_dir() else []:
        record = read_result(path.parent)
        params = record.get("params", {})
        if (record.get("status") != "ok" or set(params) != set(spec.space) or record["seed"] not in spec.seeds
                or make_unit(spec, params, record["seed"])["key"] != record["key"]):
            continue
        found.setdefault(label(params), {})[record["seed"]] = record
    complete = [[by_seed[s] for s in spec.seeds] for by_seed in found.values() if len(by_seed) == len(spec.seeds)]
    complete.sort(key=lambda records: max(r.get("finished", 0.0) for r in records))
    return {label(records[0]["params"]): records for records in complete}


def objective_of(spec: Spec, trials: Path, records: list[dict]) -> float:
    """Mean of the objective metric over the finished units ``records`` (one parameter set)."""
    values = [read_metrics(trials / r["name"], spec.result, spec.metrics)[0][spec.objective["metric"]]
              for r in records]
    return sum(values) / len(values)


def _fit(spec, function, space, trials, where, progress, **tune_kwargs) -> list[dict]:
    """One Tune run of ``function = (trial function, its extra arguments)`` in a Ray session
    (``where = (workers, address)``); the failures."""
    import shutil

    from ray import tune

    workers, address = where
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # no experiment banner: the progress lines are ours

    storage = (trials.parent / ".tune").resolve()
    shutil.rmtree(storage, ignore_errors=True)  # Tune's own bookkeeping; the trial folders are the record
    with ray_session((workers or 1) * spec.cpus_per_trial, address):  # before Tune, which would start one
        trainable = tune.with_parameters(function[0], **function[1], trials=str(trials), cwd=os.getcwd(),
                                         env=trial_env(spec.cpus_per_trial))
        tune.Tuner(
            tune.with_resources(trainable, {"cpu": spec.cpus_per_trial}), param_space=space,
            tune_config=tune.TuneConfig(max_concurrent_trials=workers, reuse_actors=True, **tune_kwargs),
            run_config=tune.RunConfig(storage_path=str(storage), name="sweep", verbose=0, callbacks=[progress],
                                      failure_config=tune.FailureConfig(max_failures=spec.retries))).fit()
    return progress.failures
