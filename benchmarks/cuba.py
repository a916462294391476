"""CUBA benchmark (Brette et al. 2007, Brian2's examples/CUBA.py) on neuro's event simulator.

4000 LIF neurons (3200 E / 800 I), Bernoulli p = 0.02, tau_m 20 ms, E_L -49 mV,
V_th -50 mV, V_reset -60 mV, 5 ms refractory, exponential currents tau_e 5 ms /
tau_i 10 ms with jumps w_e 1.62 mV / w_i -9 mV, v(0) ~ U(V_reset, V_th),
dt 0.1 ms, exact integration (weights scaled by neurons.lif.exact_current_gain,
delay 1 step = Brian's zero-delay synapses acting on the next step).

    python benchmarks/cuba.py                 # 1 s and 10 s, seeds 1..3
    python benchmarks/cuba.py --brian2        # also Brian2 cpp_standalone on the same network
    python benchmarks/cuba.py --scale         # 100,000 neurons x 100 synapses, 1 s

Prints build time, time to first result (incl. JIT), run time, spikes, mean
rate, synaptic events per second, peak memory and bytes per synapse.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import synapses as S
from neuro import Network, Population, Projection, Simulator
from neurons import lif

DT = 1e-4
TAU_M, TAU_E, TAU_I = 20e-3, 5e-3, 10e-3
E_L, V_TH, V_RESET = -49.0, -50.0, -60.0
W_E, W_I = 1.62, -9.0
# Brian2 counts refractoriness as "elapsed steps >= 50", i.e. 49 silent steps after the spike.
T_REF = 4.9e-3


def cuba_network(n: int = 4000, p: float = 0.02, seed: int = 1, fan_out: int | None = None) -> Network:
    """The benchmark network; ``fan_out`` switches to a fixed in-degree (scaling runs)."""
    rng = np.random.default_rng(seed)
    n_e = n * 4 // 5
    params = {"tau_mem": TAU_M, "tau_syn": TAU_E, "tau_syn_inh": TAU_I, "v_th": V_TH, "v_reset": V_RESET,
              "v_rest": E_L, "t_ref": T_REF}
    pop = Population("cuba", n, params=params, initial={"v": rng.uniform(V_RESET, V_TH, n)})
    g_e, g_i = lif.exact_current_gain(TAU_E, TAU_M, DT), lif.exact_current_gain(TAU_I, TAU_M, DT)
    projs = []
    for name, lo, hi, w, receptor in (("exc", 0, n_e, W_E * g_e, "exc"), ("inh", n_e, n, W_I * g_i, "inh")):
        if fan_out is None:
            part = S.bernoulli(hi - lo, n, p, weight=w, delay=1, seed=rng)
        else:
            part = S.fixed_indegree(hi - lo, n, fan_out * (hi - lo) // n, weight=w, delay=1, seed=rng)
        full = S.from_coo(part.pre_indices() + lo, part.indices, part.weights, part.delays, n, n)
        projs.append(Projection(name, "cuba", "cuba", full, receptor=receptor))
    return Network([pop], projs, dt=DT)


def bytes_per_synapse(sim: Simulator, n_syn: int) -> float:
    arrays = [a for csr in sim.csr.values() for a in csr]
    return sum(a.nbytes for a in arrays) / max(n_syn, 1)


def run_neuro(n, seconds, seed, fan_out=None):
    t0 = time.perf_counter()
    net = cuba_network(n, seed=seed, fan_out=fan_out)
    t_build = time.perf_counter() - t0
    sim = Simulator(net)
    steps = int(round(seconds / DT))
    t1 = time.perf_counter()
    res = sim.run(steps, record=True)
    t_run = time.perf_counter() - t1
    n_spk = len(res.times[0])
    fanout = np.concatenate([np.diff(c[0]) for c in sim.csr.values()]).reshape(2, -1).sum(0)
    events = int(fanout[res.neurons[0]].sum())
    return {"neurons": n, "synapses": net.n_synapses, "seconds": seconds, "seed": seed, "build_s": t_build,
            "run_s": t_run, "spikes": n_spk, "rate_hz": n_spk / n / seconds, "syn_events_per_s": events / t_run,
            "bytes_per_synapse": bytes_per_synapse(sim, net.n_synapses),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def time_to_first_result() -> float:
    """Wall time of a fresh process that imports neuro, builds the network and simulates 1 s."""
    code = "import sys; sys.path.insert(0, 'benchmarks'); import cuba; cuba.run_neuro(4000, 1.0, 1)"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)
    return time.perf_counter() - t0


def run_brian2(seconds, seed, threads=1):
    """Brian2 cpp_standalone on examples/CUBA.py (its own random connectivity, same statistics)."""
    import brian2 as b2

    b2.set_device("cpp_standalone", directory=f"/tmp/brian2_cuba_{os.getpid()}", build_on_run=False)
    b2.prefs.devices.cpp_standalone.openmp_threads = threads
    b2.defaultclock.dt = DT * b2.second
    b2.seed(seed)
    ms, mV = b2.ms, b2.mV
    eqs = """dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
             dge/dt = -ge/taue : volt
             dgi/dt = -gi/taui : volt"""
    ns = {"taum": 20 * ms, "taue": 5 * ms, "taui": 10 * ms, "Vt": -50 * mV, "Vr": -60 * mV, "El": -49 * mV}
    P = b2.NeuronGroup(4000, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms, method="exact", namespace=ns)
    P.v = "Vr + rand() * (Vt - Vr)"
    Ce = b2.Synapses(P, P, on_pre="ge += 1.62*mV")
    Ci = b2.Synapses(P, P, on_pre="gi += -9*mV")
    Ce.connect("i<3200", p=0.02)
    Ci.connect("i>=3200", p=0.02)
    mon = b2.SpikeMonitor(P)
    b2.run(seconds * b2.second)
    t0 = time.perf_counter()
    b2.device.build(run=True, compile=True, clean=True)
    total = time.perf_counter() - t0
    run_s = float(b2.device._last_run_time)
    n_spk = int(mon.num_spikes)
    b2.device.reinit()
    b2.device.activate(directory=None)
    return {"brian2_build_and_run_s": total, "run_s": run_s, "spikes": n_spk, "rate_hz": n_spk / 4000 / seconds}


def _row(label, r):
    keys = ("build_s", "run_s", "spikes", "rate_hz", "syn_events_per_s", "bytes_per_synapse", "peak_rss_mb")
    cells = [f"{k}={r[k]:.4g}" if isinstance(r.get(k), float) else f"{k}={r.get(k)}" for k in keys if k in r]
    print(f"{label:<28}", "  ".join(cells), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--seconds", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--brian2", action="store_true", help="also run Brian2 cpp_standalone (pip install brian2)")
    ap.add_argument("--threads", type=int, default=1, help="Brian2 OpenMP threads")
    ap.add_argument("--scale", action="store_true", help="100,000 neurons x 100 synapses, 1 s")
    args = ap.parse_args()
    print(f"time to first result (fresh interpreter: import + build + JIT/cache load + 1 s run): "
          f"{time_to_first_result():.2f} s", flush=True)
    if args.scale:
        _row("neuro 100k x 100, 1 s", run_neuro(100_000, 1.0, 1, fan_out=100))
        return
    for seconds in args.seconds:
        rows = [run_neuro(4000, seconds, s) for s in args.seeds]
        for r in rows:
            _row(f"neuro {seconds:g} s seed {r['seed']}", r)
        rates = np.array([r["rate_hz"] for r in rows])
        spread = rates.std(ddof=1) if len(rates) > 1 else 0.0
        print(f"neuro {seconds:g} s: mean rate {rates.mean():.3f} +- {spread:.3f} Hz, "
              f"median run {np.median([r['run_s'] for r in rows]):.3f} s", flush=True)
        if args.brian2:
            b = [run_brian2(seconds, s, args.threads) for s in args.seeds]
            for s, r in zip(args.seeds, b):
                print(f"brian2 {seconds:g} s seed {s} threads {args.threads}: run_s={r['run_s']:.4g} "
                      f"spikes={r['spikes']} rate_hz={r['rate_hz']:.4g} "
                      f"(build+run {r['brian2_build_and_run_s']:.1f} s)", flush=True)
            ratio = np.median([r["run_s"] for r in b]) / np.median([r["run_s"] for r in rows])
            print(f"speed-up neuro vs brian2 cpp_standalone ({args.threads} thread(s)): {ratio:.2f}x", flush=True)

if __name__ == "__main__":
    main()
