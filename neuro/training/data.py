"""Event datasets as in-memory binary spike tensors for training, and seeded, shardable batching.

Frames come from :func:`neuro.data.frames.make_frame_loaders` (tonic: Downsample,
ToFrame with ``time_bins`` bins). Each pixel/polarity/bin is made binary
(``count > 0``), so the input is a spike raster the event simulator can replay
through a ``spike_source`` population. The whole split is kept as ``uint8``
``[N, T, ...]`` (the digits-as-N-MNIST default: 2700 x 10 x 2 x 17 x 17 = 16 MB).

Batching (:func:`epoch_batches`): the order of epoch ``e`` is a permutation
drawn from ``torch.Generator().manual_seed(seed * 1_000_003 + e)``, so it
depends only on (seed, epoch), which makes resumption exact. Batches of
``batch_size`` samples are global: with ``world`` data-parallel processes,
rank ``r`` takes ``batch[r::world]``, so the averaged gradient equals the
single-process one. The last incomplete batch is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

#: Datasets written offline by a generator of :mod:`neuro.data` -> the tonic dataset they are read as.
GENERATED = {"digits_nmnist": "nmnist", "synthetic_shd": "shd"}
#: Real datasets read from local files.
FILES = ("nmnist", "shd", "dvsgesture")


@dataclass
class FrameData:
    """Binary spike tensors ``x [N, T, *input_shape]`` (uint8) and labels ``y [N]`` for both splits."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    def __post_init__(self):
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dim() < 3 or x.shape[0] != y.shape[0] or y.dim() != 1:
                raise ValueError(f"{split} split: need x [N, T, ...] and y [N], got {tuple(x.shape)} and "
                                 f"{tuple(y.shape)}")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(f"train and test samples differ in shape: {tuple(self.x_train.shape[1:])} vs "
                             f"{tuple(self.x_test.shape[1:])}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample at one time step."""
        return tuple(self.x_train.shape[2:])


def load_frames(data_cfg: dict, progress: bool = True) -> FrameData:
    """The (resolved) ``data`` section of a train config as :class:`FrameData`; generates data if needed."""
    from neuro.data.frames import make_frame_loaders

    name = data_cfg["dataset"]
    root = Path(data_cfg["root"]).expanduser()
    if name in GENERATED:
        import importlib

        generator = importlib.import_module(f"neuro.data.{name}")
        generator.generate(root, n_train=data_cfg["n_train"], n_test=data_cfg["n_test"],
                           seed=data_cfg["generator_seed"], overwrite=data_cfg.get("overwrite", False),
                           progress=progress)
        name = GENERATED[name]
    elif name not in FILES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(GENERATED) + list(FILES)}")
    loaders = make_frame_loaders(root, name, n_time_bins=data_cfg["time_bins"], batch_size=256, seed=0,
                                 spatial_factor=data_cfg["downsample"])
    splits = [_binary_tensors(loader) for loader in (loaders.train, loaders.test)]
    return FrameData(*splits[0], *splits[1], loaders.n_classes)


def rate_coded_digits(time_steps: int = 8, test_size: int = 400, seed: int = 0) -> FrameData:
    """scikit-learn's 8x8 digits (``x / 16``) rate-coded over ``time_steps`` (:func:`neuro.data.encoders.rate`).

    A small static-data stand-in for quick runs and tests: 64 inputs, 10 classes,
    a seeded stratified split with ``test_size`` test samples.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from neuro.data.encoders import rate

    digits = load_digits()
    x = rate(torch.as_tensor(digits.data / 16.0, dtype=torch.float32), time_steps, seed=seed)  # [T, N, 64]
    x = x.transpose(0, 1).to(torch.uint8)
    y = torch.as_tensor(digits.target, dtype=torch.long)
    train, test = train_test_split(range(len(y)), test_size=test_size, stratify=digits.target, random_state=seed)
    return FrameData(x[train], y[train], x[test], y[test], 10)


def _binary_tensors(loader):
    xs, ys = [], []
    for frames, labels in loader:  # frames [T, B, ...]
        xs.append((frames > 0).to(torch.uint8).transpose(0, 1))
        ys.append(labels)
    return torch.cat(xs), torch.cat(ys).long()


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1):
    """Index tensors of this rank's share of every global batch of epoch ``epoch`` (module docstring)."""
    if batch_size % world:
        raise ValueError(f"batch_size {batch_size} must be divisible by the number of processes {world}")
    if n < batch_size:
        raise ValueError(f"the training set ({n} samples) is smaller than one batch ({batch_size})")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return [order[i:i + batch_size][rank::world] for i in range(0, n - batch_size + 1, batch_size)]


def time_first(x: torch.Tensor, device, dtype) -> torch.Tensor:
    """``x [B, T, ...]`` (uint8) as model input ``[T, B, ...]`` of ``dtype`` on ``device``."""
    return x.to(device).transpose(0, 1).to(dtype, memory_format=torch.contiguous_format)
