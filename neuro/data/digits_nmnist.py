"""Digits-as-N-MNIST: scikit-learn's 8x8 digits turned into an N-MNIST-format event dataset, offline.

N-MNIST (Orchard et al. 2015) was recorded by an ATIS event camera that made
three saccades in front of a monitor showing MNIST digits. No N-MNIST files
can be downloaded here, so this module simulates that recording for the 1797
digits of ``sklearn.datasets.load_digits`` and writes the result in N-MNIST's
own binary format and tonic's folder layout, so that
``tonic.datasets.NMNIST(save_to=root)`` reads it.

Algorithm, per sample (every random draw from ``numpy.random.default_rng([seed, split, index])``):

1. The 8x8 image (values 0..16, scaled to 0..1) is upsampled bilinearly to
   ``image_size`` x ``image_size`` (24 px by default) and placed on the 34x34
   sensor at offset ``(1.5, 1.5)`` px plus a uniform jitter of +-``offset_jitter_px``.
2. It moves along N-MNIST's three saccades, 105 ms each (the path tonic's
   ``stabilize`` undoes), scaled by ``1 + saccade_jitter * N(0, 1)``::

       0..105 ms:   (0, 0)   -> (3.5, 7) px
       105..210 ms: (3.5, 7) -> (7, 0)
       210..315 ms: (7, 0)   -> (0, 0)

   Every ``time_step_us`` the frame is sampled bilinearly and converted to log
   intensity ``L = log(I + log_eps)``.
3. Each pixel keeps a reference level ``r`` (initially ``L(0)`` plus a uniform
   offset in +-C/2) and has its own contrast threshold ``C ~ N(contrast_threshold,
   threshold_spread)`` (fixed-pattern mismatch). Whenever ``L - r >= C`` it emits
   an ON event and sets ``r += C``; whenever ``r - L >= C`` an OFF event and
   ``r -= C`` (several per step if the change is large). An event's time is
   where ``L`` crosses the level, linearly interpolated within the step.
4. Timestamps get Gaussian jitter (``time_jitter_us``), background-activity
   events are added at ``noise_rate_hz`` per pixel and polarity, times are
   rounded to microseconds and the events sorted by time.

Train and test samples come from disjoint source images: a stratified split of
the 1797 digits (``test_fraction``, seeded). A split of ``n`` samples cycles
through its (shuffled) source images, so most digits appear several times, each
with its own saccade jitter, offsets and noise; sample ``k`` depends only on
``(seed, split, k)``, so a small dataset is a prefix of a large one.

``tonic.datasets.NMNIST`` only reads a folder that holds ``train.zip`` (or
``test.zip``, existence is all it checks) and at least 10,000 ``.bin`` files
under ``Train/`` (resp. ``Test/``); otherwise it starts a download. The default
``n_train = n_test = 10_000`` satisfies that. Smaller datasets (tests, quick
CPU runs) are read by :class:`neuro.data.datasets.NMNIST`, tonic's class with a
check that trusts the generator's manifest instead of the 10,000-file rule.

Example::

    from neuro.data import digits_nmnist
    root = digits_nmnist.generate("data/digits", n_train=10_000, n_test=10_000, seed=0)
    import tonic
    train = tonic.datasets.NMNIST(save_to=str(root), train=True)   # reads data/digits/NMNIST
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from numba import njit
from tqdm import tqdm

from neuro.data.generated import build_dataset_folder, check_sample_counts, file_sizes, write_placeholder_archive
from neuro.data.nmnist_format import SENSOR_SIZE, make_events, write_bin

GENERATOR = "digits-nmnist"
SACCADE_US = 105_000
DURATION_US = 3 * SACCADE_US
#: Image displacement (dx, dy) in pixels at the start of each saccade and at the end.
SACCADE_PATH = np.array([[0.0, 0.0], [3.5, 7.0], [7.0, 0.0], [0.0, 0.0]])
SPLIT_FOLDERS = {"train": "Train", "test": "Test"}
ARCHIVE_NAMES = {"train": "train.zip", "test": "test.zip"}


@dataclasses.dataclass(frozen=True)
class SensorModel:
    """Parameters of the simulated event sensor and saccades (defaults give ~5000 events per sample)."""

    image_size: int = 24
    contrast_threshold: float = 0.4
    threshold_spread: float = 0.03
    log_eps: float = 0.1
    time_step_us: int = 2000
    time_jitter_us: float = 200.0
    saccade_jitter: float = 0.03
    offset_jitter_px: float = 1.0
    noise_rate_hz: float = 0.2

    def __post_init__(self):
        if not 8 <= self.image_size <= SENSOR_SIZE[0] - 7:
            raise ValueError(f"image_size must be in 8..{SENSOR_SIZE[0] - 7} so the saccades stay on the "
                             f"{SENSOR_SIZE[0]}x{SENSOR_SIZE[1]} sensor, got {self.image_size}")
        for name in ("contrast_threshold", "log_eps", "time_step_us"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("threshold_spread", "time_jitter_us", "saccade_jitter", "offset_jitter_px", "noise_rate_hz"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def saccade_displacement(t_us: np.ndarray, amplitude: float = 1.0) -> np.ndarray:
    """Displacement ``(dx, dy)`` in pixels of the image at times ``t_us``: piecewise linear along SACCADE_PATH."""
    t_us = np.asarray(t_us, dtype=float)
    phase = np.clip(t_us / SACCADE_US, 0.0, 3.0)
    segment = np.minimum(phase.astype(int), 2)
    fraction = (phase - segment)[:, None]
    start, end = SACCADE_PATH[segment], SACCADE_PATH[segment + 1]
    return amplitude * (start + fraction * (end - start))


@njit(cache=True)
def _log_frames(image, top_left, eps, height, width):  # pragma: no cover - compiled
    """log(I + eps) [height, width, frame] of ``image`` drawn with its top-left corner at ``top_left[k]`` (bilinear)."""
    size = image.shape[0]
    n_frames = top_left.shape[0]
    shift = -top_left
    whole = np.floor(shift).astype(np.int64)
    fraction = shift - whole
    frames = np.empty((height, width, n_frames), np.float32)
    for i in range(height):
        for j in range(width):
            for k in range(n_frames):
                value = 0.0
                for a in range(2):
                    row = i + whole[k, 1] + a
                    if row < 0 or row >= size:
                        continue
                    wy = fraction[k, 1] if a == 1 else 1.0 - fraction[k, 1]
                    for b in range(2):
                        col = j + whole[k, 0] + b
                        if 0 <= col < size:
                            value += wy * (fraction[k, 0] if b == 1 else 1.0 - fraction[k, 0]) * image[row, col]
                frames[i, j, k] = np.log(value + eps)
    return frames


@njit(cache=True)
def _threshold_crossings(log_frames, thresholds, reference, times):  # pragma: no cover - compiled
    """Events (x, y, t, p) of per-pixel level-crossing detectors on ``log_frames [h, w, frame]`` at ``times``."""
    height, width, n_frames = log_frames.shape
    capacity = 4096
    out = np.empty((capacity, 4), np.float64)
    n = 0
    for i in range(height):
        for j in range(width):
            c = thresholds[i, j]
            r = reference[i, j]
            for k in range(1, n_frames):
                before = log_frames[i, j, k - 1]
                after = log_frames[i, j, k]
                while True:
                    if after - r >= c:
                        r += c
                        polarity = 1.0
                    elif r - after >= c:
                        r -= c
                        polarity = 0.0
                    else:
                        break
                    fraction = (r - before) / (after - before) if after != before else 1.0
                    fraction = min(max(fraction, 0.0), 1.0)
                    if n == capacity:
                        capacity *= 2
                        grown = np.empty((capacity, 4), np.float64)
                        grown[:n] = out[:n]
                        out = grown
                    out[n, 0] = j
                    out[n, 1] = i
                    out[n, 2] = times[k - 1] + fraction * (times[k] - times[k - 1])
                    out[n, 3] = polarity
                    n += 1
    return out[:n]


def simulate_saccade_events(image: np.ndarray, rng: np.random.Generator, model: SensorModel = SensorModel()):
    """Events of one upsampled image (values in [0, 1]) seen through N-MNIST's saccades, sorted by time.

    Returns a structured array with fields x, y, t (microseconds, int), p (1 = ON).
    """
    width, height = SENSOR_SIZE[0], SENSOR_SIZE[1]
    times = np.arange(0, DURATION_US + 1, model.time_step_us, dtype=np.float64)
    amplitude = 1.0 + model.saccade_jitter * rng.standard_normal()
    origin = 1.5 + rng.uniform(-model.offset_jitter_px, model.offset_jitter_px, size=2)
    top_left = origin + saccade_displacement(times, amplitude)
    log_frames = _log_frames(np.ascontiguousarray(image, dtype=np.float64), top_left, model.log_eps, height, width)
    thresholds = np.maximum(model.contrast_threshold + model.threshold_spread * rng.standard_normal((height, width)),
                            0.05 * model.contrast_threshold)
    reference = log_frames[:, :, 0] + (rng.random((height, width)) - 0.5) * thresholds
    crossings = _threshold_crossings(log_frames, thresholds, reference, times)

    n_noise = rng.poisson(model.noise_rate_hz * DURATION_US * 1e-6 * width * height * 2)
    x = np.concatenate([crossings[:, 0], rng.integers(0, width, n_noise)])
    y = np.concatenate([crossings[:, 1], rng.integers(0, height, n_noise)])
    t = np.concatenate([crossings[:, 2] + model.time_jitter_us * rng.standard_normal(len(crossings)),
                        rng.uniform(0, DURATION_US, n_noise)])
    p = np.concatenate([crossings[:, 3], rng.integers(0, 2, n_noise)])
    t = np.clip(np.rint(t), 0, DURATION_US - 1)
    order = np.argsort(t, kind="stable")
    return make_events(x[order], y[order], t[order], p[order])


def digit_source(seed: int, test_fraction: float, image_size: int):
    """Stratified split of ``load_digits``: ``{split: (images [n, S, S] in [0, 1], labels [n])}``, shuffled."""
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    digits = load_digits()
    images = np.clip(zoom(digits.images / 16.0, (1, image_size / 8, image_size / 8), order=1, grid_mode=True,
                          mode="grid-constant"), 0.0, 1.0)
    x_train, x_test, y_train, y_test = train_test_split(images, digits.target, test_size=test_fraction,
                                                        stratify=digits.target, random_state=seed)
    return {"train": (x_train, y_train), "test": (x_test, y_test)}


def _write_split(folder: Path, split: str, n_samples: int, seed: int, source, model: SensorModel,
                 progress: bool) -> None:
    images, labels = source
    split_id = list(SPLIT_FOLDERS).index(split)
    split_folder = folder / SPLIT_FOLDERS[split]
    for label in range(10):
        (split_folder / str(label)).mkdir(parents=True)
    for k in tqdm(range(n_samples), desc=f"digits-nmnist {split}", disable=not progress, unit="sample"):
        rng = np.random.default_rng([seed, split_id, k])
        source_index = k % len(labels)
        events = simulate_saccade_events(images[source_index], rng, model)
        write_bin(split_folder / str(labels[source_index]) / f"{k:05d}.bin", events)
    write_placeholder_archive(folder / ARCHIVE_NAMES[split], GENERATOR, f"{SPLIT_FOLDERS[split]}/")


def generate(root, n_train: int = 10_000, n_test: int = 10_000, seed: int = 0, model: SensorModel = SensorModel(),
             test_fraction: float = 0.25, overwrite: bool = False, progress: bool = True) -> Path:
    """Write the digits-as-N-MNIST dataset to ``<root>/NMNIST`` and return ``root``.

    Layout (tonic's)::

        <root>/NMNIST/train.zip, test.zip            placeholders (tonic checks that they exist)
        <root>/NMNIST/Train/<label>/<index>.bin      n_train samples, N-MNIST binary format
        <root>/NMNIST/Test/<label>/<index>.bin       n_test samples from other source digits
        <root>/NMNIST/neuro_manifest.json            generator, parameters, byte size of every .bin

    Idempotent: when the folder already holds a dataset made with the same
    parameters it is returned untouched; other parameters raise ``ValueError``
    unless ``overwrite``. Written atomically (temporary folder, then rename).
    Stock ``tonic.datasets.NMNIST`` needs ``n_train, n_test >= 10_000``; any size
    works with :class:`neuro.data.datasets.NMNIST`.
    """
    n_train, n_test = check_sample_counts(n_train=n_train, n_test=n_test).values()
    if not isinstance(model, SensorModel):
        raise ValueError(f"model must be a SensorModel, got {type(model).__name__}")
    params = {"n_train": n_train, "n_test": n_test, "seed": int(seed), "test_fraction": test_fraction,
              "model": dataclasses.asdict(model)}

    def build(folder: Path) -> dict[str, int]:
        source = digit_source(seed, test_fraction, model.image_size)
        _write_split(folder, "train", n_train, seed, source["train"], model, progress)
        _write_split(folder, "test", n_test, seed, source["test"], model, progress)
        return file_sizes(folder, "*/*/*.bin")

    build_dataset_folder(Path(root) / "NMNIST", GENERATOR, params, build, overwrite)
    return Path(root)
