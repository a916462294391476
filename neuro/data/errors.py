"""Errors raised by :mod:`neuro.data` for datasets that are absent or damaged on disk.

Both are ``ValueError`` subclasses, so callers that already handle bad input as
``ValueError`` (the CLI does) report them without a traceback.
"""

from __future__ import annotations


class DatasetMissingError(ValueError, FileNotFoundError):
    """Files a dataset needs are not on disk; the message lists them and where to get them.

    Raised *before* tonic would start a download (no machine here can download).
    """


class DatasetCorruptError(ValueError):
    """A dataset file exists but cannot be a valid sample; the message names the file."""
