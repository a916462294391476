"""LNP benchmark: wall time of the Lyapunov estimate and of LNP pruning against network size.

For each size ``n`` (HRSNN defaults, out-degree ``k = n / 10``): one driven QR estimate of the
largest exponent (LNP's horizon: 2000 steps, 10 Hz probe), a 20-exponent spectrum, and
``lnp_prune`` with the defaults (sparsify, neuron scores, ``rest``, stabilisation with 3 probes).
No task evaluation. Prints seconds and the peak resident memory of the process.

    python benchmarks/lnp.py                  # n = 200, 400, 800
    python benchmarks/lnp.py --sizes 400 1600
"""

from __future__ import annotations

import argparse
import resource
import time

from neuro.builders import build_hrsnn
from neuro.lnp import LNP_DEFAULTS, lnp_prune
from neuro.lnp.graph import recurrent_of
from neuro.lnp.lyapunov import largest_lyapunov, lyapunov_spectrum


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 400, 800])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    lyap = LNP_DEFAULTS["lyapunov"]
    print(f"{'n':>6} {'λ_max (s)':>10} {'20 exps (s)':>12} {'lnp_prune (s)':>14} {'kept n/syn':>12} "
          f"{'peak RSS (MB)':>14}")
    for n in args.sizes:
        net = build_hrsnn(n=n, k=max(2, 2 * (n // 20)), seed=args.seed)
        _, t_one = timed(largest_lyapunov, net, **lyap)
        _, t_spec = timed(lyapunov_spectrum, net, k=20, **lyap)
        (pruned, _), t_prune = timed(lnp_prune, net, seed=args.seed)
        rec = recurrent_of(pruned)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{n:>6} {t_one:>10.2f} {t_spec:>12.2f} {t_prune:>14.1f} {f'{rec.n}/{rec.n_synapses}':>12} {rss:>14.0f}",
              flush=True)


if __name__ == "__main__":
    main()
