"""Where CUBA's time goes: ns per neuron-step with and without synapses, synaptic events per step.

    python benchmarks/cuba_profile.py              # 10 s of CUBA (100,000 steps), medians of 5 runs

Runs the CUBA network (and its heterogeneous variant) in full and with its projections removed
(the neurons only: their update, reset and recording); prints the median wall time, ns per
neuron-step, spikes and the load average. Run it in two checkouts to compare engines.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # measure this checkout
import cuba  # noqa: E402

from neuro import Network, Simulator  # noqa: E402


def median_run(sim: Simulator, steps: int, repeats: int) -> tuple[float, int]:
    """Median wall time of ``repeats`` runs (after one untimed run) and the spike count."""
    sim.run(100)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = sim.run(steps)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), len(res.times[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    steps = int(round(args.seconds / cuba.DT))
    for hetero in (False, True):
        net = cuba.cuba_network(4000, seed=1, hetero=hetero)
        for label, sim in (("full", Simulator(net)), ("neurons only", Simulator(Network(net.populations, [],
                                                                                        dt=net.dt)))):
            t, spikes = median_run(sim, steps, args.repeats)
            print(f"{'heterogeneous' if hetero else 'homogeneous':<14} {label:<13} {t:.3f} s  "
                  f"{t / steps / 4000 * 1e9:.2f} ns per neuron-step  {spikes} spikes  "
                  f"[load {os.getloadavg()[0]:.1f}]", flush=True)


if __name__ == "__main__":
    main()
