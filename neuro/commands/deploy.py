"""``neuro deploy RUN_DIR``: a `neuro train` run on Lava, with accuracy and spike match per layer.

Quantizes the trained model for Loihi, runs the test set (or ``--samples N`` of it, drawn
at random by ``--seed``: test sets are often stored class by class) through
neuro's fixed-point engine and through Lava ``fixed_pt`` (:mod:`deployment.deploy`), prints
the table and writes it as JSON (``RUN_DIR/deploy.json`` unless ``--json``) and a picture of
sample 0 on both engines (``RUN_DIR/deploy.png`` unless ``--plot``). Exit status 1
when any spike differs. ``neuro export RUN_DIR/network.npz --to lava`` writes the Lava graph.
"""

from __future__ import annotations

import sys
from pathlib import Path

from neuro.commands.arguments import non_negative_int, positive_float, positive_int

HELP = "a trained model on Lava: test-set accuracy float / neuro fixed point / Lava, spike match"


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", help="output folder of `neuro train` (holds model.pt)")
    parser.add_argument("--samples", type=positive_int, help="N test samples drawn at random by --seed (default: all)")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the --samples draw (default: %(default)s)")
    parser.add_argument("--chunk", type=positive_int, default=100, help="samples per Lava run (default: %(default)s)")
    parser.add_argument("--timeout", type=positive_float, default=900.0, help="seconds allowed per Lava run")
    parser.add_argument("--headroom", type=positive_int, default=16, help="threshold mantissa <= 2^17 / headroom")
    parser.add_argument("--hetero", choices=("auto", "split", "custom"), default="auto")
    parser.add_argument("--max-groups", type=positive_int, default=8)
    parser.add_argument("--no-lava", action="store_true",
                        help="neuro's fixed-point engine only (fast; a full run shows it equals Lava)")
    parser.add_argument("--plot", help="PNG of sample 0 on both engines (default: RUN_DIR/deploy.png)")
    parser.add_argument("--json", help="where to write the JSON report (default: RUN_DIR/deploy.json)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args) -> int:
    from deployment.deploy import deploy_run, plot_example
    from deployment.lava_export import LavaError

    try:
        report = deploy_run(args.run_dir, args.samples, args.seed, headroom=args.headroom, hetero=args.hetero,
                            max_groups=args.max_groups, chunk=args.chunk, timeout=args.timeout,
                            progress=not args.no_progress, lava=not args.no_lava)
    except LavaError as exc:
        print(f"neuro deploy: error: {exc}", file=sys.stderr)
        return 1
    print(report.quantization.table())
    print()
    print(report.table())
    out = Path(args.json or Path(args.run_dir) / "deploy.json")
    report.write_json(out)
    print(f"wrote {out}")
    if report.compared:
        print(f"wrote {plot_example(report, args.plot or Path(args.run_dir) / 'deploy.png')}")
    return 0 if report.all_match or not report.compared else 1
