"""Event data for neuro: tonic datasets read offline, generated stand-ins, and spike encoders.

Modules (import the one you need; tonic is imported only by those that use it):

* :mod:`neuro.data.datasets`: ``NMNIST``, ``SHD``, ``DVSGesture`` (tonic's classes, reading a
  local folder, never downloading, validating each sample) and ``load(name, root, train)``.
* :mod:`neuro.data.frames`: ``make_frame_loaders(root, dataset, n_time_bins=..., batch_size=..., seed=...)``
  giving train/test DataLoaders of ``(frames [T, B, C, H, W] float32, labels [B] int64)``.
* :mod:`neuro.data.digits_nmnist`: ``generate(root, n_train, n_test, seed)`` writes scikit-learn's
  digits as an N-MNIST-format event dataset (simulated saccades) that ``tonic.datasets.NMNIST`` reads.
* :mod:`neuro.data.synthetic_shd`: ``generate(root, n_train, n_test, seed)`` writes synthetic spoken
  digits in SHD's HDF5 format that ``tonic.datasets.SHD`` reads.
* :mod:`neuro.data.encoders`: ``rate``, ``latency``, ``delta`` spike encoders (numpy or torch, ``[T, ...]``).
* :mod:`neuro.data.nmnist_format`: the N-MNIST 40-bit event format (write, validate, read via tonic).
* :mod:`neuro.data.errors`: ``DatasetMissingError`` and ``DatasetCorruptError`` (both ``ValueError``).

Typical training setup::

    from neuro.data import digits_nmnist
    from neuro.data.frames import make_frame_loaders

    root = digits_nmnist.generate("data/digits", n_train=10_000, n_test=10_000, seed=0)  # once; idempotent
    data = make_frame_loaders(root, "nmnist", n_time_bins=20, batch_size=64, seed=0, spatial_factor=0.5)
"""

from neuro.data.errors import DatasetCorruptError, DatasetMissingError

__all__ = ["DatasetCorruptError", "DatasetMissingError"]
