"""Refuse requests that would need more memory than the machine can give, before allocating.

Parameters inside their ranges can still ask for terabytes (many sub-envs x 100,000 obstacles).
Code about to allocate much estimates the size and calls :func:`check_memory`, which raises
:class:`MemoryLimitError` with the size, the limit and what to change. The limit is
:data:`MEMORY_FRACTION` of the memory available now; ``NEGDL_MEMORY_LIMIT`` (``64GiB``,
``500MB``, ``2e9``) overrides it.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

#: Environment variable that sets the limit explicitly.
MEMORY_LIMIT_ENV = "NEGDL_MEMORY_LIMIT"
#: Share of the currently available memory one request may take.
MEMORY_FRACTION = 0.8

_UNITS = {"": 1, "B": 1}
_UNITS.update({f"{prefix}B": 1000**power for power, prefix in enumerate("KMGT", start=1)})
_UNITS.update({f"{prefix}IB": 1024**power for power, prefix in enumerate("KMGT", start=1)})


class MemoryLimitError(ValueError):
    """A request would need more memory than the limit allows."""


def format_bytes(count: float) -> str:
    """``1536`` -> ``"1.5 KiB"``; binary units up to TiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def parse_bytes(text: str) -> int:
    """``"64GiB"``, ``"500 MB"``, ``"2e9"`` -> a number of bytes, >= 1 (else ``ValueError``)."""
    match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).upper() if match else ""
    try:
        value = float(match.group(1)) * _UNITS[unit] if match else float("nan")
    except (ValueError, KeyError):
        value = float("nan")
    if not value >= 1 or value == float("inf"):
        raise ValueError(
            f"{MEMORY_LIMIT_ENV}={text!r} is not a memory size; use e.g. 64GiB, 500MB or 2e9 (bytes)"
        )
    return int(value)


def available_memory() -> int:
    """Bytes of memory available to new allocations now (``MemAvailable`` on Linux)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return 2**63 - 1  # unknown: no limit rather than a wrong one


def memory_limit() -> tuple[int, str]:
    """The limit in bytes and where it comes from (for error messages)."""
    text = os.environ.get(MEMORY_LIMIT_ENV)
    if text:
        return parse_bytes(text), f"{MEMORY_LIMIT_ENV}={text}"
    available = available_memory()
    return (
        int(MEMORY_FRACTION * available),
        f"{MEMORY_FRACTION:.0%} of the {format_bytes(available)} available now; "
        f"set {MEMORY_LIMIT_ENV} to change it",
    )


def check_memory(needed: float, what: str, fix: str) -> None:
    """Raise :class:`MemoryLimitError` if ``needed`` bytes exceed :func:`memory_limit`; the
    message says ``what`` would be allocated and the ``fix`` (what to change)."""
    limit, source = memory_limit()
    if needed > limit:
        raise MemoryLimitError(
            f"{what} would need {format_bytes(needed)}, more than the limit of "
            f"{format_bytes(limit)} ({source}); {fix}"
        )
