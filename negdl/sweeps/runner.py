"""The runner of a sweep: its trials, where their records go, and how a restarted sweep resumes.

A :class:`Sweep` is a trial function, a :class:`~negdl.sweeps.grid.Grid` of named parameters
and a shared results folder. Each combination of the grid is a :class:`~negdl.trials.Trial`
with a stable name made from its parameters (``"seed{seed}"`` -> ``seed0``), which is also its
folder under the root. :meth:`Sweep.run` runs the trials that have not finished yet on a
backend (:mod:`negdl.sweep_backends`) and returns a :class:`SweepResult`:

- a finished trial's record (``<root>/<name>/trial.json``: parameters, settings, wall time,
  machine, result tables) and its tables as CSV (``<table>.csv``) are written as soon as it
  ends, so a sweep restarted after a crash or Ctrl-C runs only what had not finished (a record
  made with other ``settings`` is an error, not silently reused);
- ``on_update(result)`` is called after every finished trial (and once at the start with the
  trials finished before), so the aggregate tables a script writes there always hold every
  finished trial, in grid order;
- one progress bar counts the trials done and failed; what a trial prints goes to its
  ``trial.log`` (and its stdout, once it is done, to the console);
- a trial that raises is reported with its parameters and traceback and the others go on;
  :meth:`SweepResult.raise_for_failures` then raises :class:`TrialsFailed`;
- the first Ctrl-C or SIGTERM drops the trials in flight and raises
  :class:`~negdl.interrupt.Stopped` (``negdl.cli.run_main`` exits with 130/143); a second one
  aborts at once.
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


def default_name(params: Mapping[str, Any]) -> str:
    """``{"num_obstacles": 10, "seed": 0}`` -> ``num_obstacles=10/seed=0``."""
    return "/".join(_NameFormatter().format(f"{axis}={{{axis}}}", **params) for axis in params)


def _check_names(names: Sequence[str]) -> None:
    for name in names:
        parts = PurePosixPath(name).parts
        if (
            not parts
            or name.startswith("/")
            or any(part in (".", "..") for part in parts)
            or "\\" in name
            or "\0" in name
        ):
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
    """The trials of a sweep and the tables of those that have finished.

    :param trials: every trial, in grid order.
    :param finished: result tables of the finished trials, by trial name.
    :param failed: traceback of each failed trial, by trial name.
    :param resumed: names of the trials that had finished before this run.
    :param seconds: wall time of each finished trial (from its record for a resumed one), by
        trial name; unknown times are left out.
    :param root: the sweep's results folder.
    :param backend: how the trials ran (``Backend.describe``).
    :param slots: how many trials run at once (the backend's, also when every trial had
        finished before; Ray's is known once it starts).
    """

    trials: list[Trial]
    finished: dict[str, Tables] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    resumed: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    root: Path = Path(".")
    backend: str = ""
    slots: int = 1

    @property
    def complete(self) -> bool:
        """Every trial has finished."""
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

    :param function: ``function(trial) -> {table name: rows}``; it writes its other files into
        ``trial.dir``. For ``processes`` it must pickle: a module-level function, or
        ``functools.partial`` of one (Ray also takes closures).
    :param grid: the parameters of the trials.
    :param root: the shared results folder; trial ``t`` owns ``root / t.name``.
    :param name: a trial's name from its parameters: a format string over the axis names
        (``"n{num_obstacles}/{algo}/s{seed}"``; a tuple value is written ``0-1-2``) or a
        function of the parameters dict; by default ``axis=value`` parts joined by ``/``.
    :param settings: the fixed settings of the trials (plain data, e.g. the epochs); a trial
        finished with other settings is not reused.
    """

    function: Callable[[Trial], Any]
    grid: Grid
    root: str | Path
    name: str | Callable[[dict[str, Any]], str] | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)

    def trials(self) -> list[Trial]:
        """Every trial of the grid, in grid order."""
        params = list(self.grid)
        if self.name is None:
            names = [default_name(p) for p in params]
        elif isinstance(self.name, str):
            try:
                names = [_NameFormatter().format(self.name, **p) for p in params]
            except (KeyError, IndexError) as error:
                raise ValueError(
                    f"trial name {self.name!r} uses {error}, which is not a grid axis "
                    f"({', '.join(self.grid.axes)})"
                ) from None
        else:
            names = [self.name(dict(p)) for p in params]
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
        """Run every trial that has not finished; return what has.

        :param backend: where trials run (default: :class:`~negdl.sweep_backends.InProcess`).
        :param prog: the command's name, in messages.
        :param progress: show the sweep's progress bar.
        :param resume: reuse the trials finished by an earlier run (False: run all again).
        :param on_update: called with the result after each finished trial, and at the start
            when some had finished before.
        :raises Stopped: on the first SIGINT/SIGTERM, after dropping the trials in flight.
        """
        backend = backend or InProcess()
        trials = self.trials()
        settings = plain(dict(self.settings))
        result = SweepResult(trials, root=Path(self.root), slots=backend.slots)
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
        stop = None
        try:
            if pending:  # a finished sweep does not start workers or join a Ray cluster
                with backend:
                    result.backend, result.slots = backend.describe(), backend.slots
                    with StopOnSignal(prog) as stop:
                        for outcome in backend.run(self.function, pending, stop):
                            self._record(outcome, settings, result, bar)
                            if on_update and not outcome.failed:
                                on_update(result)
        finally:
            bar.close()
        if stop is not None and stop.requested:
            raise Stopped(
                stop.signal_number or signal.SIGINT,
                f"kept the {len(result.finished)} finished trials of {len(trials)} under "
                f"{self.root} (the trials in flight were dropped); the same command runs the rest",
            )
        return result

    def _finished_record(self, trial: Trial, settings: Mapping[str, Any]) -> dict | None:
        """The trial's record if it finished with these settings (None if it did not finish)."""
        path = trial.dir / RECORD_NAME
        try:
            record = json.loads(path.read_text())
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
        self,
        outcome: TrialOutcome,
        settings: Mapping[str, Any],
        result: SweepResult,
        bar: tqdm,
    ) -> None:
        """Write the outcome's record and tables, and report it."""
        trial = outcome.trial
        record = {
            "name": trial.name,
            "params": dict(trial.params),
            "settings": settings,
            "status": "failed" if outcome.failed else "finished",
            "seconds": outcome.seconds if math.isfinite(outcome.seconds) else None,
            "host": outcome.host,
            "ended": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        trial.dir.mkdir(parents=True, exist_ok=True)
        if outcome.failed:
            result.failed[trial.name] = outcome.error or ""
            write_text_atomic(
                trial.dir / RECORD_NAME, json.dumps({**record, "error": outcome.error}, indent=1)
            )
            bar.write(
                f"{outcome.output}trial {trial.name} ({trial}) failed:\n{outcome.error}",
                file=sys.stderr,
            )
        else:
            assert outcome.tables is not None
            for table, rows in outcome.tables.items():
                if rows:
                    write_csv(rows, trial.dir / f"{table}.csv")
            # Written last and whole: its "finished" is what a restarted sweep trusts.
            write_text_atomic(
                trial.dir / RECORD_NAME, json.dumps({**record, "tables": outcome.tables}, indent=1)
            )
            result.finished[trial.name] = outcome.tables
            if math.isfinite(outcome.seconds):
                result.seconds[trial.name] = outcome.seconds
            if outcome.output:
                bar.write(outcome.output.rstrip("\n"))
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
