"""Result tables: long-format rows to CSV, and mean +- std summaries to markdown."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import platform
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # writing tables does not load torch
    import torch

Row = Mapping[str, object]


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` whole or not at all: into a temporary file beside it, then
    renamed over it, so an interrupted or aborted run never leaves a half-written file."""
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.partial")
    partial.write_text(text, newline="")
    os.replace(partial, destination)
    return destination


def format_number(value: float, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals, never a negative zero (``-0.00`` reads as a loss)."""
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def write_csv(rows: Sequence[Row], path: str | os.PathLike[str]) -> Path:
    """Write rows (dicts) to ``path`` as CSV (atomically). The columns are every row's keys in
    first-seen order; a row without one of them (a baseline's training figures) leaves it empty."""
    if not rows:
        raise ValueError("no rows to write")
    buffer = io.StringIO()
    columns = list(dict.fromkeys(key for row in rows for key in row))
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(path, buffer.getvalue())


def mean_std(values: Sequence[float], digits: int = 2) -> str:
    """``mean ± std`` over seeds (sample std), the mean alone for one value, ``-`` for none."""
    if not values:
        return "-"
    if len(values) == 1:
        return format_number(values[0], digits)
    return (
        f"{format_number(statistics.mean(values), digits)} ± "
        f"{format_number(statistics.stdev(values), digits)}"
    )


def markdown_table(rows: Sequence[Row], row_key: str, column_key: str, value_key: str) -> str:
    """Pivot rows into a markdown table of ``mean +- std`` of ``value_key``, in first-seen order."""
    cells: dict[tuple[object, object], list[float]] = defaultdict(list)
    for row in rows:
        cells[row[row_key], row[column_key]].append(float(row[value_key]))  # type: ignore[arg-type]
    row_names = dict.fromkeys(name for name, _ in cells)
    column_names = dict.fromkeys(column for _, column in cells)
    lines = [
        "| " + " | ".join([row_key, *map(str, column_names)]) + " |",
        "| --- |" + " ---: |" * len(column_names),
    ]
    for name in row_names:
        values = [
            mean_std(cells[name, column]) if cells[name, column] else "" for column in column_names
        ]
        lines.append("| " + " | ".join([str(name), *values]) + " |")
    return "\n".join(lines)


def comparison_table(
    rows: Sequence[Row],
    source: Mapping[Any, Mapping[Any, float]],
    outer_key: str,
    inner_key: str,
    value_key: str = "accuracy",
) -> str:
    """A markdown table of a source's published numbers, ``{outer: {inner: value}}`` (e.g.
    ``{"full": {"SN": 99.13}}``), next to our mean over ``rows`` of ``value_key``, the rows
    matched by their ``outer_key`` and ``inner_key`` (e.g. ``test_set`` and ``mode``)."""
    ours: dict[tuple[object, object], list[float]] = defaultdict(list)
    for row in rows:
        ours[row[outer_key], row[inner_key]].append(float(row[value_key]))  # type: ignore[arg-type]
    lines = [
        f"| {outer_key.replace('_', ' ')} | {inner_key.replace('_', ' ')} | source | ours (mean) | difference |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for outer, by_inner in source.items():
        for inner, published in by_inner.items():
            if ours[outer, inner]:
                mean = statistics.mean(ours[outer, inner])
                lines.append(
                    f"| {outer} | {inner} | {published:.2f} | {mean:.2f} | {mean - published:+.2f} |"
                )
    return "\n".join(lines)


def cpu_description() -> str:
    """The CPU's model name and the number of cores this process may use."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"CPU {cpu}, {cores} cores available"


def machine_description(device: torch.device) -> str:
    """One line naming the hardware a torch result was measured on."""
    import torch

    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA), torch {torch.__version__}"
    return (
        f"{cpu_description()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )
