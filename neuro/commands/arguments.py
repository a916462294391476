"""Argument types for command-line numbers: a bad value is one argparse error naming the option.

``--steps 0`` or ``--timeout nan`` must not run with a silently replaced or meaningless value.
"""

from __future__ import annotations

import argparse
import math


def _bounded(kind, low: float, low_inclusive: bool, what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if (kind is float and not math.isfinite(value)) or value < low or (value == low and not low_inclusive):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = what
    return parse


positive_int = _bounded(int, 1, True, "an integer >= 1")
non_negative_int = _bounded(int, 0, True, "an integer >= 0")
positive_float = _bounded(float, 0.0, False, "a finite number > 0")
non_negative_float = _bounded(float, 0.0, True, "a finite number >= 0")
