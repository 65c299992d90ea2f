"""``argparse`` types that reject out-of-range numbers with a usage error naming the value.

Shared by the command line, the training scripts and the example and tool scripts.
"""

from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type, ok, what: str) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not ok(value):  # float checks also reject nan
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    return _number(text, int, lambda v: v >= 0, "an integer >= 0")


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return _number(text, float, lambda v: v > 0 and math.isfinite(v), "a positive number")


def nonnegative_float(text: str) -> float:
    """A finite number >= 0."""
    return _number(text, float, lambda v: v >= 0 and math.isfinite(v), "a number >= 0")


def unit_float(text: str) -> float:
    """A number in [0, 1]."""
    return _number(text, float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
