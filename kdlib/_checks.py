"""Argument validation shared by every kdlib module.

Each check raises ``ValueError`` / ``TypeError`` with a message that names the
argument, the value it got and what is allowed (DESIGN.md, "Bad arguments").
"""

from __future__ import annotations

import numbers


def check_int(name, value, *, low=None, high=None):
    """Return ``value`` as ``int`` if it is an integer in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    _check_range(name, value, low, high, low_open=False)
    return value


def check_float(name, value, *, low=None, high=None, low_open=False):
    """Return ``value`` as ``float`` if it is a finite real number in range.

    ``low_open=True`` excludes ``low`` itself (for "must be > 0").
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    _check_range(name, value, low, high, low_open=low_open)
    return value


def check_choice(name, value, choices):
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name}={value!r} is not supported; choose one of {allowed}")
    return value


def _check_range(name, value, low, high, *, low_open):
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and value > high
    if too_low or too_high:
        if low is not None and high is not None:
            allowed = f"{'(' if low_open else '['}{low}, {high}]"
        elif low is not None:
            allowed = f"{'>' if low_open else '>='} {low}"
        else:
            allowed = f"<= {high}"
        raise ValueError(f"{name}={value!r} is out of range; allowed: {allowed}")
