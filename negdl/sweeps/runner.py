"""The runner of a sweep: its trials, where their records go, and how a restarted sweep resumes.

A finished trial's record (``trial.json``: parameters, settings, time, machine, tables) and its
tables as CSV are written as soon as it ends, so a restarted sweep runs only the rest (a record
made with other ``settings`` is an error, not reused); a trial that raises is reported and the
others go on; the first Ctrl-C or SIGTERM drops the trials in flight and raises
:class:`~negdl.interrupt.Stopped`.
"""

from __future__ import annotations

import datetime
import json
import math
import signal
import string
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm.auto import tqdm

from negdl.errors import UserError
from negdl.interrupt import StopOnSignal, Stopped
from negdl.results import write_csv, write_text_atomic
from negdl.sweep_backends import Backend, InProcess
from negdl.sweeps.grid import Grid
from negdl.trials import LOG_NAME, RECORD_NAME, Tables, Trial, TrialOutcome


class _NameFormatter(string.Formatter):
    """``str.format`` that writes a tuple as its parts joined by ``-``: ``(0, 1)`` -> ``0-1``."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, tuple):
            return "-".join(format(part, format_spec) for part in value)
        return super().format_field(value, format_spec)


def _check_names(names: Sequence[str]) -> None:
    for name in names:
        parts = PurePosixPath(name).parts  # "." parts are dropped: "." itself has none
        if not parts or name.startswith("/") or ".." in parts or "\\" in name or "\0" in name:
            raise ValueError(
                f"trial name {name!r} must be a relative path without '.' or '..' parts"
            )
    if len(set(names)) != len(names):
        twice = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f"trial names must differ, but {twice} name several trials")
    folders = set(names)
    for name in names:
        for parent in PurePosixPath(name).parents:
            if str(parent) in folders:
                raise ValueError(f"trial {name!r} would lie inside trial {str(parent)!r}")


def plain(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists): how a record holds it."""
    return json.loads(json.dumps(value))


class TrialsFailed(UserError):
    """Some trials of a sweep raised; the others finished and their results are kept."""


@dataclass
class SweepResult:
    """The trials of a sweep (in grid order) and, by trial name, the tables of those that
    finished, the traceback of those that failed and the known wall times; ``resumed`` names
    those that had finished before this run, ``backend`` and ``slots`` say how trials ran."""

    trials: list[Trial]
    finished: dict[str, Tables] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    resumed: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    backend: str = ""
    slots: int = 1

    @property
    def complete(self) -> bool:
        return len(self.finished) == len(self.trials)

    def summary(self) -> str:
        """One sentence for reports: how many trials finished, where they ran."""
        earlier = f", {len(self.resumed)} of them in an earlier run" if self.resumed else ""
        failed = f", {len(self.failed)} failed" if self.failed else ""
        ran = f"; trials ran {self.backend}" if self.backend else ""
        return f"{len(self.finished)} of {len(self.trials)} trials finished{earlier}{failed}{ran}."

    def rows(self, table: str) -> list[dict[str, Any]]:
        """The rows of ``table`` of every finished trial, in grid order."""
        return [
            row
            for trial in self.trials
            if trial.name in self.finished
            for row in self.finished[trial.name].get(table, [])
        ]

    def raise_for_failures(self) -> None:
        """Raise :class:`TrialsFailed` naming each failed trial, if any failed."""
        if not self.failed:
            return
        by_name = {trial.name: trial for trial in self.trials}
        lines = [
            f"{name} ({by_name[name]}): {error.strip().splitlines()[-1]} "
            f"(traceback in {by_name[name].log_path})"
            for name, error in self.failed.items()
        ]
        raise TrialsFailed(
            f"{len(self.failed)} of {len(self.trials)} trials failed; the others' results are "
            "written, and running the same command again runs only the unfinished ones:\n  "
            + "\n  ".join(lines)
        )


