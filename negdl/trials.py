"""One trial of a sweep: its parameters and folder, and how it runs wherever a backend puts it.

A trial function takes a :class:`Trial` and returns its result tables, ``{table name: rows}``
(each row a dict of plain values), e.g. ``{"results": [{"seed": 0, "accuracy": 98.1}]}``. It
writes whatever else it makes (TensorBoard runs, checkpoints) into ``trial.dir``, the folder the
trial owns: running a trial again empties it first.

:func:`execute_trial` is what every backend runs, in this process, in a worker process or in a
Ray task: it empties the trial's folder, sends what the trial prints to ``trial.log`` there
(stdout is also kept, so the sweep can show it once the trial is done), catches any exception as
the trial's failure and returns a picklable :class:`TrialOutcome`.
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
#: What a trial prints (stdout and stderr), written as it runs.
LOG_NAME = "trial.log"
#: The trial's record, written when it has ended: its parameters, settings, status and tables.
RECORD_NAME = "trial.json"
_TABLE_NAME = re.compile(r"[A-Za-z0-9_-]+")
T = TypeVar("T")
_PROCESS_CACHE: dict[Hashable, Any] = {}


@dataclass(frozen=True)
class Trial:
    """One point of a sweep's grid.

    :param params: the grid's value of every axis for this trial, e.g. ``{"seed": 0}``.
    :param name: the trial's stable name, made from ``params`` by the sweep (e.g. ``seed0``); a
        relative path, its folder under the sweep's root.
    :param dir: that folder: the trial's own files, its log and its record.
    """

    params: Mapping[str, Any]
    name: str
    dir: Path

    @property
    def log_path(self) -> Path:
        """Where what the trial prints goes."""
        return self.dir / LOG_NAME

    def __str__(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in self.params.items())


@dataclass(frozen=True)
class TrialOutcome:
    """How one run of a trial ended.

    :param trial: the trial.
    :param tables: its result tables as plain JSON data, or None if it failed.
    :param error: the traceback of its failure, or None.
    :param seconds: its wall time.
    :param output: what it printed to stdout.
    :param host: the machine it ran on.
    """

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
    """Check a trial function's result and return it as plain JSON data (tuples become lists,
    numpy numbers Python numbers), exactly as it reads back from the trial's record.

    :raises TypeError: it is not ``{table name: [row dict, ...]}`` of plain values.
    """
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
    """Run ``function(trial)`` in an empty ``trial.dir`` with its output going to its log.

    An exception is the trial's failure: its traceback goes to the log and the outcome. A
    :class:`~negdl.interrupt.StopRequested` (a stop asked for while an in-process trial runs)
    passes through: the trial is dropped, not failed.

    :param function: the trial function.
    :param trial: the trial to run.
    """
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


def failed_outcome(trial: Trial, error: BaseException | str) -> TrialOutcome:
    """The outcome of a trial that could not run or report back (its worker died, it was
    cancelled): the error stands in for its traceback."""
    # Only the error itself: the driver's stack where it surfaced says nothing about the trial.
    text = error if isinstance(error, str) else "".join(traceback.format_exception_only(error))
    return TrialOutcome(trial, None, text, math.nan, "", "")


def cached_per_process(key: Hashable, make: Callable[[], T]) -> T:
    """``make()``, made once per process for ``key``: the trials a process runs one after
    another (in-process, or in one pool or Ray worker) share what it loads, e.g. a dataset.

    Only the latest key's value is kept. The cache lives in this module, so a trial function
    that Ray pickles by value does not carry the driver's cached data along.

    :param key: what the value depends on, e.g. ``repr(args)``.
    :param make: builds the value.
    """
    if key not in _PROCESS_CACHE:
        _PROCESS_CACHE.clear()
        _PROCESS_CACHE[key] = make()
    return _PROCESS_CACHE[key]
