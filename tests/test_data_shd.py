"""Synthetic SHD generator: tonic.datasets.SHD reads it exactly; damaged files give clear errors."""

import shutil

import h5py
import numpy as np
import pytest
import tonic

from neuro.data import synthetic_shd
from neuro.data.datasets import SHD, load
from neuro.data.errors import DatasetCorruptError, DatasetMissingError
from neuro.data.frames import make_frame_loaders


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return synthetic_shd.generate(tmp_path_factory.mktemp("shd"), n_train=12, n_test=6, seed=2, progress=False)


def test_layout_is_shds(root):
    with h5py.File(root / "SHD" / "shd_train.h5", "r") as file:
        for name in ("spikes/times", "spikes/units", "labels", "extra/keys", "extra/speaker",
                     "extra/meta_info/gender", "extra/meta_info/age", "extra/meta_info/body_height"):
            assert name in file
        assert set(file["extra/speaker"][()]).isdisjoint(synthetic_shd.TEST_ONLY_SPEAKERS)
    assert (root / "SHD" / "shd_train.h5.zip").is_file() and (root / "SHD" / "shd_test.h5.zip").is_file()


def test_stock_tonic_reads_the_events_written(root):
    dataset = tonic.datasets.SHD(str(root), train=True)
    assert len(dataset) == 12 and list(dataset.classes) == [n.encode() for n in synthetic_shd.CLASS_NAMES]
    traits = synthetic_shd.speaker_traits(2)
    for k in (0, 11):
        events, label = dataset[k]
        alpha, rate = traits[dataset.speaker[k]]
        times, units = synthetic_shd.synthesize_utterance(synthetic_shd.CLASS_NAMES[k % 10], alpha, rate,
                                                          np.random.default_rng([2, 0, k]))
        assert label == k % 10 and len(events) > 500
        np.testing.assert_array_equal(events["x"], units)
        np.testing.assert_array_equal(events["t"], (times.astype(np.float16).astype(np.float64) * 1e6).astype(int))
        np.testing.assert_array_equal(SHD(str(root), train=True)[k][0], events)


def test_seeded_and_idempotent(root, tmp_path):
    again = synthetic_shd.generate(tmp_path, n_train=12, n_test=6, seed=2, progress=False)
    other = synthetic_shd.generate(tmp_path / "b", n_train=12, n_test=6, seed=3, progress=False)
    a, b, c = (SHD(str(r), train=False)[0][0] for r in (root, again, other))
    np.testing.assert_array_equal(a, b)
    assert len(a) != len(c) or not np.array_equal(a, c)
    stamp = (root / "SHD" / "shd_test.h5").stat().st_mtime_ns
    synthetic_shd.generate(root, n_train=12, n_test=6, seed=2, progress=False)
    assert (root / "SHD" / "shd_test.h5").stat().st_mtime_ns == stamp


def test_truncated_and_garbage_h5_name_the_file(root, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    path = copy / "SHD" / "shd_train.h5"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DatasetCorruptError, match="not a readable HDF5") as info:
        SHD(str(copy), train=True)
    assert str(path) in str(info.value)
    path.write_bytes(b"not hdf5 at all")
    with pytest.raises(DatasetCorruptError, match=str(path)):
        load("shd", copy)


def test_inconsistent_sample_names_file_and_index(tmp_path):
    folder = tmp_path / "SHD"
    folder.mkdir()
    (folder / "shd_test.h5.zip").write_bytes(b"")
    with h5py.File(folder / "shd_test.h5", "w") as file:
        times = np.empty(2, dtype=object)
        times[:] = [np.array([0.1, 0.2], np.float16), np.array([0.1], np.float16)]
        units = np.empty(2, dtype=object)
        units[:] = [np.array([1, 2], np.uint16), np.array([5, 6], np.uint16)]
        file.create_dataset("spikes/times", data=times, dtype=h5py.vlen_dtype(np.float16))
        file.create_dataset("spikes/units", data=units, dtype=h5py.vlen_dtype(np.uint16))
        file.create_dataset("labels", data=np.array([0, 1], np.uint16))
        file.create_dataset("extra/keys", data=np.array([b"a", b"b"]))
        file.create_dataset("extra/speaker", data=np.array([0, 0], np.uint16))
    dataset = SHD(str(tmp_path), train=False)
    assert len(dataset[0][0]) == 2
    with pytest.raises(DatasetCorruptError, match=r"shd_test.h5 sample 1: 1 spike times but 2 unit ids"):
        dataset[1]


def test_missing_files_error_lists_paths(tmp_path):
    with pytest.raises(DatasetMissingError) as info:
        SHD(str(tmp_path), train=True)
    text = str(info.value)
    assert str(tmp_path / "SHD" / "shd_train.h5") in text and str(tmp_path / "SHD" / "shd_train.h5.zip") in text
    assert "https://zenkelab.org/datasets/shd_train.h5.zip" in text


def test_frame_loaders_pad_variable_length_audio(root):
    data = make_frame_loaders(root, "shd", n_time_bins=None, time_window_us=50_000, batch_size=6, seed=0,
                              spatial_factor=0.2)
    frames, labels = next(iter(data.test))
    assert frames.shape[1:] == (6, 1, 140) and data.input_shape == (1, 140) and labels.tolist() == [0, 1, 2, 3, 4, 5]
    events = SHD(str(root), train=False)[0][0]
    assert frames[:, 0].sum().item() == len(events)
