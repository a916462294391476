"""``neuro continual [CONFIG]``: HLOP and the baselines on a task sequence (harness in :mod:`neuro.hlop.harness`).

Writes to ``--out`` (default ``runs/continual``): ``report.json`` (config,
per-seed accuracy matrices, ACC/BWT/FWT per run and their mean/std),
``matrices.npz`` (``<method>_seed<k>`` arrays) and ``accuracy_matrices.png``;
with ``--save-networks`` also ``networks/<method>_seed<k>.npz``, each run's final
model as a :class:`neuro.Network` for the event simulator and Lava.
"""

from __future__ import annotations

import numpy as np

from neuro.commands.arguments import non_negative_int, positive_int
from neuro.io import atomic_path, load_config, output_folder, save_figure, write_json

HELP = "continual learning with Hebbian orthogonal projection (HLOP)"


def add_arguments(parser) -> None:
    parser.add_argument("config", nargs="?", help="YAML/TOML config (omitted: the built-in defaults, "
                                                  "5-task permuted digits, 3 seeds); see docs/hlop.md")
    parser.add_argument("--out", default="runs/continual", help="output folder (default runs/continual)")
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", help="override the config's seeds")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch CPU threads (default 1: the models are tiny, more threads only contend)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--save-networks", action="store_true",
                        help="also write each sequential run's final model as OUT/networks/<method>_seed<k>.npz "
                             "(a neuro.Network: `neuro verify` runs it on Lava)")


def run(args) -> int:
    import torch

    from neuro.hlop.harness import resolve_config, run_experiment
    from neuro.hlop.plots import plot_matrices

    torch.set_num_threads(args.threads)
    user = {} if args.config is None else load_config(args.config)
    if args.seeds:
        user = {**user, "seeds": list(args.seeds)}
    config = resolve_config(user)
    out = output_folder(args.out)
    networks = {} if args.save_networks else None
    report = run_experiment(config, progress=not args.no_progress, networks=networks)
    for name, net in (networks or {}).items():
        path = net.save(output_folder(out / "networks") / f"{name}.npz")
        print(f"neuro continual: wrote {path}")
    arrays = {f"{method}_seed{seed}": np.atleast_2d(r.get("matrix", r.get("accuracies")))
              for method, runs in report["runs"].items() for seed, r in zip(report["config"]["seeds"], runs)}
    with atomic_path(out / "matrices.npz") as tmp:
        np.savez(tmp, **arrays)
    write_json(out / "report.json", report)
    save_figure(plot_matrices(report), out / "accuracy_matrices.png")
    print(f"neuro continual: wrote {out / 'report.json'}, {out / 'matrices.npz'}, {out / 'accuracy_matrices.png'}")
    for method, s in report["summary"].items():
        line = "  ".join(f"{k} {100 * v['mean']:6.2f} +- {100 * v['std']:.2f}" for k, v in s.items())
        print(f"  {method:9s} {line}")
    return 0
