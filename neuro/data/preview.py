"""Pictures of event samples: N-MNIST-style ON/OFF frames per saccade, and SHD-style spike rasters."""

from __future__ import annotations

import numpy as np

from neuro.io import save_figure


def nmnist_frames(events: np.ndarray, n_frames: int = 3, duration_us: int = 315_000) -> np.ndarray:
    """Event counts ``[n_frames, 2 (OFF, ON), 34, 34]`` in equal windows from t = 0 (tonic's ToFrame)."""
    import tonic

    to_frame = tonic.transforms.ToFrame(sensor_size=(34, 34, 2), time_window=duration_us / n_frames, start_time=0,
                                        end_time=duration_us)
    return to_frame(events)[:n_frames]


def plot_nmnist_samples(samples, path, n_frames: int = 3, title: str = "") -> None:
    """Grid of ``(events, label)`` samples: one row each, one column per time window; ON red, OFF blue."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(samples), n_frames, figsize=(1.6 * n_frames, 1.6 * len(samples)), squeeze=False)
    for row, (events, label) in enumerate(samples):
        frames = nmnist_frames(events, n_frames)
        scale = max(frames.max(), 1)
        for col in range(n_frames):
            off, on = frames[col, 0] / scale, frames[col, 1] / scale
            axes[row, col].imshow(np.clip(np.stack([on, 0.25 * (on + off), off], -1) * 2.5, 0, 1))
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
            if col == 0:
                axes[row, col].set_ylabel(f"label {label}\n{len(events)} ev", fontsize=8)
            if row == 0:
                axes[row, col].set_title(f"saccade {col + 1}" if n_frames == 3 else f"window {col + 1}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    save_figure(fig, path)


def plot_spike_rasters(samples, class_names, path, title: str = "") -> None:
    """Raster (time in ms vs channel) of each SHD-style ``(events, label)`` sample."""
    import matplotlib.pyplot as plt

    columns = min(5, len(samples))
    rows = int(np.ceil(len(samples) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.2 * rows), squeeze=False, sharey=True)
    for ax, (events, label) in zip(axes.flat, samples):
        ax.scatter(events["t"] / 1e3, events["x"], s=0.3, c="k", linewidths=0)
        name = class_names[label]
        ax.set_title(f"{name.decode() if isinstance(name, bytes) else name} ({len(events)} spikes)", fontsize=8)
        ax.set_xlabel("time (ms)", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in axes[:, 0]:
        ax.set_ylabel("channel", fontsize=7)
    for ax in list(axes.flat)[len(samples):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
