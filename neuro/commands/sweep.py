"""``neuro sweep SPEC``: run a command over seeds, a grid, random search or Bayesian optimisation on Ray.

Writes into ``--out``: ``trials/<name>/`` per trial (config, outputs, ``result.json``), ``aggregate.json``,
``.csv``, ``.md`` and ``.png`` (tables of :mod:`neuro.sweep.aggregate`), and ``sweep.json`` (wall time,
workers, failures). Running it again skips the finished trials. Format and examples: docs/sweep.md.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

from neuro.commands.arguments import positive_int
from neuro.io import output_folder, write_json

HELP = "run a command over seeds, a grid, random search or Bayesian optimisation on Ray"


def add_arguments(parser) -> None:
    parser.add_argument("spec", help="sweep SPEC, a YAML file (format: docs/sweep.md)")
    parser.add_argument("--address", help="join the Ray cluster at this address (from `ray start --head`; "
                                          "'auto': the one started on this machine); default: a local Ray")
    parser.add_argument("--workers", type=positive_int, help="trials at once (default: this machine's cores divided by "
                                                    "cpus_per_trial; with --address, as the cluster allows)")
    parser.add_argument("--out", help="output folder (default runs/sweep-<SPEC name>)")
    parser.add_argument("--plan", action="store_true", help="list the trials and which are finished; run nothing")


def run(args) -> int:
    from neuro.sweep.spec import load_spec

    spec = load_spec(args.spec)
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    missing = [m for m in ("ray", "optuna") if importlib.util.find_spec(m) is None]
    if missing:
        raise ValueError(f"{' and '.join(missing)} not installed: pip install -e '.[sweep]' (docs/sweep.md)")
    from neuro.sweep.aggregate import aggregate, collect
    from neuro.sweep.plan import plan_units
    from neuro.sweep.report import write_all
    from neuro.sweep.runner import run_bayes, run_units

    out = output_folder(args.out or f"runs/sweep-{Path(args.spec).stem}")
    trials = (out / "trials").resolve()
    if args.plan:
        return show_plan(spec, trials)
    workers = args.workers or (None if args.address else max(1, (os.cpu_count() or 1) // spec.cpus_per_trial))
    t0 = time.perf_counter()
    units = plan_units(spec)  # a grid, seeds, or random-search studies (those of `versus` included)
    failures = run_units(spec, units, trials, workers, args.address) if units else []
    if spec.search == "bayes":
        failures += run_bayes(spec, trials, workers, args.address)
    wall = time.perf_counter() - t0
    records, unfinished = collect(spec, trials)
    named = {f["trial"] for f in failures}
    failed = failures + [{"trial": n, "error": "no result"} for n in unfinished if n not in named]
    table = aggregate(spec, records, failed)
    written = write_all(table, out)
    write_json(out / "sweep.json", {"spec": str(args.spec), "address": args.address, "workers": workers,
                                    "wall_s": round(wall, 2), "records": len(records), "failed": failed})
    print(f"neuro sweep: {len(records)} record(s), {len(failed)} failed trial(s), {wall:.1f} s; wrote "
          + ", ".join(p.name for p in written) + f" in {out}")
    return 1 if failed else 0


def show_plan(spec, trials: Path) -> int:
    """Print one line per planned trial (name, seed, parameters, finished or not); per Bayesian study its
    budget and the sets finished."""
    from neuro.sweep.plan import label, plan_units
    from neuro.sweep.runner import finished_sets
    from neuro.sweep.trial import read_result

    for study, kind, seed in spec.studies():
        if kind == "bayes":
            print(f"{study}: Bayesian optimisation (search seed {seed}), {spec.samples} parameter set(s) x "
                  f"{len(spec.seeds)} seed(s); {len(finished_sets(spec, trials, study))} set(s) finished")
    units = plan_units(spec)
    for unit in units:
        done = read_result(trials / unit["name"]) is not None
        print(f"{unit['name']}  seed {unit['seed']:<4d} {label(unit['params'])}  {'finished' if done else 'to run'}")
    print(f"{len(units)} trial(s) of neuro {spec.command}")
    return 0
