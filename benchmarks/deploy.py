"""Lava deployment benchmark: export time and Lava time per sample of trained models.

For each ``neuro train`` output folder: quantization, graph build (export), neuro's fixed-point
engine and Lava ``fixed_pt`` on ``--samples`` test samples (drawn with seed 0), for each ``--chunks`` size
(samples per Lava run: the start-up of Lava's processes is paid once per run). Every run also
checks that neuro and Lava agree spike for spike; a mismatch is printed.

    neuro train --out runs/digits && python benchmarks/deploy.py runs/digits
    python benchmarks/deploy.py runs/digits runs/conv runs/recurrent --samples 200 --chunks 10 100
"""

from __future__ import annotations

import argparse
import os

from deployment.deploy import deploy_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="neuro train output folders")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--chunks", type=int, nargs="+", default=[10, 100])
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    head = (f"{'run':<28} {'chunk':>5} {'samples':>7} {'quantize s':>10} {'export s':>9} {'neuro fixed s':>13} "
            f"{'Lava s':>8} {'Lava ms/sample':>14}  match")
    print(head)
    print("-" * len(head))
    for run in args.runs:
        for chunk in args.chunks:
            r = deploy_run(run, args.samples, chunk=chunk, progress=False)
            s = r.seconds
            print(f"{run:<28} {chunk:>5} {r.samples:>7} {s['quantize']:>10.3f} {s['export (graph build)']:>9.3f} "
                  f"{s['neuro fixed point']:>13.3f} {s['Lava']:>8.1f} {1e3 * s['Lava per sample']:>14.1f}  "
                  f"{'yes' if r.all_match else 'NO'}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
