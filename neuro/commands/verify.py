"""``neuro verify NETWORK.npz``: run the network in Lava and in neuro, print the per-population match table.

Exit status 0 when every spike matches, 1 on any mismatch or a Lava failure or timeout.
"""

from __future__ import annotations

import sys

from neuro.commands.arguments import non_negative_float, non_negative_int, positive_float, positive_int

HELP = "run a network in Lava and in neuro's simulator and compare spikes"


def add_arguments(parser) -> None:
    parser.add_argument("network", help="network file (.npz written by Network.save)")
    parser.add_argument("--steps", type=positive_int, default=200, help="time steps to run")
    parser.add_argument("--rate", type=non_negative_float, default=50.0,
                        help="rate (Hz) of the seeded random spikes given to spike_source populations")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the input spikes")
    parser.add_argument("--modes", default="fixed,float", help="comma-separated: fixed, float")
    parser.add_argument("--timeout", type=positive_float, default=600.0, help="seconds allowed per Lava run")
    parser.add_argument("--hetero", choices=("auto", "split", "custom"), default="auto")
    parser.add_argument("--max-groups", type=positive_int, default=8)
    parser.add_argument("--headroom", type=positive_int, default=16)
    parser.add_argument("--plot", help="write a PNG raster of neuro vs Lava spikes to this path")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def random_inputs(network, steps: int, rate: float, seed: int) -> dict:
    """Bernoulli spikes with probability ``rate * dt`` for every ``spike_source`` population."""
    import numpy as np

    if rate < 0:
        raise ValueError(f"--rate must be >= 0, got {rate}")
    rng = np.random.default_rng(seed)
    p = min(rate * network.dt, 1.0)
    return {pop.name: rng.random((steps, pop.size)) < p for pop in network.populations
            if pop.model == "spike_source"}


def run(args) -> int:
    from deployment.lava_export import LavaError
    from deployment.verify import plot_report, verify_network
    from neuro.network import Network

    net = Network.load(args.network)
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    inputs = random_inputs(net, args.steps, args.rate, args.seed)
    try:
        report = verify_network(net, args.steps, inputs, args.seed, args.timeout, modes, args.hetero,
                                args.max_groups, args.headroom, progress=not args.no_progress)
    except LavaError as exc:
        print(f"neuro verify: error: {exc}", file=sys.stderr)
        return 1
    if report.quantization is not None:
        print(report.quantization.table())
        print()
    print(report.table())
    if args.plot:
        print(f"wrote {plot_report(report, args.plot)}")
    return 0 if report.all_match else 1
