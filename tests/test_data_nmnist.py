"""Digits-as-N-MNIST generator, N-MNIST format round trip through tonic, validation, frame loaders."""

import os
import shutil

import numpy as np
import pytest
import tonic
import torch

from neuro.data import digits_nmnist
from neuro.data.datasets import NMNIST, load
from neuro.data.errors import DatasetCorruptError, DatasetMissingError
from neuro.data.frames import make_frame_loaders
from neuro.data.nmnist_format import EVENT_DTYPE, encode_events, make_events, read_bin, write_bin

N_TRAIN, N_TEST = 20, 10


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return digits_nmnist.generate(tmp_path_factory.mktemp("digits"), n_train=N_TRAIN, n_test=N_TEST, seed=3,
                                  progress=False)


def test_event_dtype_is_tonics():
    assert EVENT_DTYPE == tonic.datasets.NMNIST.dtype


def test_bin_round_trip_through_tonic_reader(tmp_path):
    rng = np.random.default_rng(0)
    n = 500
    events = make_events(rng.integers(0, 34, n), rng.integers(0, 34, n), np.sort(rng.integers(0, 2**23, n)),
                         rng.integers(0, 2, n))
    path = write_bin(tmp_path / "a.bin", events)
    assert path.stat().st_size == 5 * n
    np.testing.assert_array_equal(tonic.io.read_mnist_file(str(path), dtype=EVENT_DTYPE), events)


def test_encode_rejects_values_the_format_cannot_hold():
    ok = make_events([1], [2], [3], [1])
    for field, value in (("y", 240), ("x", 256), ("p", 2), ("t", 2**23)):
        bad = ok.copy()
        bad[field] = value
        with pytest.raises(ValueError, match=field):
            encode_events(bad)


def test_tonic_reads_generated_samples_identically(root):
    """Each file read by tonic equals the events the simulator produces for the same (seed, split, index)."""
    source = digits_nmnist.digit_source(3, 0.25, digits_nmnist.SensorModel().image_size)
    for train, split_id, split in ((True, 0, "train"), (False, 1, "test")):
        dataset = NMNIST(str(root), train=train)
        assert len(dataset) == (N_TRAIN if train else N_TEST)
        images, labels = source[split]
        for i in (0, len(dataset) - 1):
            k = int(os.path.basename(dataset.data[i])[:-4])
            expected = digits_nmnist.simulate_saccade_events(images[k % len(labels)],
                                                             np.random.default_rng([3, split_id, k]))
            events, label = dataset[i]
            np.testing.assert_array_equal(events, expected)
            assert label == labels[k % len(labels)]
            assert events.dtype == tonic.datasets.NMNIST.dtype
            assert np.all(np.diff(events["t"]) >= 0) and events["t"].max() < digits_nmnist.DURATION_US


def test_train_and_test_use_disjoint_source_digits():
    source = digits_nmnist.digit_source(0, 0.25, 24)
    train = {img.tobytes() for img in source["train"][0]}
    assert not any(img.tobytes() in train for img in source["test"][0])
    assert len(source["train"][1]) + len(source["test"][1]) == 1797


def test_generate_is_seeded_idempotent_and_prefix_stable(root, tmp_path):
    manifest = root / "NMNIST" / "neuro_manifest.json"
    before = manifest.stat().st_mtime_ns
    assert digits_nmnist.generate(root, n_train=N_TRAIN, n_test=N_TEST, seed=3, progress=False) == root
    assert manifest.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="other parameters"):
        digits_nmnist.generate(root, n_train=N_TRAIN + 1, n_test=N_TEST, seed=3, progress=False)
    small = digits_nmnist.generate(tmp_path / "small", n_train=5, n_test=2, seed=3, progress=False)
    other = digits_nmnist.generate(tmp_path / "other", n_train=5, n_test=2, seed=4, progress=False)
    for path in sorted((small / "NMNIST" / "Train").glob("*/*.bin")):
        relative = path.relative_to(small)
        assert path.read_bytes() == (root / relative).read_bytes()  # same seed: a prefix of the larger set
        assert not (other / relative).exists() or path.read_bytes() != (other / relative).read_bytes()
    assert not list(tmp_path.glob(".NMNIST.tmp-*")) and not list((tmp_path / "small").glob(".NMNIST.*"))
    digits_nmnist.generate(small, n_train=6, n_test=2, seed=3, overwrite=True, progress=False)
    assert len(list((small / "NMNIST" / "Train").glob("*/*.bin"))) == 6


def test_generate_refuses_to_touch_foreign_folder(tmp_path):
    (tmp_path / "NMNIST" / "Train").mkdir(parents=True)
    with pytest.raises(ValueError, match="refusing to overwrite"):
        digits_nmnist.generate(tmp_path, n_train=2, n_test=2, progress=False)


