"""``key=value`` options on the command line (env options, hyperparameter overrides)."""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from negdl.cli import parse_args

T = TypeVar("T")


def parse_options(items: Sequence[str], what: str = "option") -> dict[str, Any]:
    """``["num_obstacles=30", "obstacle_speed=(0.005, 0.02)"]`` -> a dict of Python values.

    Values are Python literals (numbers, tuples, lists, dicts, True/False/None); anything else
    is kept as a string, so ``observation=nearest`` works without quotes.
    """
    options: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"{what} {item!r} must look like name=value, e.g. num_obstacles=30")
        try:
            options[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            options[key] = text
    return options


def run_main(
    prog: str, args_class: type[T], run: Callable[[T], Any], argv: Sequence[str] | None
) -> Any:
    """Parse ``argv`` into ``args_class`` and call ``run``; a bad argument or a missing file
    ends the program with ``prog: error: ...`` instead of a traceback."""
    args = parse_args(args_class, argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"{prog}: error: {error}") from error
