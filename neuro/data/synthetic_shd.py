"""A small SHD-format dataset of synthetic spoken digits, written offline for ``tonic.datasets.SHD``.

The Spiking Heidelberg Digits (Cramer et al. 2020) are recordings of spoken
digits passed through a cochlea model into spikes of 700 channels. They cannot
be downloaded here, so this module synthesises a stand-in with the same file
format and the same kind of structure: words whose formants sweep over time,
seen through a tonotopic filterbank that turns them into spikes.

Algorithm, per utterance (random draws from ``numpy.random.default_rng([seed, split, index])``):

1. **Word.** Each class is an English digit word written as a sequence of
   phones (``WORDS``). A phone is voiced (formants F1..F3 in Hz, values near
   published American-English averages), a noise band (fricatives, stop bursts,
   in Hz), silence (stop closures) or both (``z``, ``v``); it has a nominal duration.
2. **Speaker and utterance.** A speaker has a vocal-tract scale ``alpha``
   (all frequencies times ``alpha``, 0.9..1.25) and a speaking rate; each
   utterance adds duration jitter (+-15 % per phone), formant jitter (5 %), a
   level change (+-3 dB) and a random leading silence.
3. **Trajectories.** Formant frequencies and amplitudes are linearly
   interpolated between phone centres (coarticulation), on a 1 ms grid.
4. **Cochlea-like filterbank.** 700 channels with centre frequencies evenly
   spaced on the ERB-number scale ``E(f) = 21.4 log10(1 + 0.00437 f)`` from
   50 Hz to 8 kHz. Channel ``c`` is excited by each formant ``k`` as a Gaussian
   in ERB numbers, ``A_k exp(-(E(f_c) - E(F_k))^2 / (2 w^2))`` with ``w = 0.8``,
   and by a noise band as a box in ERB numbers with Gaussian edges.
5. **Spikes.** Rate ``r_c = r_max * e^0.6 / (e^0.6 + 0.1) + r_spont`` for excitation
   ``e``; one Bernoulli draw per channel and 1 ms bin with probability
   ``r_c * 1 ms``, the spike placed uniformly inside its bin.

The file layout is SHD's::

    spikes/times   variable-length float16 per sample, seconds (sorted)
    spikes/units   variable-length uint16 per sample, 0..699
    labels         uint16 class index
    extra/keys     class names (bytes), extra/speaker (uint16 per sample)
    extra/meta_info/{gender, age, body_height}  per speaker (synthetic)

``generate(root)`` writes ``<root>/SHD/shd_train.h5``, ``shd_test.h5`` and the
placeholder ``.h5.zip`` files tonic checks for; test utterances include two
speakers absent from training, as in SHD. It is a stand-in for exercising the
audio path, not a benchmark: its numbers say nothing about real SHD.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from neuro.data.generated import build_dataset_folder, check_sample_counts, file_sizes, write_placeholder_archive

GENERATOR = "synthetic-shd"
N_CHANNELS = 700
DT_S = 1e-3
F_MIN, F_MAX = 50.0, 8000.0
TUNING_WIDTH_ERB = 0.8
N_SPEAKERS = 10
TEST_ONLY_SPEAKERS = (8, 9)

# Phones: (formants Hz or None, noise band Hz or None, relative amplitude, nominal duration ms).
PHONES = {
    "i": ((270, 2290, 3010), None, 1.0, 150), "I": ((390, 1990, 2550), None, 1.0, 90),
    "E": ((530, 1840, 2480), None, 1.0, 100), "e": ((480, 1900, 2500), None, 1.0, 120),
    "a": ((730, 1090, 2440), None, 1.0, 110), "O": ((570, 840, 2410), None, 1.0, 150),
    "o": ((500, 900, 2400), None, 1.0, 110), "U": ((440, 1020, 2240), None, 1.0, 90),
    "u": ((300, 870, 2240), None, 1.0, 200), "V": ((640, 1190, 2390), None, 1.0, 140),
    "3": ((490, 1350, 1690), None, 0.9, 90), "w": ((300, 700, 2200), None, 0.5, 70),
    "r": ((400, 1100, 1600), None, 0.6, 60), "n": ((250, 1500, 2500), None, 0.4, 80),
    "v": ((250, 1300, 2300), (1500, 6000), 0.3, 70), "z": ((250, 1500, 2500), (3500, 8000), 0.35, 90),
    "s": (None, (4000, 8000), 0.8, 110), "f": (None, (1500, 8000), 0.3, 100),
    "T": (None, (1500, 8000), 0.25, 90), "t": (None, (3000, 6000), 0.7, 15),
    "k": (None, (1500, 3000), 0.7, 20), "_": (None, None, 0.0, 45),
}
# Digit words as phone strings ("_" = stop closure).
WORDS = {
    "zero": "zI3oU", "one": "wVn", "two": "_tu", "three": "TriI", "four": "fO3", "five": "faIv",
    "six": "sI_ks", "seven": "sEv3n", "eight": "eI_t", "nine": "naIn",
}
CLASS_NAMES = list(WORDS)


def erb_number(frequency_hz):
    """ERB-number (Glasberg & Moore 1990): ``21.4 log10(1 + 0.00437 f)``."""
    return 21.4 * np.log10(1.0 + 0.00437 * np.asarray(frequency_hz, dtype=float))


CHANNEL_ERB = np.linspace(erb_number(F_MIN), erb_number(F_MAX), N_CHANNELS)


def speaker_traits(seed: int) -> np.ndarray:
    """Per-speaker ``[alpha (vocal-tract scale), rate factor]`` for the ``N_SPEAKERS`` speakers."""
    rng = np.random.default_rng([seed, 99])
    return np.column_stack([rng.uniform(0.9, 1.25, N_SPEAKERS), rng.uniform(0.85, 1.2, N_SPEAKERS)])


def _trajectories(word: str, alpha: float, rate: float, rng: np.random.Generator):
    """Per-1-ms-bin formant frequencies [n, 3], formant amplitude [n], noise band [n, 2], noise amplitude [n]."""
    phones = [PHONES[symbol] for symbol in WORDS[word]]
    durations = np.array([p[3] for p in phones]) * rate * rng.uniform(0.85, 1.15, len(phones)) * 1e-3
    centres = np.cumsum(durations) - durations / 2
    lead = rng.uniform(0.02, 0.12)
    n_bins = int(np.ceil((lead + durations.sum() + rng.uniform(0.03, 0.1)) / DT_S))
    t = np.arange(n_bins) * DT_S - lead
    inside = (t >= 0) & (t < durations.sum())
    jitter = rng.normal(1.0, 0.05, (len(phones), 3))
    voiced = [i for i, p in enumerate(phones) if p[0] is not None]
    formants = np.zeros((n_bins, 3))
    voice_amp = np.zeros(n_bins)
    if voiced:
        targets = np.array([np.array(phones[i][0]) * jitter[i] * alpha for i in voiced])
        for k in range(3):
            formants[:, k] = np.interp(t, centres[voiced], targets[:, k])
        voice_amp = np.interp(t, centres[voiced], [phones[i][2] for i in voiced]) * inside
    segment = np.clip(np.searchsorted(np.cumsum(durations), t, side="right"), 0, len(phones) - 1)
    band = np.array([p[1] if p[1] is not None else (F_MIN, F_MIN) for p in phones], dtype=float)[segment] * alpha
    noise_amp = np.array([p[2] if p[1] is not None else 0.0 for p in phones])[segment] * inside
    voice_amp = voice_amp * np.array([p[0] is not None for p in phones])[segment]
    return formants, voice_amp, band, noise_amp


def _excitation(formants, voice_amp, band, noise_amp) -> np.ndarray:
    """Filterbank excitation [n_bins, 700] from formant and noise-band trajectories."""
    channels = CHANNEL_ERB.astype(np.float32) / TUNING_WIDTH_ERB
    excitation = np.zeros((len(formants), N_CHANNELS), np.float32)
    for k, gain in enumerate((1.0, 0.7, 0.4)):
        centre = (erb_number(formants[:, k]) / TUNING_WIDTH_ERB).astype(np.float32)
        excitation += (gain * voice_amp[:, None]).astype(np.float32) * np.exp(-0.5 * (channels - centre[:, None]) ** 2)
    low, high = (erb_number(band[:, i:i + 1]).astype(np.float32) / TUNING_WIDTH_ERB for i in (0, 1))
    outside = np.clip(low - channels, 0, None) + np.clip(channels - high, 0, None)
    return excitation + noise_amp[:, None].astype(np.float32) * np.exp(-0.5 * outside**2)


def synthesize_utterance(word: str, alpha: float, rate: float, rng: np.random.Generator,
                         max_rate_hz: float = 60.0, spontaneous_hz: float = 0.5):
    """Spike times (seconds, sorted, float64) and units (0..699) of one synthetic utterance of ``word``."""
    formants, voice_amp, band, noise_amp = _trajectories(word, alpha, rate, rng)
    excitation = _excitation(formants, voice_amp, band, noise_amp) * 10 ** (rng.uniform(-3, 3) / 20)
    drive = excitation ** 0.6
    rate_hz = max_rate_hz * drive / (drive + 0.1) + spontaneous_hz
    bins, units = np.nonzero(rng.random(rate_hz.shape) < rate_hz * DT_S)
    times = (bins + rng.random(len(bins))) * DT_S
    order = np.argsort(times, kind="stable")
    return times[order], units[order]


def _write_split(path: Path, split_id: int, n_samples: int, seed: int, progress: bool) -> None:
    rng_split = np.random.default_rng([seed, split_id])
    speakers_allowed = [s for s in range(N_SPEAKERS) if split_id == 1 or s not in TEST_ONLY_SPEAKERS]
    speakers = rng_split.choice(speakers_allowed, n_samples)
    labels = np.arange(n_samples) % len(CLASS_NAMES)
    traits = speaker_traits(seed)
    times_all, units_all = [], []
    for k in tqdm(range(n_samples), desc=f"synthetic-shd {path.stem}", disable=not progress, unit="sample"):
        alpha, rate = traits[speakers[k]]
        rng = np.random.default_rng([seed, split_id, k])
        times, units = synthesize_utterance(CLASS_NAMES[labels[k]], alpha, rate, rng)
        times_all.append(times.astype(np.float16))
        units_all.append(units.astype(np.uint16))
    with h5py.File(path, "w") as file:
        file.create_dataset("spikes/times", data=np.array(times_all + [None], dtype=object)[:-1],
                            dtype=h5py.vlen_dtype(np.float16))
        file.create_dataset("spikes/units", data=np.array(units_all + [None], dtype=object)[:-1],
                            dtype=h5py.vlen_dtype(np.uint16))
        file.create_dataset("labels", data=labels.astype(np.uint16))
        file.create_dataset("extra/keys", data=np.array([name.encode() for name in CLASS_NAMES]))
        file.create_dataset("extra/speaker", data=speakers.astype(np.uint16))
        file.create_dataset("extra/meta_info/gender", data=np.array([b"female" if a > 1.1 else b"male"
                                                                    for a in traits[:, 0]]))
        file.create_dataset("extra/meta_info/age", data=np.full(N_SPEAKERS, 30, dtype=np.uint16))
        file.create_dataset("extra/meta_info/body_height", data=np.round(190 - 40 * (traits[:, 0] - 0.9)))


def generate(root, n_train: int = 1000, n_test: int = 300, seed: int = 0, overwrite: bool = False,
             progress: bool = True) -> Path:
    """Write the synthetic SHD-format dataset to ``<root>/SHD`` and return ``root``.

    ``tonic.datasets.SHD(save_to=root, train=...)`` and :class:`neuro.data.datasets.SHD`
    read it. Classes are balanced (sample ``k`` has label ``k % 10``). Idempotent and
    atomic like :func:`neuro.data.digits_nmnist.generate`.
    """
    n_train, n_test = check_sample_counts(n_train=n_train, n_test=n_test).values()
    params = {"n_train": n_train, "n_test": n_test, "seed": int(seed)}

    def build(folder: Path) -> dict[str, int]:
        for split_id, (split, n) in enumerate((("train", n_train), ("test", n_test))):
            _write_split(folder / f"shd_{split}.h5", split_id, n, seed, progress)
            write_placeholder_archive(folder / f"shd_{split}.h5.zip", GENERATOR, f"shd_{split}.h5")
        return file_sizes(folder, "*.h5")

    build_dataset_folder(Path(root) / "SHD", GENERATOR, params, build, overwrite)
    return Path(root)
