"""A heterogeneous E/I recurrent network for export checks, and the documented large verification run.

``python -m deployment.examples --neurons 500 --steps 1000 [--builtin]`` builds the network (80% E with hard
reset and two membrane time constants, 20% I with soft reset, a refractory period and a slower
inhibitory channel; recurrent E->E, E->I, I->E, I->I with delays 1-3; spike inputs and a Poisson
source), runs :func:`deployment.verify.verify_network` and prints the match table.
"""

from __future__ import annotations

import argparse

import numpy as np

from neuro.fixed_point import FixedNeurons, FixedPointNetwork
from neuro.network import Network, Population, Projection
from synapses import bernoulli


def hetero_ei_network(n: int = 50, seed: int = 0, n_in: int = 10, builtin: bool = False) -> Network:
    """``n`` LIF neurons (80% E, 20% I) with excitatory and inhibitory recurrent synapses and input spikes.

    ``builtin=True`` gives I what Lava's built-in LIF holds (hard reset, no refractory period, one synaptic
    time constant, two membrane time constants), so the whole network exports without the custom process.
    """
    rng = np.random.default_rng(seed)
    n_e = max(1, int(round(0.8 * n)))
    n_i = max(1, n - n_e)
    k = 10 / max(n, 10)  # about 10 recurrent inputs per neuron and type
    pops = (Population("in", n_in, "spike_source"), Population("noise", 5, "poisson", {"rate": 50.0}),
            Population("E", n_e, params=dict(tau_mem=rng.choice([10e-3, 25e-3], n_e), tau_syn=5e-3,
                                              tau_syn_inh=5e-3, v_th=rng.uniform(0.9, 1.1, n_e), v_rest=-0.05),
                       initial={"v": rng.uniform(-0.05, 0.8, n_e)}),
            Population("I", n_i, reset="hard", params=dict(tau_mem=rng.choice([5e-3, 12e-3], n_i), tau_syn=3e-3,
                                                           tau_syn_inh=3e-3)) if builtin else
            Population("I", n_i, reset="soft", params=dict(tau_mem=rng.uniform(5e-3, 15e-3, n_i), tau_syn=3e-3,
                                                           tau_syn_inh=8e-3, t_ref=2e-3),
                       initial={"v": rng.uniform(0.0, 0.8, n_i), "i_inh": rng.uniform(-0.2, 0.0, n_i)}))

    def uniform(lo, hi):
        return lambda r, size: r.uniform(lo, hi, size)

    def delay(r, size):
        return r.integers(1, 4, size)

    s = seed
    projs = (Projection("in_E", "in", "E", bernoulli(n_in, n_e, 0.3, weight=uniform(0.3, 0.6), seed=s + 1)),
             Projection("noise_I", "noise", "I", bernoulli(5, n_i, 0.5, weight=0.4, seed=s + 2)),
             Projection("EE", "E", "E", bernoulli(n_e, n_e, min(1.0, k), weight=uniform(0.0, 0.25), delay=delay,
                                                  seed=s + 3)),
             Projection("EI", "E", "I", bernoulli(n_e, n_i, min(1.0, 2 * k), weight=uniform(0.1, 0.4), seed=s + 4)),
             Projection("IE", "I", "E", bernoulli(n_i, n_e, min(1.0, 3 * k), weight=uniform(-0.6, -0.2),
                                                  delay=delay, seed=s + 5), receptor="inh"),
             Projection("II", "I", "I", bernoulli(n_i, n_i, min(1.0, 3 * k), weight=uniform(-0.3, -0.1),
                                                  seed=s + 6), receptor="inh"))
    return Network(pops, projs)


def single_neuron_fixed(bias_mant: int, bias_exp: int, vth: int, dv: int = 0, reset: str = "hard",
                        n_ref: int = 0) -> FixedPointNetwork:
    """One fixed-point neuron driven only by its bias (``du = 0``, no synapses): for pinned spike times."""
    one = lambda x: np.array([x], np.int64)  # noqa: E731
    neurons = FixedNeurons(du=one(0), dv=one(dv), vth=one(vth), bias_mant=one(bias_mant), bias_exp=one(bias_exp),
                           v0=one(0), u0=one(0), du_inh=one(0), u_inh0=one(0), n_ref=one(n_ref), reset=reset)
    return FixedPointNetwork(Network((Population("n", 1),)), {"n": neurons}, {})


def main(argv=None) -> int:
    from deployment.verify import verify_network

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=500)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=20.0, help="input spike rate (Hz)")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--builtin", action="store_true", help="only what Lava's built-in LIF holds")
    args = parser.parse_args(argv)
    net = hetero_ei_network(args.neurons, args.seed, builtin=args.builtin)
    x = np.random.default_rng(args.seed + 100).random((args.steps, 10)) < args.rate * net.dt
    report = verify_network(net, args.steps, {"in": x}, seed=args.seed, timeout=args.timeout, progress=True)
    print(report.quantization.table())
    print(report.table())
    return 0 if report.all_match else 1


if __name__ == "__main__":
    raise SystemExit(main())
