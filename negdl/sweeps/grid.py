"""The grid of a sweep: every combination of named parameter values, in a fixed order."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

#: Types a grid value may have (and tuples of them): what a name and a JSON record hold exactly.
PLAIN_TYPES = (bool, int, float, str)


class Grid:
    """Every combination of named values (distinct numbers, text, bools or tuples of them), the
    first axis varying slowest: ``Grid(n=(10, 30), seed=(0, 1))`` is (10, 0), (10, 1), (30, 0),
    (30, 1)."""

    def __init__(self, **axes: Sequence[Any]) -> None:
        if not axes:
            raise ValueError("a grid needs at least one axis, e.g. Grid(seed=(0, 1, 2))")
        for axis, values in axes.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
                raise ValueError(f"grid axis {axis!r} needs a non-empty sequence, got {values!r}")
            for value in values:
                parts = value if isinstance(value, tuple) else (value,)
                if not all(isinstance(part, PLAIN_TYPES) for part in parts) or any(
                    isinstance(part, float) and not math.isfinite(part) for part in parts
                ):
                    raise ValueError(
                        f"grid axis {axis!r}: values must be numbers, text or bools (or tuples "
                        f"of them), got {value!r}"
                    )
            if len(set(values)) != len(values):
                raise ValueError(f"grid axis {axis!r} repeats a value: {list(values)}")
        self.axes: dict[str, tuple[Any, ...]] = {axis: tuple(v) for axis, v in axes.items()}
        self.keep: Callable[[dict[str, Any]], bool] | None = None

    def only(self, keep: Callable[[dict[str, Any]], bool]) -> Grid:
        """This grid without the combinations ``keep`` rejects (e.g. those that are no run)."""
        grid = Grid(**self.axes)
        grid.keep = keep
        return grid

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for values in itertools.product(*self.axes.values()):
            params = dict(zip(self.axes, values, strict=True))
            if self.keep is None or self.keep(params):
                yield params

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"Grid({', '.join(f'{axis}={values!r}' for axis, values in self.axes.items())})"
