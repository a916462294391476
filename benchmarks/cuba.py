"""CUBA benchmark (Brette et al. 2007, Brian2's examples/CUBA.py) on neuro's event simulator.

4000 LIF neurons (3200 E / 800 I), Bernoulli p = 0.02, tau_m 20 ms, E_L -49 mV,
V_th -50 mV, V_reset -60 mV, 5 ms refractory, exponential currents tau_e 5 ms /
tau_i 10 ms with jumps w_e 1.62 mV / w_i -9 mV, v(0) ~ U(V_reset, V_th),
dt 0.1 ms, exact integration (weights scaled by neurons.lif.exact_current_gain,
delay 1 step = Brian's zero-delay synapses acting on the next step).

    python benchmarks/cuba.py                 # 1 s and 10 s, seeds 1..3
    python benchmarks/cuba.py --brian2        # also Brian2 cpp_standalone on the same network
    python benchmarks/cuba.py --brian2 --threads 2   # Brian2 with openmp_threads = 2
    python benchmarks/cuba.py --hetero        # also per-neuron gamma tau_mem (CV 0.5), delays 1..20
    python benchmarks/cuba.py --scale         # 100,000 neurons x 100 synapses, 1 s

One thread means Brian2's ordinary standalone build (``openmp_threads = 0``); ``--threads N``
(N > 1) means ``openmp_threads = N``. Both sides record every spike. Brian2's code
generation and compile time is printed beside its run time; the load average beside each row.

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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # measure this checkout, not an installed copy
import synapses as S  # noqa: E402
from neuro import Network, Population, Projection, Simulator  # noqa: E402
from neurons import lif  # noqa: E402

DT = 1e-4
TAU_M, TAU_E, TAU_I = 20e-3, 5e-3, 10e-3
E_L, V_TH, V_RESET = -49.0, -50.0, -60.0
W_E, W_I = 1.62, -9.0
# Brian2 counts refractoriness as "elapsed steps >= 50", i.e. 49 silent steps after the spike.
T_REF = 4.9e-3


def cuba_network(n: int = 4000, p: float = 0.02, seed: int = 1, fan_out: int | None = None,
                 hetero: bool = False) -> Network:
    """The benchmark network; ``fan_out`` switches to a fixed in-degree (scaling runs).

    ``hetero``: per-neuron ``tau_mem ~ Gamma(k=4, TAU_M/4)`` (CV 0.5, at least 1 ms) and per-synapse
    delays uniform in 1..20 steps; each weight scaled by the exact gain of its target's ``tau_mem``.
    """
    rng = np.random.default_rng(seed)
    n_e = n * 4 // 5
    tau_m = np.maximum(rng.gamma(4.0, TAU_M / 4, n), 1e-3) if hetero else np.full(n, TAU_M)
    delay = (lambda r, k: r.integers(1, 21, k)) if hetero else 1
    params = {"tau_mem": tau_m, "tau_syn": TAU_E, "tau_syn_inh": TAU_I, "v_th": V_TH, "v_reset": V_RESET,
              "v_rest": E_L, "t_ref": T_REF}
    pop = Population("cuba", n, params=params, initial={"v": rng.uniform(V_RESET, V_TH, n)})
    g_e, g_i = lif.exact_current_gain(TAU_E, tau_m, DT), lif.exact_current_gain(TAU_I, tau_m, DT)
    projs = []
    for name, lo, hi, w, receptor in (("exc", 0, n_e, W_E * g_e, "exc"), ("inh", n_e, n, W_I * g_i, "inh")):
        if fan_out is None:
            part = S.bernoulli(hi - lo, n, p, weight=1.0, delay=delay, seed=rng)
        else:
            part = S.fixed_indegree(hi - lo, n, fan_out * (hi - lo) // n, weight=1.0, delay=delay, seed=rng)
        post = part.indices.astype(np.int64)
        full = S.from_coo(part.pre_indices() + lo, post, w[post], part.delays, n, n)
        projs.append(Projection(name, "cuba", "cuba", full, receptor=receptor))
    return Network([pop], projs, dt=DT)


def bytes_per_synapse(sim: Simulator, n_syn: int) -> float:
    arrays = [a for csr in sim.csr.values() for a in csr]
    return sum(a.nbytes for a in arrays) / max(n_syn, 1)


def run_neuro(n, seconds, seed, fan_out=None, hetero=False, repeats=1):
    """Build once, run ``repeats`` times (spikes recorded); ``run_s`` is the median run time."""
    t0 = time.perf_counter()
    net = cuba_network(n, seed=seed, fan_out=fan_out, hetero=hetero)
    t_build = time.perf_counter() - t0
    sim = Simulator(net)
    steps = int(round(seconds / DT))
    times = []
    for _ in range(repeats):
        t1 = time.perf_counter()
        res = sim.run(steps, record=True)
        times.append(time.perf_counter() - t1)
    t_run = float(np.median(times))
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


def run_brian2(seconds, seed, threads=1, repeats=1):
    """Brian2 cpp_standalone on examples/CUBA.py (its own random connectivity, same statistics).

    ``threads == 1`` is Brian2's ordinary single-threaded build (``openmp_threads = 0``; a value of
    1 would compile the OpenMP code path, about 1.6x slower); ``threads > 1`` sets ``openmp_threads``.
    Returns the simulated network's run time (Brian2's own timer), the time of ``make`` and of code
    generation (the rest of ``device.build``), spikes and rate.
    """
    import brian2 as b2

    b2.set_device("cpp_standalone", directory=f"/tmp/brian2_cuba_{os.getpid()}", build_on_run=False)
    b2.prefs.devices.cpp_standalone.openmp_threads = 0 if threads == 1 else threads
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
    runs = [float(b2.device._last_run_time)]
    for _ in range(repeats - 1):  # rerun the compiled binary: same network, same seed
        b2.device.run(b2.device.project_dir, None, with_output=False)
        runs.append(float(b2.device._last_run_time))
    run_s = float(np.median(runs))
    timers = b2.device.timers
    make_s = (timers["compile"]["make"] or 0.0) + (timers["compile"]["clean"] or 0.0)
    codegen_s = total - make_s - (timers["run_binary"] or 0.0)
    n_spk = int(mon.num_spikes)
    b2.device.reinit()
    b2.device.activate(directory=None)
    return {"brian2_build_and_run_s": total, "codegen_s": codegen_s, "make_s": make_s, "run_s": run_s,
            "spikes": n_spk, "rate_hz": n_spk / 4000 / seconds}


def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def _row(label, r):
    keys = ("build_s", "run_s", "spikes", "rate_hz", "syn_events_per_s", "bytes_per_synapse", "peak_rss_mb")
    cells = [f"{k}={r[k]:.4g}" if isinstance(r.get(k), float) else f"{k}={r.get(k)}" for k in keys if k in r]
    print(f"{label:<34}", "  ".join(cells), f"[{load()}]", flush=True)


def compare(seconds, seeds, args):
    """neuro (homogeneous, then heterogeneous if asked) and Brian2 back to back per seed; median ratios."""
    rows = {"neuro": [], "neuro hetero": [], "brian2": []}
    for seed in seeds:
        rows["neuro"].append(run_neuro(4000, seconds, seed, repeats=args.repeats))
        _row(f"neuro {seconds:g} s seed {seed}", rows["neuro"][-1])
        if args.hetero:
            rows["neuro hetero"].append(run_neuro(4000, seconds, seed, hetero=True, repeats=args.repeats))
            _row(f"neuro hetero {seconds:g} s seed {seed}", rows["neuro hetero"][-1])
        if args.brian2:
            b = run_brian2(seconds, seed, args.threads, args.repeats)
            rows["brian2"].append(b)
            print(f"{'brian2 ' + f'{seconds:g} s seed {seed} threads {args.threads}':<34} run_s={b['run_s']:.4g}  "
                  f"spikes={b['spikes']}  rate_hz={b['rate_hz']:.4g}  codegen_s={b['codegen_s']:.1f}  "
                  f"compile_s={b['make_s']:.1f} [{load()}]", flush=True)
    median = {k: float(np.median([r["run_s"] for r in v])) for k, v in rows.items() if v}
    for k, v in rows.items():
        if v:
            rates = np.array([r["rate_hz"] for r in v])
            print(f"{k} {seconds:g} s: median run {median[k]:.4f} s, rate {rates.mean():.3f} +- "
                  f"{rates.std(ddof=1) if len(rates) > 1 else 0.0:.3f} Hz", flush=True)
    if "brian2" in median:
        print(f"speed-up neuro vs brian2 cpp_standalone ({args.threads} thread(s)): "
              f"{median['brian2'] / median['neuro']:.2f}x  [{load()}]", flush=True)
    if "neuro hetero" in median:
        print(f"heterogeneous / homogeneous run time: {median['neuro hetero'] / median['neuro']:.2f}x", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--seconds", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--brian2", action="store_true", help="also run Brian2 cpp_standalone (pip install brian2)")
    ap.add_argument("--threads", type=int, default=1, help="Brian2 threads (1: ordinary build, N: OpenMP N)")
    ap.add_argument("--hetero", action="store_true", help="also the heterogeneous variant (gamma tau, delays 1-20)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per network; the median is reported")
    ap.add_argument("--scale", action="store_true", help="100,000 neurons x 100 synapses, 1 s")
    ap.add_argument("--no-first", action="store_true", help="skip the time-to-first-result measurement")
    args = ap.parse_args()
    if not args.no_first:
        print(f"time to first result (fresh interpreter: import + build + JIT/cache load + 1 s run): "
              f"{time_to_first_result():.2f} s [{load()}]", flush=True)
    if args.scale:
        _row("neuro 100k x 100, 1 s", run_neuro(100_000, 1.0, 1, fan_out=100, repeats=args.repeats))
        return
    for seconds in args.seconds:
        compare(seconds, args.seeds, args)


if __name__ == "__main__":
    main()
