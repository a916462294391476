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
    python benchmarks/cuba.py --split         # 1,000,000 x 100, 1 s: neuro at 1 and --threads (2) threads
    python benchmarks/cuba.py --split --brian2    # ... and Brian2 at --threads threads beside it

One thread means Brian2's ordinary standalone build (``openmp_threads = 0``); ``--threads N``
(N > 1) means ``openmp_threads = N``. neuro runs on one thread (``Simulator(threads=1)``), and with
``--split`` also on ``--threads`` threads (the network split into as many neuron ranges); Brian2 is
then compared with neuro at the same number of threads. Both sides record every spike. Brian2's code
generation and compile time is printed beside its run time; the load average beside each row.

Prints build time, time to first result (incl. JIT), run time, spikes, mean
rate, synaptic events per second, peak memory and bytes per synapse.
"""

from __future__ import annotations

import argparse
import importlib.util
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


def rss_mb() -> float:
    """Resident memory of this process now (MB)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class NeuroRun:
    """The CUBA network compiled into a :class:`Simulator` on ``threads`` threads; :meth:`run` times one run.

    ``net``: the network, else built here (``build_s`` then counts it too).
    """

    def __init__(self, n, seconds, seed, fan_out=None, hetero=False, threads=1, net=None):
        t0 = time.perf_counter()
        self.net = net or cuba_network(n, seed=seed, fan_out=fan_out, hetero=hetero)
        self.sim = Simulator(self.net, threads=threads)
        self.build_s = time.perf_counter() - t0
        self.n, self.seconds, self.seed, self.threads = n, seconds, seed, threads
        self.steps = int(round(seconds / DT))
        self.times, self.res = [], None

    def run(self) -> float:
        t1 = time.perf_counter()
        self.res = self.sim.run(self.steps, record=True)
        self.times.append(time.perf_counter() - t1)
        return self.times[-1]

    def summary(self) -> dict:
        """Median run time of the runs so far, spikes, rate, events per second, memory."""
        t_run = float(np.median(self.times))
        n_spk = len(self.res.times[0])
        fanout = sum(np.diff(c[0][::self.sim.bounds.size - 1]) for c in self.sim.csr.values())
        events = int(fanout[self.res.neurons[0]].sum())
        return {"neurons": self.n, "synapses": self.net.n_synapses, "seconds": self.seconds, "seed": self.seed,
                "build_s": self.build_s, "run_s": t_run, "spikes": n_spk, "rate_hz": n_spk / self.n / self.seconds,
                "syn_events_per_s": events / t_run,
                "bytes_per_synapse": bytes_per_synapse(self.sim, self.net.n_synapses), "rss_mb": rss_mb(),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_neuro(n, seconds, seed, fan_out=None, hetero=False, repeats=1):
    """Build once, run ``repeats`` times (spikes recorded); ``run_s`` is the median run time."""
    runner = NeuroRun(n, seconds, seed, fan_out, hetero)
    for _ in range(repeats):
        runner.run()
    return runner.summary()


def time_to_first_result() -> float:
    """Wall time of a fresh process that imports neuro, builds the network and simulates 1 s."""
    code = "import sys; sys.path.insert(0, 'benchmarks'); import cuba; cuba.run_neuro(4000, 1.0, 1)"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)
    return time.perf_counter() - t0


