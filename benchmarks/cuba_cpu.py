"""CPU time of the homogeneous and the heterogeneous CUBA network (benchmarks/cuba.py), one thread.

    python benchmarks/cuba_cpu.py --seed 1 --seconds 10 --repeats 7

``time.process_time`` of each run (on a shared machine wall time mostly measures who got the
core), the two networks' runs alternated ``--repeats`` times in one process; prints the minimum
and the median of each, their ratio (minimum over minimum), the spike counts and the load average.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from cuba import DT, cuba_network, load

from neuro import Simulator


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    steps = int(round(args.seconds / DT))
    sims = {name: Simulator(cuba_network(4000, seed=args.seed, hetero=hetero), threads=1)
            for name, hetero in (("homogeneous", False), ("heterogeneous", True))}
    spikes = {name: len(sim.run(steps).times[0]) for name, sim in sims.items()}  # also loads the kernels
    cpu = {name: [] for name in sims}
    for _ in range(args.repeats):
        for name, sim in sims.items():
            t0 = time.process_time()
            sim.run(steps)
            cpu[name].append(time.process_time() - t0)
    for name in sims:
        print(f"{name:14s} CPU min {min(cpu[name]):.4f} s, median {np.median(cpu[name]):.4f} s, "
              f"{spikes[name]:,} spikes [{load()}]")
    print(f"SUMMARY heterogeneous / homogeneous CPU time: {min(cpu['heterogeneous']) / min(cpu['homogeneous']):.2f}x "
          f"(seed {args.seed}, {args.seconds:g} s, min of {args.repeats}) [{load()}]")


if __name__ == "__main__":
    main()
