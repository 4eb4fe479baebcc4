"""Stop long work cleanly on Ctrl-C or ``kill``: the first SIGINT/SIGTERM asks to stop, the second aborts.

Inside ``with StopOnSignal(prog) as stop`` the first signal only records a request (and says so
on stderr); the work checks ``stop.requested`` or calls ``stop.check()`` where stopping is safe
and keeps what it has. Work with no safe point of its own runs inside ``stop.raising()``, where a
request raises :class:`StopRequested` at once. A second signal aborts: one line, child processes
terminated, exit status ``128 + signal`` (130 for SIGINT, 143 for SIGTERM). The pattern::

    with StopOnSignal("my_script.py") as stop:
        for seed in args.seeds:
            with stop.raising():  # training has no safe point: stop it where it is
                rows.append(train_and_evaluate(seed))
            write_csv(rows, out / "results.csv")  # each finished unit is on disk
            stop.check()  # raises StopRequested, which the with block swallows
    if stop.requested:
        stop.exit(f"kept {len(rows)} rows in {out / 'results.csv'}")

Library code raises :class:`Stopped` instead, which ``negdl.cli.run_main`` reports the same way.
Worker processes should ignore SIGINT (Ctrl-C reaches the whole process group).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any, NoReturn


class StopRequested(Exception):
    """Raised where work stops because a stop was requested (``StopOnSignal`` swallows it)."""


class Stopped(Exception):
    """Work stopped on signal ``signal_number``, keeping what ``kept`` says."""

    def __init__(self, signal_number: int, kept: str) -> None:
        super().__init__(kept)
        self.signal_number = signal_number
        self.kept = kept

    def exit(self, prog: str) -> NoReturn:
        """Print ``prog: stopped by SIGINT: <kept>`` and exit with status ``128 + signal``."""
        name = signal.Signals(self.signal_number).name
        print(f"{prog}: stopped by {name}: {self.kept}", file=sys.stderr, flush=True)
        raise SystemExit(128 + self.signal_number)


def terminate_child_processes() -> None:
    """Terminate the worker processes this process started through ``multiprocessing``."""
    for child in multiprocessing.active_children():
        child.terminate()


class StopOnSignal:
    """Turn the first SIGINT/SIGTERM into a stop request and the second into an abort (see the
    module docstring). Handlers are installed in the main thread only, where Python delivers
    signals.

    :param prog: the command's name, at the start of every message.
    """

    def __init__(self, prog: str) -> None:
        self.prog = prog
        self.signal_number: int | None = None
        self._previous: dict[int, Any] = {}
        self._raising = False

    @property
    def requested(self) -> bool:
        return self.signal_number is not None

    @property
    def signal_name(self) -> str:
        """``"SIGINT"`` or ``"SIGTERM"`` (empty while no stop was requested)."""
        return signal.Signals(self.signal_number).name if self.signal_number else ""

    @property
    def exit_status(self) -> int:
        return 128 + (self.signal_number or signal.SIGINT)

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> bool:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()
        return exc_type is not None and issubclass(exc_type, StopRequested)

    def _handle(self, number: int, frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        console = sys.__stderr__ or sys.stderr  # also while sys.stderr goes to a trial's log
        if self.requested:
            print(
                f"{self.prog}: {name} again: aborting now, unfinished work is lost",
                file=console,
                flush=True,
            )
            terminate_child_processes()
            os._exit(128 + number)
        self.signal_number = number
        print(
            f"{self.prog}: {name} received: stopping cleanly and keeping what is finished "
            f"(send it again to abort at once)",
            file=console,
            flush=True,
        )
        if self._raising:
            raise StopRequested(name)

    def check(self) -> None:
        """Raise :class:`StopRequested` if a stop was requested."""
        if self.requested:
            raise StopRequested(self.signal_name)

    @contextlib.contextmanager
    def raising(self) -> Iterator[None]:
        """Inside this block a stop request (also an earlier one) raises :class:`StopRequested`."""
        self.check()
        self._raising = True
        try:
            yield
        finally:
            self._raising = False

    def exit(self, kept: str) -> NoReturn:
        """Say what was kept and exit with :attr:`exit_status`, without a traceback."""
        Stopped(self.signal_number or signal.SIGINT, kept).exit(self.prog)