class Brian2Run:
    """Brian2 cpp_standalone on examples/CUBA.py (its own random connectivity, same statistics).

    ``threads == 1`` is Brian2's ordinary single-threaded build (``openmp_threads = 0``; a value of
    1 would compile the OpenMP code path, about 1.6x slower); ``threads > 1`` sets ``openmp_threads``.
    Building times code generation (``run`` and writing the project) and ``make`` apart and runs
    the binary once; :meth:`run` reruns it (same network and seed) and returns Brian2's own timer
    of the simulated network. Call :meth:`close` before building another.
    """

    def __init__(self, seconds, seed, threads=1, n=4000, p=0.02):
        import brian2 as b2

        self.b2, self.seconds, self.n = b2, seconds, n
        t0 = time.perf_counter()
        b2.set_device("cpp_standalone", directory=f"/tmp/brian2_cuba_{os.getpid()}", build_on_run=False)
        b2.prefs.devices.cpp_standalone.openmp_threads = 0 if threads == 1 else threads
        b2.defaultclock.dt = DT * b2.second
        b2.seed(seed)
        ms, mV = b2.ms, b2.mV
        eqs = """dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
                 dge/dt = -ge/taue : volt
                 dgi/dt = -gi/taui : volt"""
        ns = {"taum": 20 * ms, "taue": 5 * ms, "taui": 10 * ms, "Vt": -50 * mV, "Vr": -60 * mV, "El": -49 * mV}
        P = b2.NeuronGroup(n, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms, method="exact",
                           namespace=ns)
        P.v = "Vr + rand() * (Vt - Vr)"
        Ce = b2.Synapses(P, P, on_pre="ge += 1.62*mV")
        Ci = b2.Synapses(P, P, on_pre="gi += -9*mV")
        Ce.connect(f"i<{n * 4 // 5}", p=p)
        Ci.connect(f"i>={n * 4 // 5}", p=p)
        mon = b2.SpikeMonitor(P)
        b2.run(seconds * b2.second)  # Brian2's run() collects the objects among this frame's locals
        self.mon = mon
        b2.device.build(run=True, compile=True, clean=True)
        total = time.perf_counter() - t0
        timers = b2.device.timers
        self.make_s = (timers["compile"]["make"] or 0.0) + (timers["compile"]["clean"] or 0.0)
        self.codegen_s = total - self.make_s - (timers["run_binary"] or 0.0)
        self.times = [float(b2.device._last_run_time)]
        self.spikes = int(self.mon.num_spikes)  # read before the binary is rerun

    def run(self) -> float:
        self.b2.device.run(self.b2.device.project_dir, None, with_output=False)
        self.times.append(float(self.b2.device._last_run_time))
        return self.times[-1]

    def summary(self) -> dict:
        return {"codegen_s": self.codegen_s, "make_s": self.make_s, "run_s": float(np.median(self.times)),
                "spikes": self.spikes, "rate_hz": self.spikes / self.n / self.seconds}

    def close(self):
        self.b2.device.reinit()
        self.b2.device.activate(directory=None)


def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def _row(label, r):
    keys = ("build_s", "run_s", "spikes", "rate_hz", "syn_events_per_s", "bytes_per_synapse", "rss_mb",
            "peak_rss_mb")
    cells = [f"{k}={r[k]:.4g}" if isinstance(r.get(k), float) else f"{k}={r.get(k)}" for k in keys if k in r]
    print(f"{label:<34}", "  ".join(cells), f"[{load()}]", flush=True)


def _ratios(ratios) -> str:
    return (f"{np.median(ratios):.2f}x (median over seeds of paired medians; per seed "
            f"{' '.join(f'{x:.2f}' for x in ratios)})")


