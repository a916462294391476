"""N-MNIST, SHD and DVS Gesture through tonic, from a local folder, with clear errors instead of downloads.

Each class here subclasses the tonic class of the same name (tonic names the
dataset folder after the class, so the on-disk layout is exactly tonic's) and
changes three things:

* **No download.** When the files tonic needs are absent, the constructor raises
  :class:`~neuro.data.errors.DatasetMissingError` listing every expected path,
  the official download URL and how to unpack it (no machine here can download).
* **Validated samples.** Each ``__getitem__`` checks the raw sample first and
  raises :class:`~neuro.data.errors.DatasetCorruptError` naming the file for a
  truncated or corrupt ``.bin``/``.h5``/``.npy`` (tonic's own readers would return
  a silently shortened sample or fail with an unrelated message).
* **Generated data of any size.** A folder written by :mod:`neuro.data.digits_nmnist`
  or :mod:`neuro.data.synthetic_shd` carries a manifest; it replaces tonic's
  file-count rule (N-MNIST: 10,000 ``.bin`` per split) and records each file's size.

Expected layouts (``root`` is what you pass as ``save_to``)::

    root/NMNIST/train.zip  + root/NMNIST/Train/<digit>/<id>.bin   (Test/ and test.zip for train=False)
    root/SHD/shd_train.h5  + root/SHD/shd_train.h5.zip            (shd_test.* for train=False)
    root/DVSGesture/ibmGestureTrain.tar.gz + root/DVSGesture/ibmGestureTrain/user<NN>_<lighting>/<label>.npy

Samples are ``(events, label)`` with tonic's structured event arrays (N-MNIST and
DVS Gesture: fields x, y, t, p; SHD: t, x, p; t in microseconds).
:func:`load` picks a class by name; :mod:`neuro.data.frames` turns them into torch batches.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import tonic

from neuro.data.errors import DatasetCorruptError, DatasetMissingError
from neuro.data.generated import read_manifest
from neuro.data.nmnist_format import check_bin


def _missing_message(what: str, folder: Path, expected: list[tuple[Path | str, str, bool]], how: str) -> str:
    lines = [f"{what} not found under {folder}. Expected:"]
    for path, note, present in expected:
        lines.append(f"  {path}  ({note}) [{'present' if present else 'MISSING'}]")
    lines.append(how)
    return "\n".join(lines)


class _NoDownload:
    """Mixin: tonic calls ``download()`` when files are missing; ours have already raised, so this never runs."""

    def download(self) -> None:
        raise DatasetMissingError(f"{self.location_on_system}: dataset files missing and downloads are disabled")


class NMNIST(_NoDownload, tonic.datasets.NMNIST):
    """``tonic.datasets.NMNIST`` reading ``<save_to>/NMNIST`` offline, with validated samples.

    Real N-MNIST needs ``train.zip`` (existence only) and >= 10,000 ``.bin`` files
    under ``Train/`` (likewise ``test.zip``, ``Test/``), as tonic requires. A
    folder from :func:`neuro.data.digits_nmnist.generate` needs exactly the files
    its manifest lists. Arguments are tonic's.
    """

    official_page = "https://www.garrickorchard.com/datasets/n-mnist"
    # tonic 1.7.0 NMNIST._check_exists: _folder_contains_at_least_n_files_of_type(10000, ".bin")
    tonic_min_files = 10_000

    def _check_exists(self) -> bool:
        folder = Path(self.location_on_system)
        manifest = read_manifest(folder)
        split = folder / self.folder_name
        found = sorted(split.glob("*/*.bin")) if split.is_dir() else []
        archive = folder / self.filename
        if manifest is None:
            self._expected_sizes = {}
            needed, rule = self.tonic_min_files, f"at least {self.tonic_min_files:,} N-MNIST .bin files"
        else:
            self._expected_sizes = manifest["files"]
            needed = sum(name.startswith(self.folder_name + "/") for name in self._expected_sizes)
            rule = f"{needed} .bin files listed in {folder / 'neuro_manifest.json'}"
        if archive.is_file() and len(found) >= needed:
            return True
        raise DatasetMissingError(_missing_message(
            f"N-MNIST {'training' if self.train else 'test'} split", folder,
            [(archive, "tonic only checks that it exists", archive.is_file()),
             (split / "<digit>" / "<id>.bin", f"{rule}; found {len(found)}", len(found) >= needed)],
            f"Download {self.filename} from {self.url} (N-MNIST page: {self.official_page}) and extract it in "
            f"{folder} so that {self.folder_name}/ sits beside {self.filename}; or write the offline stand-in "
            f"with neuro.data.digits_nmnist.generate({str(folder.parent)!r})."))

    def __getitem__(self, index):
        path = self.data[index]
        relative = os.path.relpath(path, self.location_on_system).replace(os.sep, "/")
        check_bin(path, self.sensor_size, self._expected_sizes.get(relative))
        return super().__getitem__(index)


class SHD(_NoDownload, tonic.datasets.SHD):
    """``tonic.datasets.SHD`` reading ``<save_to>/SHD/shd_{train,test}.h5`` offline, with validated samples.

    tonic checks that ``shd_train.h5.zip`` exists (an empty file will do) and reads
    ``shd_train.h5``. The HDF5 file must hold ``spikes/times`` (seconds),
    ``spikes/units`` (0..699), ``labels``, ``extra/keys`` and ``extra/speaker``.
    """

    n_units = 700
    official_page = "https://zenkelab.org/resources/spiking-heidelberg-datasets-shd/"
    required = ("spikes/times", "spikes/units", "labels", "extra/keys", "extra/speaker")

    @property
    def h5_path(self) -> Path:
        return Path(self.location_on_system) / self.data_filename

    def _check_exists(self) -> bool:
        folder = Path(self.location_on_system)
        archive = folder / self.filename
        if not (archive.is_file() and self.h5_path.is_file()):
            raise DatasetMissingError(_missing_message(
                f"SHD {'training' if self.url.endswith(self.train_zip) else 'test'} split", folder,
                [(self.h5_path, "the HDF5 file tonic reads", self.h5_path.is_file()),
                 (archive, "tonic only checks that it exists: keep the download or create an empty file",
                  archive.is_file())],
                f"Download {self.url} (SHD page: {self.official_page}), unzip it in {folder} and keep the zip; "
                f"or write the synthetic stand-in with neuro.data.synthetic_shd.generate({str(folder.parent)!r})."))
        self._length = self._check_file()
        return True

    def _check_file(self) -> int:
        """Open the HDF5 file and check its structure; return the number of samples."""
        path = self.h5_path
        try:
            with h5py.File(path, "r") as file:
                absent = [name for name in self.required if name not in file]
                if absent:
                    raise DatasetCorruptError(f"{path}: not an SHD file, missing dataset(s) {absent}")
                lengths = {name: len(file[name]) for name in ("spikes/times", "spikes/units", "labels")}
                labels = file["labels"][()]
                n_classes = len(file["extra/keys"])
        except OSError as exc:
            raise DatasetCorruptError(f"{path}: not a readable HDF5 file (truncated or corrupt): {exc}") from None
        if len(set(lengths.values())) != 1:
            raise DatasetCorruptError(f"{path}: spikes/times, spikes/units and labels differ in length: {lengths}")
        if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
            raise DatasetCorruptError(f"{path}: labels outside 0..{n_classes - 1} (extra/keys has {n_classes})")
        return lengths["labels"]

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index):
        if not -self._length <= index < self._length:
            raise IndexError(f"{self.h5_path}: sample {index} out of range ({self._length} samples)")
        index = int(index) % self._length
        where = f"{self.h5_path} sample {index}"
        try:
            with h5py.File(self.h5_path, "r") as file:
                times, units = file["spikes/times"][index], file["spikes/units"][index]
        except OSError as exc:
            raise DatasetCorruptError(f"{where}: cannot read: {exc}") from None
        if len(times) != len(units):
            raise DatasetCorruptError(f"{where}: {len(times)} spike times but {len(units)} unit ids")
        if not np.all(np.isfinite(times)) or (len(times) and times.min() < 0):
            raise DatasetCorruptError(f"{where}: spike times must be finite and >= 0 seconds")
        if len(units) and (units.min() < 0 or units.max() >= self.n_units):
            raise DatasetCorruptError(f"{where}: unit ids outside 0..{self.n_units - 1}")
        return super().__getitem__(index)


class DVSGesture(_NoDownload, tonic.datasets.DVSGesture):
    """``tonic.datasets.DVSGesture`` reading ``<save_to>/DVSGesture`` offline, with validated samples.

    tonic reads its own preprocessed release (one ``.npy`` of [x, y, p, t(ms)] rows
    per gesture), not IBM's original ``.aedat`` files: it needs the archive
    (existence only) and >= 100 extracted ``.npy`` files.
    """

    official_page = "http://research.ibm.com/dvsgesture/"  # as in tonic's docstring
    tonic_min_files = 100  # tonic 1.7.0 DVSGesture._check_exists

    def _check_exists(self) -> bool:
        folder = Path(self.location_on_system)
        archive = folder / self.filename
        split = folder / self.folder_name
        found = sorted(split.glob("*/*.npy")) if split.is_dir() else []
        if archive.is_file() and len(found) >= self.tonic_min_files:
            return True
        raise DatasetMissingError(_missing_message(
            f"DVS Gesture {'training' if self.train else 'test'} split", folder,
            [(archive, "tonic only checks that it exists", archive.is_file()),
             (split / "user<NN>_<lighting>" / "<label>.npy",
              f"at least {self.tonic_min_files} files; found {len(found)}", len(found) >= self.tonic_min_files)],
            f"Download tonic's preprocessed release {self.url} (saved as {self.filename}; dataset page: "
            f"{self.official_page}) and extract it in {folder} so that {self.folder_name}/ sits beside it."))

    def __getitem__(self, index):
        path = self.data[index]
        try:
            rows = np.load(path)
        except (OSError, ValueError, EOFError) as exc:
            raise DatasetCorruptError(f"{path}: not a readable .npy file (truncated or corrupt): {exc}") from None
        width, height = self.sensor_size[0], self.sensor_size[1]
        if rows.ndim != 2 or rows.shape[1] != 4:
            raise DatasetCorruptError(f"{path}: expected rows of [x, y, p, t], got an array of shape {rows.shape}")
        x, y, p, t = rows.T
        if ((x < 0) | (x >= width) | (y < 0) | (y >= height)).any() or not np.isin(p, (0, 1)).all() or (t < 0).any():
            raise DatasetCorruptError(f"{path}: events outside the {width}x{height} sensor, polarity not 0/1 "
                                      "or negative time")
        return super().__getitem__(index)


#: Dataset classes by the name :func:`load` and :func:`neuro.data.frames.make_frame_loaders` accept.
DATASETS = {"nmnist": NMNIST, "shd": SHD, "dvsgesture": DVSGesture}


def load(name: str, root, train: bool = True, **kwargs):
    """The ``train`` or test split of dataset ``name`` (``nmnist``, ``shd``, ``dvsgesture``) under ``root``.

    ``kwargs`` go to the tonic class (``transform``, ``first_saccade_only``, ...).
    Raises :class:`DatasetMissingError` listing expected files when they are absent.
    """
    try:
        cls = DATASETS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}") from None
    return cls(str(root), train=train, **kwargs)
