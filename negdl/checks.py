"""Argument checks with one style of message: the argument, the value, the allowed range.

``check_int("batch_size", 0, low=1)`` raises ``ValueError: batch_size must be an integer >= 1,
got 0``; a value of the wrong type raises ``ArgumentTypeError`` (a ``TypeError``) with the same
wording. Each returns the value as the plain Python type.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np

from negdl.errors import UserError


class ArgumentTypeError(TypeError, UserError):
    """An argument of the wrong type: a ``TypeError``, and a ``UserError`` so that commands print
    it as one ``error:`` line, while a ``TypeError`` from a bug keeps its traceback."""


def _refuse(wanted: str, value: Any, wrong_type: bool, *bounds: Any) -> NoReturn:
    """Raise the error for ``value``: ``ArgumentTypeError`` for a wrong type, else ``ValueError``;
    built only on failure, as checks also run on every env step."""
    low, high, low_open, high_open = bounds

    def text(bound: float) -> str:
        return str(bound) if isinstance(bound, int) else f"{bound:g}"

    if low is not None and high is not None:
        wanted += (
            f" in {'(' if low_open else '['}{text(low)}, {text(high)}{')' if high_open else ']'}"
        )
    elif low is not None:
        wanted += f" {'>' if low_open else '>='} {text(low)}"
    elif high is not None:
        wanted += f" {'<' if high_open else '<='} {text(high)}"
    if wrong_type:
        raise ArgumentTypeError(f"{wanted}, got {type(value).__name__} {value!r}")
    raise ValueError(f"{wanted}, got {value!r}")


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer (not a bool) in ``[low, high]`` (None: no
    bound); ``name`` is the argument's, for the message."""
    wrong_type = isinstance(value, bool) or not isinstance(value, numbers.Integral)
    if wrong_type or (low is not None and value < low) or (high is not None and value > high):
        _refuse(f"{name} must be an integer", value, wrong_type, low, high, False, False)
    return int(value)


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
    """``value`` as a ``float`` if it is a real number (not a bool, not NaN, finite unless
    ``allow_inf``) within the bounds (None: none; ``low_open``/``high_open`` exclude them)."""
    wrong_type = isinstance(value, bool) or not isinstance(value, numbers.Real)
    number = math.nan if wrong_type else float(value)
    bad = math.isnan(number) or (math.isinf(number) and not allow_inf)
    if low is not None:
        bad = bad or number < low or (low_open and number == low)
    if high is not None:
        bad = bad or number > high or (high_open and number == high)
    if bad:
        wanted = f"{name} must be a {'' if allow_inf else 'finite '}number"
        _refuse(wanted, value, wrong_type, low, high, low_open, high_open)
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


def check_distinct(option: str, values: Sequence[object]) -> None:
    """Refuse an option that gives one value twice, numbers compared by the ``:g`` names their
    runs get (values equal to 6 significant digits would share a run, one replacing the other)."""
    names = [f"{value:g}" if isinstance(value, float) else str(value) for value in values]
    if len(set(names)) != len(names):
        raise ValueError(
            f"give each of --{option.replace('_', '-')} once (numbers must differ in their first 6 "
            f"significant digits), got {list(values)}"
        )
