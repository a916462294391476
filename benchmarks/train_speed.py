"""Training throughput (samples/s) of neuro.training layers against the equivalent snntorch network.

All networks: input -> Linear -> LIF (soft reset, beta = exp(-dt/tau_mem)) -> Linear -> non-spiking
leaky readout, logits = mean membrane over time, cross-entropy, Adam; same sizes, timesteps, batch,
input spikes. neuro.training evaluates layer by layer (one large matrix product per synapse);
snntorch is timed in its usual step-by-step loop and, for a like-for-like neuron cost, layer by layer
too. They are timed alternately in the same process (best of ``--repeats`` rounds).

    .venv/bin/python benchmarks/train_speed.py [--inputs 2312 --hidden 256 --steps 20 --batch 64 --device cpu]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
from torch import nn

from neuro.training.layers import Dense, Readout
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--inputs", type=int, default=2 * 34 * 34)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--outputs", type=int, default=10)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", help="also write the results here")
    a = p.parse_args(argv)
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
    if a.json:
        from neuro.io import write_json

        write_json(a.json, result)


if __name__ == "__main__":
    main()
