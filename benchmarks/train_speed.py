"""Training speed of neuro.training layers against snntorch, spikingjelly and norse.

Two benchmarks. The default is training throughput (samples/s) of a small classifier:

All networks: input -> Linear -> LIF (soft reset, beta = exp(-dt/tau_mem)) -> Linear -> non-spiking
leaky readout, logits = mean membrane over time, cross-entropy, Adam; same sizes, timesteps, batch,
input spikes. neuro.training evaluates layer by layer (one large matrix product per synapse);
snntorch is timed in its usual step-by-step loop and, for a like-for-like neuron cost, layer by layer
too. They are timed alternately in the same process (best of ``--repeats`` rounds).

    .venv/bin/python benchmarks/train_speed.py [--inputs 2312 --hidden 256 --steps 20 --batch 64 --device cpu]

``--layer`` runs the Open Neuromorphic library benchmark instead (one ``Linear(n, n)`` feeding ``n``
LIF neurons, input ``randn[T=500, B=16, n]``, the time of one forward and of one backward pass of
``output.sum()``), each library written the way its own benchmark code and tutorials do it, at
1 and 2 threads, plus the bytes each keeps for the backward pass:

    make bench-deps   # spikingjelly 2.0 and norse 1.1 into .bench/ (without their CUDA dependencies)
    PYTHONPATH=.bench .venv/bin/python benchmarks/train_speed.py --layer [--sizes 128 512 2048 --threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
from torch import nn

from neuro.training.layers import Dense, Readout, Recurrent
from neuro.training.model import SpikingNet

DT, TAU_MEM = 1e-3, 20e-3


class SnntorchNet(nn.Module):
    """The same network with ``snntorch.Leaky`` neurons (subtractive reset, readout without reset).

    ``layer_major=False``: snntorch's usual loop, every layer at every step.
    ``layer_major=True``: each ``nn.Linear`` applied to the whole sequence at once,
    as neuro.training does; isolates the cost of the neuron update itself.
    """

    def __init__(self, n_in, n_hidden, n_out, layer_major=False):
        super().__init__()
        self.layer_major = layer_major
        import snntorch as snn

        beta = math.exp(-DT / TAU_MEM)
        self.fc1, self.fc2 = nn.Linear(n_in, n_hidden), nn.Linear(n_hidden, n_out)
        self.lif1 = snn.Leaky(beta=beta, reset_mechanism="subtract")
        self.out = snn.Leaky(beta=beta, reset_mechanism="none", threshold=1e9)

    def forward(self, x_seq):
        mem1, mem2 = self.lif1.reset_mem(), self.out.reset_mem()
        if self.layer_major:
            spikes = []
            for current in self.fc1(x_seq):
                spk1, mem1 = self.lif1(current, mem1)
                spikes.append(spk1)
            total = 0.0
            for current in self.fc2(torch.stack(spikes)):
                _, mem2 = self.out(current, mem2)
                total = total + mem2
            return total / len(x_seq)
        total = 0.0
        for x in x_seq:
            spk1, mem1 = self.lif1(self.fc1(x), mem1)
            _, mem2 = self.out(self.fc2(spk1), mem2)
            total = total + mem2
        return total / len(x_seq)


def ours(n_in, n_hidden, n_out):
    kw = {"dt": DT, "tau_mem": TAU_MEM}
    return SpikingNet([Dense(n_in, n_hidden, reset="soft", **kw), Readout(n_hidden, n_out, **kw)])


def throughput(model, x, y, iters):
    """``(samples per wall second, samples per CPU second)`` of full training steps (forward, backward, Adam).

    CPU seconds (``time.process_time``, all threads of this process) are far less
    sensitive than wall time to other jobs on a shared machine.
    """
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    step()  # warm-up
    if x.is_cuda:
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(iters):
        step()
    if x.is_cuda:
        torch.cuda.synchronize()
    samples = iters * x.shape[1]
    return samples / (time.perf_counter() - t0), samples / (time.process_time() - c0)


def layer_models(n: int, recurrent: bool = False) -> dict:
    """Linear(n, n) -> n LIF neurons in every library that is installed: ``name -> forward(x) -> spikes``;
    ``recurrent``: plus an all-to-all recurrent Linear(n, n) of last step's spikes (neuro and snntorch)."""
    beta = 0.95
    tau = -DT / math.log(beta)
    if recurrent:
        return recurrent_models(n, beta, tau)
    models = {}
    models["neuro"] = Dense(n, n, reset="soft", tau_mem=tau)
    models["neuro per-step"] = Dense(n, n, reset="soft", tau_mem=tau, fused=False)
    import snntorch as snn

    fc, lif = nn.Linear(n, n), snn.Leaky(beta=beta)

    def snntorch_forward(x):  # the Open Neuromorphic benchmark's snntorch model
        mem, out = lif.init_leaky(), []
        for step in x:
            spk, mem = lif(fc(step), mem)
            out.append(spk)
        return torch.stack(out)

    models["snntorch"] = snntorch_forward
    try:
        from spikingjelly.activation_based import functional, layer, neuron, surrogate

        sj = nn.Sequential(layer.Linear(n, n, step_mode="m"),
                           neuron.LIFNode(tau=1 / (1 - beta), surrogate_function=surrogate.ATan(), step_mode="m"))

        def spikingjelly_forward(x):
            functional.reset_net(sj)
            return sj(x)

        models["spikingjelly"] = spikingjelly_forward
    except ImportError as e:
        print(f"spikingjelly skipped ({e}; make bench-deps, then PYTHONPATH=.bench)", flush=True)
    try:
        from norse.torch import LIF, SequentialState

        norse_model = SequentialState(nn.Linear(n, n), LIF())
        models["norse"] = lambda x: norse_model(x)[0]
    except ImportError as e:
        print(f"norse skipped ({e}; make bench-deps, then PYTHONPATH=.bench)", flush=True)
    models["Linear alone"] = fc
    return models