def test_stock_tonic_class_needs_ten_thousand_files(root, monkeypatch):
    def no_download(self):
        raise RuntimeError("download attempted")

    monkeypatch.setattr(tonic.datasets.NMNIST, "download", no_download)
    with pytest.raises(RuntimeError, match="download attempted"):
        tonic.datasets.NMNIST(str(root), train=True)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-2], "not a multiple of 5"),
    (lambda b: b[:-5], "manifest records"),
    (lambda b: bytes([200]) + b[1:], "outside the 34x34 sensor"),
])
def test_damaged_bin_names_the_file(root, tmp_path, damage, message):
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    dataset = NMNIST(str(copy), train=True)
    victim = dataset.data[4]
    with open(victim, "rb") as f:
        raw = f.read()
    with open(victim, "wb") as f:
        f.write(damage(raw))
    with pytest.raises(DatasetCorruptError, match=message) as info:
        dataset[4]
    assert victim in str(info.value)


def test_empty_and_truncated_bin_without_manifest(tmp_path):
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(DatasetCorruptError, match="empty"):
        read_bin(empty)
    cut = tmp_path / "cut.bin"
    cut.write_bytes(encode_events(make_events([1, 2], [3, 4], [5, 6], [0, 1]))[:-1])
    with pytest.raises(DatasetCorruptError, match=str(cut)):
        read_bin(cut)


def test_missing_files_error_lists_paths_and_url(tmp_path):
    with pytest.raises(DatasetMissingError) as info:
        load("nmnist", tmp_path, train=False)
    text = str(info.value)
    assert str(tmp_path / "NMNIST" / "test.zip") in text
    assert str(tmp_path / "NMNIST" / "Test" / "<digit>" / "<id>.bin") in text
    assert tonic.datasets.NMNIST.test_url in text and "10,000" in text
    assert isinstance(info.value, ValueError) and isinstance(info.value, FileNotFoundError)


def test_frame_loaders_shapes_counts_and_seeded_order(root):
    data = make_frame_loaders(root, "nmnist", n_time_bins=8, batch_size=8, seed=1)
    frames, labels = next(iter(data.test))
    assert frames.shape == (8, 8, 2, 34, 34) and frames.dtype.is_floating_point and labels.dtype == torch.int64
    events, label = NMNIST(str(root), train=False)[0]
    # tonic's n_time_bins windows are floor((t_last - t_first) / T) long: the last few microseconds are dropped
    t = events["t"]
    covered = np.sum(t < t[0] + 8 * ((t[-1] - t[0]) // 8))
    assert frames[:, 0].sum().item() == covered > len(events) - 20 and labels[0].item() == label
    windowed = make_frame_loaders(root, "nmnist", n_time_bins=None, time_window_us=40_000, batch_size=8, seed=1)
    frames, _ = next(iter(windowed.test))
    assert frames.shape[0] == 8 and frames[:, 0].sum().item() == len(events)
    assert data.input_shape == (2, 34, 34) and data.n_classes == 10

    def order(seed):
        return [y.tolist() for _, y in make_frame_loaders(root, n_time_bins=4, batch_size=8, seed=seed,
                                                          spatial_factor=0.5).train]
    assert order(5) == order(5) and order(5) != order(6)
    pooled = make_frame_loaders(root, n_time_bins=4, batch_size=4, seed=0, spatial_factor=0.5, denoise_us=5000,
                                max_train=9, max_test=3)
    frames, _ = next(iter(pooled.train))
    assert frames.shape == (4, 4, 2, 17, 17) and pooled.input_shape == (2, 17, 17)
    assert len(pooled.train.dataset) == 9 and len(pooled.test.dataset) == 3
    dense = make_frame_loaders(root, n_time_bins=4, batch_size=4, seed=0, max_test=4)
    sparse = make_frame_loaders(root, n_time_bins=4, batch_size=4, seed=0, max_test=4, sparse=True)
    (x_dense, y_dense), (x_sparse, y_sparse) = next(iter(dense.test)), next(iter(sparse.test))
    assert x_sparse.is_sparse and torch.equal(x_sparse.to_dense().float(), x_dense) and torch.equal(y_sparse, y_dense)


def test_frame_loaders_reject_bad_options(root):
    with pytest.raises(ValueError, match="exactly one"):
        make_frame_loaders(root, n_time_bins=None)
    with pytest.raises(ValueError, match="unknown dataset"):
        make_frame_loaders(root, "mnist")
    with pytest.raises(ValueError, match="spatial_factor"):
        make_frame_loaders(root, spatial_factor=2)


def test_saccades_are_the_ones_tonic_stabilize_undoes(root):
    """tonic's ``stabilize`` removes N-MNIST's saccade motion: on our data the event centroid stops wandering."""
    def wander(dataset):
        spread = []
        for i in range(10):
            events = dataset[i][0]
            window = events["t"] // 15_000
            centroid = np.array([[events["x"][window == w].mean(), events["y"][window == w].mean()]
                                 for w in np.unique(window)])
            spread.append(centroid.std(0).sum())
        return np.mean(spread)

    assert wander(NMNIST(str(root), stabilize=True)) < 0.5 * wander(NMNIST(str(root)))
