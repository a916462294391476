"""The N-MNIST binary event format: write it, and read it through tonic with validation.

Each event is 40 bits, big-endian (Orchard et al. 2015, and ``tonic.io.read_mnist_file``)::

    byte 0   x address (8 bit)
    byte 1   y address (8 bit); y == 240 marks a timestamp-overflow event, not a spike
    byte 2   bit 7: polarity (1 = ON, 0 = OFF); bits 6..0: timestamp bits 22..16
    byte 3   timestamp bits 15..8
    byte 4   timestamp bits 7..0          (timestamps in microseconds, < 2**23)

tonic's reader accepts any byte string: a file cut mid-event is read as a
shorter sample without complaint. :func:`check_bin` rejects such files (length
not a multiple of 5, empty, addresses outside the sensor, or a byte size other
than the one a generator manifest recorded) with a :class:`DatasetCorruptError`
naming the file; :func:`read_bin` checks, then reads with tonic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuro.data.errors import DatasetCorruptError

#: Event dtype of ``tonic.datasets.NMNIST`` (x, y, t in microseconds, p in {0, 1}).
EVENT_DTYPE = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])
#: (width, height, polarities) of the ATIS sensor crop used by N-MNIST.
SENSOR_SIZE = (34, 34, 2)
BYTES_PER_EVENT = 5
MAX_TIMESTAMP_US = 2**23 - 1
OVERFLOW_Y = 240


def make_events(x, y, t, p) -> np.ndarray:
    """Pack equal-length sequences into a structured array of :data:`EVENT_DTYPE`."""
    events = np.empty(len(t), dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = x, y, t, p
    return events


def encode_events(events: np.ndarray) -> bytes:
    """Encode events (fields x, y, t, p) as N-MNIST 40-bit records, in the given order.

    Raises ``ValueError`` for values the format cannot hold: x or y outside
    0..255, y == 240 (reserved), p not 0/1, t outside 0 .. 2**23 - 1.
    """
    x, y, t, p = (np.asarray(events[name], dtype=np.int64) for name in ("x", "y", "t", "p"))
    problems = [
        ("x", (x < 0) | (x > 255), "0..255"),
        ("y", (y < 0) | (y > 255) | (y == OVERFLOW_Y), "0..255 except 240"),
        ("p", (p != 0) & (p != 1), "0 or 1"),
        ("t", (t < 0) | (t > MAX_TIMESTAMP_US), f"0..{MAX_TIMESTAMP_US} us"),
    ]
    for name, bad, allowed in problems:
        if bad.any():
            raise ValueError(f"cannot encode N-MNIST events: {int(bad.sum())} value(s) of {name} outside {allowed}")
    records = np.empty((len(t), BYTES_PER_EVENT), dtype=np.uint8)
    records[:, 0] = x
    records[:, 1] = y
    records[:, 2] = (p << 7) | ((t >> 16) & 0x7F)
    records[:, 3] = (t >> 8) & 0xFF
    records[:, 4] = t & 0xFF
    return records.tobytes()


def write_bin(path, events: np.ndarray) -> Path:
    """Write ``events`` to ``path`` in the N-MNIST binary format (see :func:`encode_events`)."""
    path = Path(path)
    path.write_bytes(encode_events(events))
    return path


def check_bin(path, sensor_size=SENSOR_SIZE, expected_size: int | None = None) -> None:
    """Raise :class:`DatasetCorruptError` naming ``path`` unless it is a plausible N-MNIST file.

    Checks: the file exists and is not empty, its length is a multiple of 5
    bytes (equal to ``expected_size`` when given), and every spike's x, y lie
    inside ``sensor_size`` (overflow records, y == 240, are exempt).
    """
    path = Path(path)
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DatasetCorruptError(f"{path}: cannot read N-MNIST file: {exc}") from None
    if raw.size == 0:
        raise DatasetCorruptError(f"{path}: empty N-MNIST file (no events)")
    if raw.size % BYTES_PER_EVENT:
        raise DatasetCorruptError(f"{path}: {raw.size} bytes is not a multiple of {BYTES_PER_EVENT} "
                                  "(N-MNIST events are 40 bits): truncated or not an N-MNIST file")
    if expected_size is not None and raw.size != expected_size:
        raise DatasetCorruptError(f"{path}: {raw.size} bytes, but the dataset manifest records {expected_size} "
                                  "(truncated or overwritten file)")
    x, y = raw[0::BYTES_PER_EVENT], raw[1::BYTES_PER_EVENT]
    spikes = y != OVERFLOW_Y
    width, height = sensor_size[0], sensor_size[1]
    outside = spikes & ((x >= width) | (y >= height))
    if outside.any():
        first = int(np.argmax(outside))
        raise DatasetCorruptError(f"{path}: {int(outside.sum())} event(s) outside the {width}x{height} sensor "
                                  f"(first at event {first}: x={x[first]}, y={y[first]}): corrupt file")


def read_bin(path, sensor_size=SENSOR_SIZE, expected_size: int | None = None) -> np.ndarray:
    """Validate ``path`` with :func:`check_bin`, then read it with ``tonic.io.read_mnist_file``."""
    from tonic.io import read_mnist_file

    check_bin(path, sensor_size, expected_size)
    return read_mnist_file(str(path), dtype=EVENT_DTYPE)