def recurrent_models(n: int, beta: float, tau: float) -> dict:
    """neuro's Recurrent layer (fused, and the per-step reference) and snntorch's RLeaky (all-to-all)."""
    import snntorch as snn

    models = {"neuro": Recurrent(n, n, reset="soft", tau_mem=tau),
              "neuro per-step": Recurrent(n, n, reset="soft", tau_mem=tau, fused=False)}
    fc, lif = nn.Linear(n, n), snn.RLeaky(beta=beta, linear_features=n, all_to_all=True)

    def snntorch_forward(x):
        spk, mem = lif.init_rleaky()
        out = []
        for step in x:
            spk, mem = lif(fc(step), spk, mem)
            out.append(spk)
        return torch.stack(out)

    models["snntorch"] = snntorch_forward
    return models


def saved_bytes(forward, x) -> int:
    """Bytes of the distinct tensors autograd keeps for the backward pass of ``forward(x)``."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward(x)
    return sum(storages.values())


def time_layer(forward, x, repeats: int):
    """Best forward and backward wall times (ms) of ``forward(x).sum()``, after one warm-up."""
    best_f = best_b = float("inf")
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        out = forward(x)
        t1 = time.perf_counter()
        out.sum().backward()
        t2 = time.perf_counter()
        if i:
            best_f, best_b = min(best_f, t1 - t0), min(best_b, t2 - t1)
    return 1e3 * best_f, 1e3 * best_b


def layer_benchmark(a) -> dict:
    """The Open Neuromorphic benchmark (module docstring) for every size and thread count; libraries alternate."""
    import os

    rows = []
    for n in a.sizes:
        torch.manual_seed(0)
        x = torch.randn(a.timesteps, a.batch, n)
        models = layer_models(n, a.recurrent)
        for threads in a.threads:
            torch.set_num_threads(threads)
            best = {name: (float("inf"), float("inf")) for name in models}
            for _ in range(a.rounds):
                for name, forward in models.items():
                    f, b = time_layer(forward, x, a.repeats)
                    best[name] = (min(best[name][0], f), min(best[name][1], b))
            for name, forward in models.items():
                f, b = best[name]
                rows.append({"n": n, "threads": threads, "library": name, "forward_ms": round(f, 2),
                             "backward_ms": round(b, 2), "total_ms": round(f + b, 2),
                             "saved_for_backward_MB": round(saved_bytes(forward, x) / 2**20, 1),
                             "load": round(os.getloadavg()[0], 2)})
                print(json.dumps(rows[-1]), flush=True)
    return {"config": vars(a), "rows": rows, "ratios": layer_ratios(rows)}


def layer_ratios(rows) -> list:
    """Total time of each library over neuro's, per size and thread count."""
    out = []
    for n, threads in sorted({(r["n"], r["threads"]) for r in rows}):
        same = {r["library"]: r["total_ms"] for r in rows if r["n"] == n and r["threads"] == threads}
        out.append({"n": n, "threads": threads, **{f"{k} / neuro": round(v / same["neuro"], 2)
                                                     for k, v in same.items() if k != "neuro"}})
    for row in out:
        print(json.dumps(row))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layer", action="store_true", help="the Open Neuromorphic Linear + LIF benchmark instead")
    p.add_argument("--recurrent", action="store_true", help="--layer with an all-to-all recurrent Linear as well")
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 512, 2048])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--timesteps", type=int, default=500)
    p.add_argument("--rounds", type=int, default=3, help="--layer: rounds over all libraries (best is kept)")
    p.add_argument("--inputs", type=int, default=2 * 34 * 34)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--outputs", type=int, default=10)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, help="default 64 (16 with --layer)")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", help="also write the results here")
    a = p.parse_args(argv)
    a.layer = a.layer or a.recurrent
    a.batch = a.batch or (16 if a.layer else 64)
    result = layer_benchmark(a) if a.layer else throughput_benchmark(a)
    if a.json:
        from neuro.io import write_json

        write_json(a.json, result)


def throughput_benchmark(a) -> dict:
    """Samples per second of ours and snntorch's classifier (module docstring), best of ``a.repeats`` rounds."""
    torch.manual_seed(0)
    x = (torch.rand(a.steps, a.batch, a.inputs, device=a.device) < 0.05).float()
    y = torch.randint(0, a.outputs, (a.batch,), device=a.device)
    models = {"neuro": ours(a.inputs, a.hidden, a.outputs).to(a.device),
              "snntorch": SnntorchNet(a.inputs, a.hidden, a.outputs).to(a.device),
              "snntorch_layer_major": SnntorchNet(a.inputs, a.hidden, a.outputs, layer_major=True).to(a.device)}
    wall, cpu = ({name: 0.0 for name in models} for _ in range(2))
    for _ in range(a.repeats):
        for name, model in models.items():
            w, c = throughput(model, x, y, a.iters)
            wall[name], cpu[name] = max(wall[name], w), max(cpu[name], c)
    result = {"config": vars(a), "threads": torch.get_num_threads(), "samples_per_wall_s": wall,
              "samples_per_cpu_s": cpu}
    for base in ("snntorch", "snntorch_layer_major"):
        result[f"ratio_over_{base}"] = {"wall": wall["neuro"] / wall[base], "cpu": cpu["neuro"] / cpu[base]}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
