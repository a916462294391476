"""DVS Gesture through tonic offline: a fabricated folder in tonic's preprocessed layout is read and validated."""

import numpy as np
import pytest

from neuro.data.datasets import DVSGesture
from neuro.data.errors import DatasetCorruptError, DatasetMissingError
from neuro.data.frames import make_frame_loaders


@pytest.fixture
def root(tmp_path):
    """tonic's layout: ibmGesture{Train,Test}/user<NN>_<lighting>/<label>.npy rows [x, y, p, t_ms] (100 files each)."""
    folder = tmp_path / "DVSGesture"
    rng = np.random.default_rng(0)
    for split in ("ibmGestureTrain", "ibmGestureTest"):
        for user in range(1, 11):
            (folder / split / f"user{user:02d}_led").mkdir(parents=True)
            for label in range(10):
                n = 50
                rows = np.column_stack([rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n),
                                        np.sort(rng.integers(0, 1000, n))])
                np.save(folder / split / f"user{user:02d}_led" / f"{label}.npy", rows)
        (folder / f"{split}.tar.gz").write_bytes(b"")
    return tmp_path


def test_reads_offline_and_batches(root):
    dataset = DVSGesture(str(root), train=True)
    assert len(dataset) == 100
    events, label = dataset[0]
    assert len(events) == 50 and events["t"].max() < 1_000_000 and 0 <= label < 11
    data = make_frame_loaders(root, "dvsgesture", n_time_bins=5, batch_size=10, seed=0, spatial_factor=0.25,
                              max_test=1)
    frames, labels = next(iter(data.train))
    assert frames.shape == (5, 10, 2, 32, 32) and data.n_classes == 11


def test_corrupt_npy_names_the_file(root):
    dataset = DVSGesture(str(root), train=True)
    path = dataset.data[3]
    with open(path, "r+b") as f:
        f.truncate(100)
    with pytest.raises(DatasetCorruptError, match="not a readable .npy") as info:
        dataset[3]
    assert path in str(info.value)
    np.save(path, np.array([[200, 5, 1, 10]]))
    with pytest.raises(DatasetCorruptError, match="outside the 128x128 sensor"):
        dataset[3]


def test_missing_files_error_lists_paths(tmp_path):
    with pytest.raises(DatasetMissingError) as info:
        DVSGesture(str(tmp_path), train=False)
    text = str(info.value)
    assert str(tmp_path / "DVSGesture" / "ibmGestureTest.tar.gz") in text
    assert "figshare.com" in text and "found 0" in text
