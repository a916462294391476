"""``neuro train [CONFIG]``: surrogate-gradient training of a spiking network on event data.

Without CONFIG it trains the built-in default (:data:`neuro.training.config.DEFAULTS`):
digits-as-N-MNIST generated offline, one hidden layer of 256 soft-reset LIF
neurons, membrane readout, 8 epochs. Schema and numbers: ``docs/training.md``.
"""

from __future__ import annotations

from pathlib import Path

from neuro.commands.arguments import non_negative_int, positive_int

HELP = "train a spiking network on event data (surrogate gradients)"


def add_arguments(parser):
    parser.add_argument("config", nargs="?", help="YAML or TOML file (schema: docs/training.md); "
                                                  "default: the built-in digits-as-N-MNIST run")
    parser.add_argument("--out", default="runs/train", help="output folder (default: %(default)s)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--stop-after", type=positive_int, metavar="EPOCH",
                        help="stop after this epoch (continue later with --resume)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    parser.add_argument("--epochs", type=positive_int, help="override epochs")
    parser.add_argument("--seed", type=non_negative_int, help="override seed")
    parser.add_argument("--overwrite-data", action="store_true",
                        help="regenerate a generated dataset cached under data.root with other settings")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args) -> int:
    import torch.distributed as dist

    from neuro.io import load_config
    from neuro.training import config, distributed
    from neuro.training.data import load_frames
    from neuro.training.trainer import fit, select_device

    raw = load_config(args.config) if args.config else {}
    for key in ("epochs", "seed"):
        if getattr(args, key) is not None:
            raw[key] = getattr(args, key)
    if args.overwrite_data:
        raw["data"] = {**raw.get("data", {}), "overwrite": True}
    cfg = config.resolve(raw)
    device = select_device(args.device)
    rank, world = distributed.init_from_env(device)
    device = distributed.device_for_rank(device)
    progress = not args.no_progress and rank == 0
    try:
        if rank == 0:  # rank 0 generates the dataset (if needed) before the others read it
            data = load_frames(cfg["data"], progress)
        if world > 1:
            dist.barrier()
        if rank != 0:
            data = load_frames(cfg["data"], False)
        _, history = fit(cfg, data, Path(args.out), args.resume, device, progress,
                         stop_after=args.stop_after)
        if world > 1:  # tear the group down together: rank 0 is still writing its files when the others finish
            dist.barrier()
    finally:
        if world > 1:
            dist.destroy_process_group()
    if rank == 0:
        last = history[-1]
        print(f"neuro train: {len(history) - 1} epoch(s) done; test accuracy {last['test_acc']:.4f} "
              f"(untrained {history[0]['test_acc']:.4f}); outputs in {args.out}")
    return 0
