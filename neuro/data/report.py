"""Measure the generated datasets and draw their pictures: ``python -m neuro.data.report ROOT [--full]``.

Generates (or reuses) digits-as-N-MNIST at a small size (and with ``--full`` at
10,000 + 10,000 samples, the size stock ``tonic.datasets.NMNIST`` accepts), and
synthetic SHD; times each generation (wall and CPU), counts events per sample,
reads the data back with tonic's own classes, writes PNGs to ``--images`` and
a JSON summary beside them. Time it on a fresh ROOT (a second run reuses the data).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from neuro.data import digits_nmnist, synthetic_shd
from neuro.data.preview import plot_nmnist_samples, plot_spike_rasters
from neuro.io import write_json


def _timed(function, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, {"wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(time.process_time() - cpu, 2)}


def _event_stats(dataset, field: str = "p") -> dict:
    counts, on = [], []
    for i in range(len(dataset)):
        events = dataset[i][0]
        counts.append(len(events))
        on.append(events[field].mean())
    counts = np.array(counts)
    return {"samples": len(counts), "events_mean": round(float(counts.mean()), 1),
            "events_std": round(float(counts.std()), 1), "events_min": int(counts.min()),
            "events_max": int(counts.max()), "on_fraction": round(float(np.mean(on)), 3)}


def nmnist_report(root: Path, n_train: int, n_test: int, images: Path | None) -> dict:
    import tonic

    from neuro.data.datasets import NMNIST

    _, timing = _timed(digits_nmnist.generate, root, n_train=n_train, n_test=n_test, seed=0)
    full_size = min(n_train, n_test) >= NMNIST.tonic_min_files
    reader = tonic.datasets.NMNIST if full_size else NMNIST
    train, test = reader(str(root), train=True), reader(str(root), train=False)
    report = {"n_train": n_train, "n_test": n_test, "generate": timing, "reader": f"{reader.__module__}.NMNIST",
              "train_len": len(train), "test_len": len(test), "event_dtype": str(train[0][0].dtype),
              "train_events": _event_stats(train)}
    if images is not None:
        picks = [int(np.flatnonzero(np.array(test.targets) == digit)[0]) for digit in (0, 3, 5, 7, 9)]
        plot_nmnist_samples([test[i] for i in picks], images / "digits_nmnist_samples.png",
                            title="digits-as-N-MNIST test samples: ON (red) / OFF (blue) events per saccade")
    return report


def shd_report(root: Path, n_train: int, n_test: int, images: Path | None) -> dict:
    import tonic

    _, timing = _timed(synthetic_shd.generate, root, n_train=n_train, n_test=n_test, seed=0)
    train, test = tonic.datasets.SHD(str(root), train=True), tonic.datasets.SHD(str(root), train=False)
    report = {"n_train": n_train, "n_test": n_test, "generate": timing, "reader": "tonic.datasets.SHD",
              "train_len": len(train), "test_len": len(test), "event_dtype": str(train[0][0].dtype),
              "train_spikes": _event_stats(train, "x")}
    report["train_spikes"].pop("on_fraction")
    if images is not None:
        plot_spike_rasters([test[i] for i in range(10)], list(test.classes), images / "synthetic_shd_samples.png",
                           title="synthetic SHD test samples (700 channels, one per digit word)")
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="folder for the generated datasets")
    parser.add_argument("--full", action="store_true", help="also generate 10,000 + 10,000 digits-as-N-MNIST")
    parser.add_argument("--images", type=Path, default=Path("docs/img"), help="where to write the PNGs")
    args = parser.parse_args(argv)
    summary = {"nmnist_small": nmnist_report(args.root / "small", 100, 100, None if args.full else args.images)}
    if args.full:
        summary["nmnist_full"] = nmnist_report(args.root / "full", 10_000, 10_000, args.images)
    summary["shd"] = shd_report(args.root / "shd", 1000, 300, args.images)
    write_json(args.images / "data_report.json", summary)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
