"""What each rank of tests/test_training_ddp.py runs: importable by name in a spawned process."""

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from neuro.training import Dense, Readout, SpikingNet
from neuro.training.api import fit_model


def sampled_loader(data, batch, replicas, rank):
    """Batches of ``batch`` samples drawn by a shuffling DistributedSampler (fit_model calls its set_epoch)."""
    dataset = TensorDataset(data.x_train, data.y_train)
    sampler = DistributedSampler(dataset, num_replicas=replicas, rank=rank, shuffle=True, seed=7)
    return DataLoader(dataset, batch, sampler=sampler)


def net():
    torch.manual_seed(0)
    return SpikingNet([Dense(64, 16), Readout(16, 10)])


def train(data, world=1, rank=0, out=None):
    """``net()`` trained 2 epochs, global batch 20 (``20 / world`` per rank), by SGD (linear in the gradient:
    float-order noise stays float-sized, where Adam's division by sqrt(v) inflates it on tiny gradients)."""
    model = net()
    fit_model(model, sampled_loader(data, 20 // world, world, rank), None, epochs=2, out=out, progress=False,
              optimizer=torch.optim.SGD(model.parameters(), lr=0.05))
    return model


def fit_on_rank(data, out):
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.save(train(data, world, rank, out).state_dict(), out / f"rank{rank}.pt")