def compare(seconds, seeds, args, n=4000, fan_in=None, split=False):
    """Per seed: build neuro (one thread; its heterogeneous variant; with ``split`` also on
    ``args.threads`` threads) and Brian2, then alternate their runs ``repeats`` times, so that all
    see the same machine load; medians per seed, then over seeds.

    ``fan_in``: neuro draws a fixed in-degree, Brian2 Bernoulli ``p = fan_in / n`` (same mean).
    Brian2 is compared with neuro at its own number of threads.
    """
    variants = {"neuro": {}}
    if args.hetero:
        variants["neuro hetero"] = {"hetero": True}
    if split:
        variants[f"neuro {args.threads} threads"] = {"threads": args.threads}
    peer = f"neuro {args.threads} threads" if split else "neuro"
    rows = {name: [] for name in [*variants, "brian2"]}
    for seed in seeds:
        t0 = time.perf_counter()
        nets = {hetero: cuba_network(n, seed=seed, fan_out=fan_in, hetero=hetero)
                for hetero in {kw.get("hetero", False) for kw in variants.values()}}
        print(f"networks of seed {seed} built in {time.perf_counter() - t0:.1f} s [{load()}]", flush=True)
        runners = {name: NeuroRun(n, seconds, seed, fan_in, net=nets[kw.get("hetero", False)], **kw)
                   for name, kw in variants.items()}
        del nets
        if args.brian2:
            runners["brian2"] = Brian2Run(seconds, seed, args.threads, n, fan_in / n if fan_in else 0.02)
        for name in variants:  # first runs load the cached kernels: not timed
            runners[name].run()
            runners[name].times.clear()
        for _ in range(args.repeats):
            for runner in runners.values():
                runner.run()
        for name, runner in runners.items():
            rows[name].append(runner.summary())
        for name in variants:
            _row(f"{name} {seconds:g} s seed {seed}", rows[name][-1])
        if split:
            one, many = rows["neuro"][-1]["run_s"], rows[peer][-1]["run_s"]
            print(f"{'neuro ' + f'{args.threads} threads / 1 thread':<34} {one / many:.2f}x (spikes identical: "
                  f"{np.array_equal(runners['neuro'].res.neurons[0], runners[peer].res.neurons[0])}) "
                  f"[{load()}]", flush=True)
        if args.brian2:
            b = rows["brian2"][-1]
            runners["brian2"].close()
            print(f"{'brian2 ' + f'{seconds:g} s seed {seed} threads {args.threads}':<34} run_s={b['run_s']:.4g}  "
                  f"spikes={b['spikes']}  rate_hz={b['rate_hz']:.4g}  codegen_s={b['codegen_s']:.1f}  "
                  f"compile_s={b['make_s']:.1f}  ratio={b['run_s'] / rows[peer][-1]['run_s']:.2f}x "
                  f"[{load()}]", flush=True)
        del runners
    median = {k: float(np.median([r["run_s"] for r in v])) for k, v in rows.items() if v}
    for k, v in rows.items():
        if v:
            rates = np.array([r["rate_hz"] for r in v])
            print(f"{k} {seconds:g} s: median run {median[k]:.4f} s, rate {rates.mean():.3f} +- "
                  f"{rates.std(ddof=1) if len(rates) > 1 else 0.0:.3f} Hz", flush=True)
    if split:
        ratios = [a["run_s"] / b["run_s"] for a, b in zip(rows["neuro"], rows[peer])]
        print(f"SUMMARY neuro {args.threads} threads over 1 thread, {n:,} neurons x {fan_in} synapses, "
              f"{seconds:g} s: {_ratios(ratios)} (target >= 1.6x); "
              f"{rows[peer][-1]['bytes_per_synapse']:.2f} bytes per synapse; peak RSS "
              f"{max(r['peak_rss_mb'] for r in rows[peer]):.0f} MB [{load()}]", flush=True)
    if "brian2" in median:
        ratios = [b["run_s"] / r["run_s"] for b, r in zip(rows["brian2"], rows[peer])]
        print(f"SUMMARY speed-up {peer} vs brian2 cpp_standalone ({args.threads} thread(s)): {_ratios(ratios)} "
              f"[{load()}]", flush=True)
    if "neuro hetero" in median:
        print(f"SUMMARY heterogeneous / homogeneous run time: {median['neuro hetero'] / median['neuro']:.2f}x",
              flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--seconds", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--brian2", action="store_true", help="also run Brian2 cpp_standalone (pip install brian2)")
    ap.add_argument("--threads", type=int, help="Brian2 threads (1: ordinary build, N: OpenMP N) and, with "
                    "--split, neuro's (default 1, with --split 2)")
    ap.add_argument("--hetero", action="store_true", help="also the heterogeneous variant (gamma tau, delays 1-20)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per network; the median is reported")
    ap.add_argument("--scale", action="store_true", help="100,000 neurons x 100 synapses, 1 s (with --seeds)")
    ap.add_argument("--split", action="store_true",
                    help="1,000,000 neurons x 100 synapses, 1 s, neuro at 1 and --threads threads (with --seeds)")
    ap.add_argument("--neurons", type=int, help="network size of --scale (default 100,000) and --split (1,000,000)")
    ap.add_argument("--no-first", action="store_true", help="skip the time-to-first-result measurement")
    args = ap.parse_args()
    args.threads = args.threads or (2 if args.split else 1)
    if args.brian2 and importlib.util.find_spec("brian2") is None:
        print("brian2 is not installed (pip install brian2, the [bench] extra): only neuro's side runs", flush=True)
        args.brian2 = False
    if not args.no_first:
        print(f"time to first result (fresh interpreter: import + build + JIT/cache load + 1 s run): "
              f"{time_to_first_result():.2f} s [{load()}]", flush=True)
    if args.scale:  # 100,000 neurons (--neurons) x 100 synapses, 1 s
        compare(1.0, args.seeds, args, n=args.neurons or 100_000, fan_in=100)
        return
    if args.split:
        compare(1.0, args.seeds, args, n=args.neurons or 1_000_000, fan_in=100, split=True)
        return
    for seconds in args.seconds:
        compare(seconds, args.seeds, args)


if __name__ == "__main__":
    main()
