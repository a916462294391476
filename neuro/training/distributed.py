"""Data-parallel training over processes with ``torch.distributed`` (gloo on CPU, NCCL on CUDA).

Launch the CLI with ``torchrun`` (it sets ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...)::

    torchrun --nproc_per_node 2 -m neuro.cli train CONFIG

or, from Python on one machine, :func:`spawn` (used by the tests). Every rank
builds the same model from the same seed, takes ``batch[rank::world]`` of
every global batch (:func:`neuro.training.data.epoch_batches`), and
``DistributedDataParallel`` averages the gradients: the same updates as one
process on the whole batch, up to float summation order.
"""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def init_from_env(device: torch.device) -> tuple[int, int]:
    """Join the process group torchrun describes in the environment; ``(rank, world)`` (``(0, 1)`` alone)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def device_for_rank(device: torch.device) -> torch.device:
    """One GPU per local rank under torchrun; the CPU stays the CPU."""
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, fn, args):
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))  # as torchrun does: no oversubscription
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        fn(*args)
    finally:
        dist.destroy_process_group()


def spawn(world: int, fn, *args) -> None:
    """Run ``fn(*args)`` in ``world`` new CPU processes joined in a gloo group on this machine."""
    mp.spawn(_worker, args=(world, _free_port(), fn, args), nprocs=world, join=True)