@dataclass
class Sweep:
    """A trial function over a grid, with every trial's files under one results folder.

    :param function: ``function(trial) -> {table name: rows}``, its other files into
        ``trial.dir``; for ``processes`` a module-level function or a ``functools.partial``.
    :param root: the results folder; trial ``t`` owns ``root / t.name``.
    :param name: a trial's name: a format string over the axes (``"n{num_obstacles}/s{seed}"``,
        a tuple written ``0-1-2``), a function of the parameters, or None: ``axis=value/...``.
    :param settings: the trials' fixed settings (plain data); a trial finished with other
        settings is not reused.
    """

    function: Callable[[Trial], Any]
    grid: Grid
    root: str | Path
    name: str | Callable[[dict[str, Any]], str] | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)

    def trials(self) -> list[Trial]:
        """Every trial of the grid, in grid order."""
        params = list(self.grid)
        name = self.name
        if name is None:
            name = "/".join(f"{axis}={{{axis}}}" for axis in self.grid.axes)
        if isinstance(name, str):
            try:
                names = [_NameFormatter().format(name, **p) for p in params]
            except (KeyError, IndexError) as error:
                raise ValueError(
                    f"trial name {name!r} uses {error}, which is not a grid axis "
                    f"({', '.join(self.grid.axes)})"
                ) from None
        else:
            names = [name(dict(p)) for p in params]
        _check_names(names)
        return [Trial(p, n, Path(self.root) / n) for p, n in zip(params, names, strict=True)]

    def run(
        self,
        backend: Backend | None = None,
        *,
        prog: str = "sweep",
        progress: bool = True,
        resume: bool = True,
        on_update: Callable[[SweepResult], None] | None = None,
    ) -> SweepResult:
        """Run every trial that has not finished (all with ``resume=False``) on ``backend``
        (default in-process) and return what has; ``on_update(result)`` after each finished
        trial, and at the start when some had finished before.

        :raises Stopped: on the first SIGINT/SIGTERM, after dropping the trials in flight.
        """
        backend = backend or InProcess()
        trials = self.trials()
        settings = plain(dict(self.settings))
        result = SweepResult(trials, slots=backend.slots)
        for trial in trials:
            record = self._finished_record(trial, settings) if resume else None
            if record is not None:
                result.finished[trial.name] = record["tables"]
                result.resumed.append(trial.name)
                if isinstance(record.get("seconds"), (int, float)):
                    result.seconds[trial.name] = float(record["seconds"])
            else:
                _check_owned(trial)
        pending = [trial for trial in trials if trial.name not in result.finished]
        bar = tqdm(
            total=len(trials),
            initial=len(result.finished),
            desc=f"{prog} trials",
            unit="trial",
            disable=not progress,
            dynamic_ncols=True,
        )
        if result.resumed:
            bar.write(
                f"{prog}: {len(result.resumed)} of {len(trials)} trials had finished "
                f"under {self.root}, running the other {len(pending)}",
                file=sys.stderr,
            )
            if on_update:
                on_update(result)
        stop = StopOnSignal(prog)
        try:
            if pending:  # a finished sweep does not start workers or join a Ray cluster
                with backend:
                    result.backend, result.slots = backend.describe(), backend.slots
                    with stop:
                        for outcome in backend.run(self.function, pending, stop):
                            self._record(outcome, settings, result, bar)
                            if on_update and not outcome.failed:
                                on_update(result)
        finally:
            bar.close()
        if stop.requested:
            raise Stopped(
                stop.signal_number or signal.SIGINT,
                f"kept the {len(result.finished)} finished trials of {len(trials)} under "
                f"{self.root} (the trials in flight were dropped); the same command runs the rest",
            )
        return result

    def _finished_record(self, trial: Trial, settings: Mapping[str, Any]) -> dict | None:
        """The trial's record if it finished (with other settings: an error), else None."""
        try:
            record = json.loads((trial.dir / RECORD_NAME).read_text())
        except (OSError, ValueError):
            return None
        if record.get("status") != "finished" or record.get("params") != plain(dict(trial.params)):
            return None
        if record.get("settings") != settings:
            old = record.get("settings", {})
            changed = sorted(
                key for key in {*old, *settings} if old.get(key, "-") != settings.get(key, "-")
            )
            was = ", ".join(f"{key}={old.get(key, '-')!r}" for key in changed)
            now = ", ".join(f"{key}={settings.get(key, '-')!r}" for key in changed)
            raise UserError(
                f"trial {trial.name} in {trial.dir} finished with other settings ({was}; now "
                f"{now}); give another output folder, or --no-resume to run every trial again"
            )
        return record

    def _record(
        self, outcome: TrialOutcome, settings: Mapping[str, Any], result: SweepResult, bar: tqdm
    ) -> None:
        """Write the outcome's record and tables, and report it."""
        trial = outcome.trial
        record: dict[str, Any] = {
            "name": trial.name,
            "params": dict(trial.params),
            "settings": settings,
            "status": "failed" if outcome.failed else "finished",
            "seconds": outcome.seconds if math.isfinite(outcome.seconds) else None,
            "host": outcome.host,
            "ended": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        if outcome.failed:
            result.failed[trial.name] = outcome.error or ""
            record["error"] = outcome.error
            bar.write(
                f"{outcome.output}trial {trial.name} ({trial}) failed:\n{outcome.error}",
                file=sys.stderr,
            )
        else:
            assert outcome.tables is not None
            for table, rows in outcome.tables.items():
                if rows:
                    write_csv(rows, trial.dir / f"{table}.csv")
            record["tables"] = outcome.tables
            result.finished[trial.name] = outcome.tables
            result.seconds[trial.name] = outcome.seconds  # only failed_outcome has no time
            if outcome.output:
                bar.write(outcome.output.rstrip("\n"))
        # Written last and whole: its "finished" is what a restarted sweep trusts.
        write_text_atomic(trial.dir / RECORD_NAME, json.dumps(record, indent=1))
        bar.update()
        if result.failed:
            bar.set_postfix(failed=len(result.failed))


def _check_owned(trial: Trial) -> None:
    """Refuse to run a trial whose folder holds files no sweep wrote: running it empties it."""
    if not trial.dir.exists():
        return
    if not trial.dir.is_dir():
        raise UserError(f"{trial.dir} is a file, but trial {trial.name} needs it as its folder")
    made_by_sweep = (trial.dir / LOG_NAME).exists() or (trial.dir / RECORD_NAME).exists()
    if not made_by_sweep and any(trial.dir.iterdir()):
        raise UserError(
            f"{trial.dir} holds files that no sweep wrote (a run of an older version?), and "
            f"trial {trial.name} empties its folder before it runs: move them away or give "
            "another output folder"
        )
