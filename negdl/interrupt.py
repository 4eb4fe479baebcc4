"""Stop long work cleanly on Ctrl-C or ``kill``: the first SIGINT/SIGTERM asks to stop, the second aborts.

Every long-running command uses :class:`StopOnSignal` the same way. Inside the ``with`` block
the first SIGINT (Ctrl-C) or SIGTERM only records a request and says so on stderr; the work
checks ``stop.requested`` (or calls ``stop.check()``) where stopping is safe, e.g. between two
training steps, two finished runs or two finished rows, and keeps what it has. Work with no such
point of its own (a library call that trains for minutes) runs inside ``stop.raising()``, where
a request raises :class:`StopRequested` at once and the unfinished unit is dropped. A second
signal aborts at once: one line on stderr, child processes terminated, exit status ``128 +
signal`` (130 for SIGINT, 143 for SIGTERM), nothing more written. Files written before it are
complete as long as they are written whole, e.g. with ``negdl.results.write_text_atomic``. The
previous handlers come back when the block ends. The pattern, for any script::

    from negdl.interrupt import StopOnSignal

    def main(args: Args) -> None:
        rows = []
        with StopOnSignal("my_script.py") as stop:
            for seed in args.seeds:
                with stop.raising():  # training has no safe point: stop it where it is
                    model = train(seed)
                rows.append(evaluate(model))
                write_csv(rows, out / "results.csv")  # each finished unit is on disk
                stop.check()  # raises StopRequested, which the with block swallows
        if stop.requested:
            stop.exit(f"kept {len(rows)} rows in {out / 'results.csv'}")

``stop.exit`` prints ``my_script.py: stopped by SIGINT: kept 3 rows in ...`` and exits with
130 (143 after SIGTERM), without a traceback. Library code that stops on a signal raises
:class:`Stopped` instead, which ``negdl.cli.run_main`` turns into the same line and status
(``negdl.sweeps.Sweep.run`` does, so every script that runs a sweep stops this way). Messages
go to the terminal's stderr (``sys.__stderr__``) even while a trial's output is sent to its log. Worker processes should leave SIGINT to the
parent (``signal.signal(signal.SIGINT, signal.SIG_IGN)`` in their initializer) so that Ctrl-C in
a terminal, which reaches the whole process group, does not print their tracebacks.
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

#: The signals that ask a command to stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequested(Exception):
    """Raised where work stops because a stop was requested (``StopOnSignal`` swallows it)."""


class Stopped(Exception):
    """Work stopped on a signal, keeping what ``kept`` says; ``negdl.cli.run_main`` prints
    ``prog: stopped by SIGINT: <kept>`` and exits with ``128 + signal_number``.

    :param signal_number: the signal that asked to stop.
    :param kept: what the stopped work left behind.
    """

    def __init__(self, signal_number: int, kept: str) -> None:
        super().__init__(kept)
        self.signal_number = signal_number
        self.kept = kept

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signal_number).name

    @property
    def exit_status(self) -> int:
        return 128 + self.signal_number


def _console() -> Any:
    """The terminal's stderr, also while ``sys.stderr`` is redirected (e.g. to a trial's log)."""
    return sys.__stderr__ or sys.stderr


def terminate_child_processes() -> None:
    """Terminate the worker processes this process started through ``multiprocessing``."""
    for child in multiprocessing.active_children():
        child.terminate()


class StopOnSignal:
    """Turn the first SIGINT/SIGTERM into a stop request and the second into an abort.

    Handlers are installed only in the main thread (elsewhere the block runs unguarded, as
    Python delivers signals to the main thread only). See the module docstring for the pattern.

    :param prog: the command's name, at the start of every message.
    """

    def __init__(self, prog: str) -> None:
        self.prog = prog
        self.signal_number: int | None = None
        self._previous: dict[int, Any] = {}
        self._raising = False

    @property
    def requested(self) -> bool:
        """A stop was requested."""
        return self.signal_number is not None

    @property
    def signal_name(self) -> str:
        """``"SIGINT"`` or ``"SIGTERM"`` (empty while no stop was requested)."""
        return signal.Signals(self.signal_number).name if self.signal_number else ""

    @property
    def exit_status(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + (self.signal_number or signal.SIGINT)

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for number in STOP_SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> bool:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()
        return exc_type is not None and issubclass(exc_type, StopRequested)

    def _handle(self, number: int, frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if self.requested:
            print(
                f"{self.prog}: {name} again: aborting now, unfinished work is lost",
                file=_console(),
                flush=True,
            )
            terminate_child_processes()
            os._exit(128 + number)
        self.signal_number = number
        print(
            f"{self.prog}: {name} received: stopping cleanly and keeping what is finished "
            f"(send it again to abort at once)",
            file=_console(),
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
        """Inside this block a stop request raises :class:`StopRequested` at once (also one that
        came before the block)."""
        self.check()
        self._raising = True
        try:
            yield
        finally:
            self._raising = False

    def exit(self, kept: str) -> NoReturn:
        """Say what was kept and end the program with :attr:`exit_status`, without a traceback.

        :param kept: what the stopped work left behind, e.g. ``"kept 3 rows in results.csv"``.
        """
        print(f"{self.prog}: stopped by {self.signal_name}: {kept}", file=sys.stderr, flush=True)
        raise SystemExit(self.exit_status)
