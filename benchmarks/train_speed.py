"""Training throughput (samples/s) of neuro.training layers against the equivalent snntorch network.

Both networks: input -> Linear -> LIF (soft reset, beta = exp(-dt/tau_mem)) -> Linear -> non-spiking
leaky readout, logits = mean membrane over time, cross-entropy, Adam; same sizes, timesteps, batch,
input spikes. The two are timed alternately in the same process (best of ``--repeats`` rounds).

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
    """The same network with ``snntorch.Leaky`` neurons (subtractive reset, readout without reset)."""

    def __init__(self, n_in, n_hidden, n_out):
        super().__init__()
        import snntorch as snn

        beta = math.exp(-DT / TAU_MEM)
        self.fc1, self.fc2 = nn.Linear(n_in, n_hidden), nn.Linear(n_hidden, n_out)
        self.lif1 = snn.Leaky(beta=beta, reset_mechanism="subtract")
        self.out = snn.Leaky(beta=beta, reset_mechanism="none", threshold=1e9)

    def forward(self, x_seq):
        mem1, mem2 = self.lif1.reset_mem(), self.out.reset_mem()
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
    """Samples per second of full training steps (forward, backward, Adam)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    step()  # warm-up
    if x.is_cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    if x.is_cuda:
        torch.cuda.synchronize()
    return iters * x.shape[1] / (time.perf_counter() - t0)


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
              "snntorch": SnntorchNet(a.inputs, a.hidden, a.outputs).to(a.device)}
    best = {name: 0.0 for name in models}
    for _ in range(a.repeats):
        for name, model in models.items():
            best[name] = max(best[name], throughput(model, x, y, a.iters))
    result = {"config": vars(a), "threads": torch.get_num_threads(), "samples_per_s": best,
              "ratio_neuro_over_snntorch": best["neuro"] / best["snntorch"]}
    print(json.dumps(result, indent=2))
    if a.json:
        from neuro.io import write_json

        write_json(a.json, result)


if __name__ == "__main__":
    main()
