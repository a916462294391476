"""Torch-ready batches of event frames from the tonic datasets, for training code.

:func:`make_frame_loaders` is the one call training code needs::

    from neuro.data.frames import make_frame_loaders
    data = make_frame_loaders("data/digits", "nmnist", n_time_bins=20, batch_size=64, seed=0,
                              spatial_factor=0.5)           # 34x34 -> 17x17
    for frames, labels in data.train:                       # frames [T, B, C, H, W] float32, labels [B] int64
        ...
    data.input_shape, data.n_classes                        # (2, 17, 17), 10

Per sample the pipeline is tonic's (in this order)::

    Denoise(filter_time=denoise_us)           optional: drop events without a neighbour within denoise_us
    Downsample(spatial_factor=f)              optional: x -> floor(f x), y -> floor(f y) (sum pooling in frames)
    ToFrame(sensor_size, n_time_bins=T)       T frames, each the per-pixel, per-polarity event count in 1/T of
                                              the sample's span;  or time_window=w: frames of w us from t=0
    NumpyAsType(float32)

(``sparse=True`` replaces the last two by ``ToSparseTensor``: sparse int16 frames)
and batches are collated by ``tonic.collation.PadTensors(batch_first=False)``,
which stacks time first and zero-pads to the longest sample (only needed with
``time_window_us``; with ``n_time_bins`` every sample has exactly T frames).
Shapes: N-MNIST and DVS Gesture give ``[T, B, 2, H, W]``; SHD gives ``[T, B, 1, 700 f]``
(channels pooled by ``spatial_factor``). Pixel counts can exceed 1; clamp them
if a model wants binary spikes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tonic
import torch
from torch.utils.data import DataLoader, Subset

from neuro.data.datasets import DATASETS, load


@dataclass
class FrameLoaders:
    """Train and test loaders of ``(frames [T, B, *input_shape] float32, labels [B] int64)``."""

    train: DataLoader
    test: DataLoader
    input_shape: tuple[int, ...]
    n_classes: int
    sensor_size: tuple[int, int, int]


def pooled_sensor_size(sensor_size, spatial_factor: float) -> tuple[int, int, int]:
    """Sensor size after ``Downsample(spatial_factor)``: each side ``floor((n - 1) f) + 1``."""
    if not 0 < spatial_factor <= 1:
        raise ValueError(f"spatial_factor must be in (0, 1], got {spatial_factor}")
    width, height, polarities = sensor_size
    return (math.floor((width - 1) * spatial_factor) + 1, math.floor((height - 1) * spatial_factor) + 1 if height > 1
            else 1, polarities)


def frame_transform(sensor_size, n_time_bins: int | None = None, time_window_us: float | None = None,
                    spatial_factor: float = 1.0, denoise_us: float | None = None, sparse: bool = False):
    """The tonic transform chain described in the module docstring; returns it and the pooled sensor size."""
    if (n_time_bins is None) == (time_window_us is None):
        raise ValueError("give exactly one of n_time_bins (fixed number of frames) or time_window_us (frame length)")
    if n_time_bins is not None and (int(n_time_bins) != n_time_bins or n_time_bins < 1):
        raise ValueError(f"n_time_bins must be a positive integer, got {n_time_bins!r}")
    if time_window_us is not None and time_window_us <= 0:
        raise ValueError(f"time_window_us must be > 0, got {time_window_us}")
    pooled = pooled_sensor_size(sensor_size, spatial_factor)
    steps = []
    if denoise_us is not None:
        if denoise_us <= 0:
            raise ValueError(f"denoise_us must be > 0, got {denoise_us}")
        steps.append(tonic.transforms.Denoise(filter_time=denoise_us))
    if spatial_factor != 1:
        steps.append(tonic.transforms.Downsample(spatial_factor=spatial_factor))
    if sparse:
        steps.append(tonic.transforms.ToSparseTensor(sensor_size=pooled, n_time_bins=n_time_bins,
                                                     time_window=time_window_us,
                                                     include_incomplete=time_window_us is not None))
    elif n_time_bins is not None:
        steps.append(tonic.transforms.ToFrame(sensor_size=pooled, n_time_bins=int(n_time_bins)))
    else:
        steps.append(tonic.transforms.ToFrame(sensor_size=pooled, time_window=time_window_us, start_time=0,
                                              include_incomplete=True))
    if not sparse:
        steps.append(tonic.transforms.NumpyAsType(np.float32))
    return tonic.transforms.Compose(steps), pooled


def _subset(dataset, max_samples: int | None, seed: int, split_id: int):
    """A seeded random subset of ``max_samples`` (in dataset order), or the dataset itself."""
    if max_samples is None or max_samples >= len(dataset):
        return dataset
    if max_samples < 1:
        raise ValueError(f"max samples must be >= 1, got {max_samples}")
    keep = np.sort(np.random.default_rng([seed, split_id]).choice(len(dataset), max_samples, replace=False))
    return Subset(dataset, keep.tolist())


def make_frame_loaders(root, dataset: str = "nmnist", *, n_time_bins: int | None = 20,
                       time_window_us: float | None = None, batch_size: int = 64, seed: int = 0,
                       spatial_factor: float = 1.0, denoise_us: float | None = None,
                       max_train: int | None = None, max_test: int | None = None, cache: bool = False,
                       sparse: bool = False, num_workers: int = 0, **dataset_kwargs) -> FrameLoaders:
    """Train/test DataLoaders of event frames for ``dataset`` (``nmnist``, ``shd``, ``dvsgesture``) under ``root``.

    ``n_time_bins`` or ``time_window_us`` (set the other to None) chooses the
    binning; ``spatial_factor`` pools pixels/channels; ``denoise_us`` enables
    tonic's Denoise; ``max_train``/``max_test`` take seeded random subsets;
    ``cache`` keeps transformed samples in memory (tonic's MemoryCachedDataset;
    per worker process); ``sparse`` uses tonic's ToSparseTensor instead of ToFrame (batches
    are then sparse int16 tensors: call ``.to_dense().float()``; with ``time_window_us`` its
    windows start at each sample's first event, tonic's ToSparseTensor has no start_time).
    The train loader shuffles with a ``torch.Generator``
    seeded by ``seed``; the test loader keeps dataset order. Extra keyword
    arguments go to the dataset class (e.g. ``first_saccade_only=True``).
    """
    if dataset.lower() not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(DATASETS)}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    sensor_size = DATASETS[dataset.lower()].sensor_size
    transform, pooled = frame_transform(sensor_size, n_time_bins, time_window_us, spatial_factor, denoise_us, sparse)
    collate = tonic.collation.PadTensors(batch_first=False)
    loaders = []
    for split_id, (train, max_samples) in enumerate(((True, max_train), (False, max_test))):
        data = load(dataset, root, train=train, transform=transform, **dataset_kwargs)
        n_classes = len(data.classes)
        data = _subset(data, max_samples, seed, split_id)
        if cache:
            data = tonic.MemoryCachedDataset(data)
        generator = torch.Generator().manual_seed(seed) if train else None
        loaders.append(DataLoader(data, batch_size=int(batch_size), shuffle=train, generator=generator,
                                  collate_fn=collate, num_workers=num_workers))
    width, height, polarities = pooled
    input_shape = (polarities, height, width) if height > 1 else (polarities, width)
    return FrameLoaders(loaders[0], loaders[1], input_shape, n_classes, pooled)
