"""Argument checks with one style of message: the argument, the value, the allowed range.

``check_int("batch_size", 0, low=1)`` raises ``ValueError: batch_size must be an integer >= 1,
got 0``; a value of the wrong type (a string, a float for an integer, a bool for a number)
raises ``ArgumentTypeError`` (a ``TypeError``) with the same wording. Each returns the value
converted to the plain Python type, so callers can store what they checked.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from negdl.errors import UserError


class ArgumentTypeError(TypeError, UserError):
    """An argument of the wrong type, e.g. ``learning_rate="abc"`` from a command line's
    ``name=value`` option. A ``TypeError`` for callers, and a ``UserError``, so commands
    (``negdl.cli.run_main``) print it as one ``error:`` line like a ``ValueError``, while a
    ``TypeError`` from a bug keeps its traceback."""


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    def text(bound: float) -> str:
        return str(bound) if isinstance(bound, int) else f"{bound:g}"

    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{text(low)}, {text(high)}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {text(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {text(high)}"
    return ""


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer (not a bool) in ``[low, high]``.

    :param name: the argument's name, for the message.
    :param value: what was given.
    :param low: smallest allowed value (None: no bound).
    :param high: largest allowed value (None: no bound).
    """
    wanted = f"{name} must be an integer {_bounds(low, high, False, False)}".rstrip()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{wanted}, got {type(value).__name__} {value!r}")
    number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValueError(f"{wanted}, got {value!r}")
    return number


def check_number(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> float:
    """``value`` as a ``float`` if it is a real number (not a bool, not NaN) within the bounds.

    :param name: the argument's name, for the message.
    :param value: what was given.
    :param low: lower bound (None: none).
    :param high: upper bound (None: none).
    :param low_open: exclude ``low`` itself.
    :param high_open: exclude ``high`` itself.
    :param allow_inf: accept an infinite value that the bounds allow.
    """
    wanted = f"{name} must be a {'' if allow_inf else 'finite '}number " + _bounds(
        low, high, low_open, high_open
    )
    wanted = wanted.rstrip()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{wanted}, got {type(value).__name__} {value!r}")
    number = float(value)
    bad = math.isnan(number) or (math.isinf(number) and not allow_inf)
    if low is not None:
        bad = bad or number < low or (low_open and number == low)
    if high is not None:
        bad = bad or number > high or (high_open and number == high)
    if bad:
        raise ValueError(f"{wanted}, got {value!r}")
    return number


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool (numpy's included); ``1`` or ``"yes"`` are not."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(
            f"{name} must be True or False, got {type(value).__name__} {value!r}"
        )
    return bool(value)


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> Any:
    """``value`` if it is one of ``choices``."""
    try:
        known = value in choices
    except (TypeError, ValueError):  # unhashable, uncomparable or an array
        known = False
    if not known:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value
