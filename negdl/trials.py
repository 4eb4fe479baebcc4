"""One trial of a sweep: its parameters and folder, and how it runs wherever a backend puts it.

A trial function takes a :class:`Trial` and returns its result tables, ``{table name: rows}``
(rows: dicts of plain values), and writes its other files into ``trial.dir``, which running it
empties first. :func:`execute_trial` is what every backend runs.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import shutil
import socket
import time
import traceback
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from negdl.interrupt import StopRequested

#: A trial's result: rows of plain values by table name.
Tables = dict[str, list[dict[str, Any]]]
#: What a trial prints, and its record (parameters, settings, status, tables) once it ended.
LOG_NAME, RECORD_NAME = "trial.log", "trial.json"
_TABLE_NAME = re.compile(r"[A-Za-z0-9_-]+")
T = TypeVar("T")
_PROCESS_CACHE: dict[Hashable, Any] = {}


@dataclass(frozen=True)
class Trial:
    """One point of a sweep's grid: its ``params`` (e.g. ``{"seed": 0}``), its stable ``name``
    (e.g. ``seed0``, a relative path under the sweep's root) and that folder, ``dir``."""

    params: Mapping[str, Any]
    name: str
    dir: Path

    @property
    def log_path(self) -> Path:
        return self.dir / LOG_NAME

    def __str__(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in self.params.items())


@dataclass(frozen=True)
class TrialOutcome:
    """How one run of a trial ended: its ``tables`` (None if it failed) or ``error`` (the
    traceback), wall time, what it printed to stdout and the machine it ran on."""

    trial: Trial
    tables: Tables | None
    error: str | None
    seconds: float
    output: str
    host: str

    @property
    def failed(self) -> bool:
        return self.error is not None


def plain_value(value: Any) -> Any:
    """``value`` as JSON can hold it: numpy and torch scalars become Python numbers."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} {value!r} is not a plain value (number, text, bool)")


def plain_tables(tables: Any) -> Tables:
    """A trial function's result as plain JSON data, as it reads back from the record; a
    ``TypeError`` if it is not ``{table name: [row dict, ...]}`` of plain values."""
    if not isinstance(tables, Mapping):
        raise TypeError(
            f"a trial function must return {{table name: rows}}, got {type(tables).__name__}"
        )
    for name, rows in tables.items():
        if not isinstance(name, str) or not _TABLE_NAME.fullmatch(name):
            raise TypeError(f"table names are letters, digits, _ and -, got {name!r}")
        if isinstance(rows, (str, bytes, Mapping)) or not all(
            isinstance(row, Mapping) for row in rows
        ):
            raise TypeError(f"table {name!r} must be a list of row dicts")
    return json.loads(json.dumps(tables, default=plain_value))


class _Tee(io.TextIOBase):
    """A text stream writing to several others."""

    def __init__(self, *streams: io.TextIOBase) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def execute_trial(function: Callable[[Trial], Any], trial: Trial) -> TrialOutcome:
    """Run ``function(trial)`` in an empty ``trial.dir``, what it prints going to its log (and
    stdout also to the outcome). An exception is the trial's failure (its traceback in the log
    and the outcome); ``StopRequested`` passes through: the trial is dropped, not failed."""
    if trial.dir.exists():
        shutil.rmtree(trial.dir)
    trial.dir.mkdir(parents=True)
    output = io.StringIO()
    start = time.perf_counter()
    error = tables = None
    with open(trial.log_path, "w", buffering=1) as log:
        log.write(f"trial {trial.name}: {trial} on {socket.gethostname()}\n")
        with contextlib.redirect_stdout(_Tee(log, output)), contextlib.redirect_stderr(log):
            try:
                tables = plain_tables(function(trial))
            except StopRequested:
                raise
            except Exception:
                error = traceback.format_exc()
                log.write(error)
        seconds = time.perf_counter() - start
        log.write(f"trial {trial.name}: {'failed' if error else 'finished'} in {seconds:.1f} s\n")
    return TrialOutcome(trial, tables, error, seconds, output.getvalue(), socket.gethostname())


def failed_outcome(trial: Trial, error: BaseException) -> TrialOutcome:
    """The outcome of a trial that could not run or report back (its worker died, it was
    cancelled): the error alone stands in for its traceback (the driver's stack says nothing)."""
    text = "".join(traceback.format_exception_only(error))
    return TrialOutcome(trial, None, text, math.nan, "", "")


def cached_per_process(key: Hashable, make: Callable[[], T]) -> T:
    """``make()``, made once per process for ``key`` (e.g. ``repr(args)``), so that the trials
    one process runs share what it loads, e.g. a dataset. Only the latest key's value is kept;
    the cache lives in this module, so a trial function Ray pickles does not carry it along."""
    if key not in _PROCESS_CACHE:
        _PROCESS_CACHE.clear()
        _PROCESS_CACHE[key] = make()
    return _PROCESS_CACHE[key]
