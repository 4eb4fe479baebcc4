"""Command lines from a dataclass whose fields carry docstrings (CleanRL style), parsed by tyro.

Each field's docstring becomes its ``--help`` text. On top of tyro: ``parse_args`` turns a
``ValueError`` from the dataclass's checks into one ``prog: error: ...`` line (status 2);
``run_main`` does the same for a failed run (``ValueError``, ``OSError``, ``UserError``), reports
a signal's stop (``negdl.interrupt.Stopped``, status 130/143) or an unhandled Ctrl-C (130), and
ends quietly with 141 when the reader closes the output (``--help | head``).

Scripts end with ``if __name__ == "__main__": run_main("<name>.py", Args, main)``.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import tyro

from negdl.errors import UserError
from negdl.interrupt import Stopped

T = TypeVar("T")

#: Exit status of a command whose reader closed its output: 128 + SIGPIPE, what the shell
#: reports for ``yes | head -1``'s ``yes``.
BROKEN_PIPE_STATUS = 141


def parse_args(cls: type[T], argv: Sequence[str] | None = None, prog: str | None = None) -> T:
    """Parse ``argv`` (default ``sys.argv[1:]``) into dataclass ``cls``, each field a
    ``--field-name`` option; a bad value ends the program with ``prog: error: ...``, status 2."""
    prog = prog or Path(sys.argv[0]).name
    try:
        # tyro reports errors raised by a class in a box of its own; through a partial (the
        # top-level class) or the parse-error hook (a nested config) they reach this handler.
        with _nested_errors_raised():
            return tyro.cli(
                functools.partial(cls), args=argv, prog=prog, config=(tyro.conf.DisallowNone,)
            )
    except (ValueError, UserError) as error:  # UserError: e.g. a value of the wrong type
        print(f"{prog}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _raise_instantiation_failure(event: Any) -> None:
    if type(event).__name__ == "InstantiationFailure":
        raise ValueError(event.message)


def _nested_errors_raised() -> contextlib.AbstractContextManager[None]:
    """While parsing, a nested dataclass's ``ValueError`` is raised to the caller (tyro 1.0's
    parse-error hook; without it tyro's own error box is kept)."""
    hook = getattr(getattr(tyro, "_errors", None), "on_parse_error", None)
    return hook(_raise_instantiation_failure) if hook else contextlib.nullcontext()


def parse_options(items: Sequence[str], what: str = "option") -> dict[str, Any]:
    """``["num_obstacles=30", "observation=nearest"]`` -> ``{"num_obstacles": 30, ...}``: values
    are Python literals where they parse as one, else strings; ``what`` names the items in the
    ``ValueError`` an item that is not ``name=value`` raises."""
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


#: A ``dict[str, Any]`` field's command-line form: ``--env-kwargs num_obstacles=30 observation=nearest``
#: (``Annotated[dict[str, Any], NAME_VALUE_OPTIONS]``), values read by :func:`parse_options`.
NAME_VALUE_OPTIONS = tyro.constructors.PrimitiveConstructorSpec(
    nargs="*",
    metavar="NAME=VALUE",
    instance_from_str=lambda items: parse_options(items),
    is_instance=lambda value: isinstance(value, dict),
    str_from_instance=lambda options: [f"{key}={value!r}" for key, value in options.items()],
)


def run_main(
    prog: str, args_class: type[T], run: Callable[[T], Any], argv: Sequence[str] | None = None
) -> Any:
    """Parse ``argv`` into ``args_class`` and call ``run`` with it, ending a failure as the
    module docstring says (print what the command reports inside ``run``, so that a closed
    pipe is handled)."""
    try:
        try:  # parsing (--help) and running can meet a closed pipe, and so can the last flush
            args = parse_args(args_class, argv, prog)
            try:
                return run(args)
            except BrokenPipeError:
                raise  # an OSError, but the reader left: nothing to report
            except (ValueError, OSError, UserError) as error:  # what the user fixes, not bugs
                raise SystemExit(f"{prog}: error: {error}") from error
            except Stopped as stopped:
                stopped.exit(prog)
            except KeyboardInterrupt:
                print(f"{prog}: interrupted", file=sys.stderr)
                raise SystemExit(130) from None
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        _quiet_closed_stdout()
        raise SystemExit(BROKEN_PIPE_STATUS) from None


def _quiet_closed_stdout() -> None:
    """Point stdout at ``os.devnull`` so the final flush at exit does not raise a second
    ``BrokenPipeError`` (the recipe of Python's ``signal`` docs; SIGPIPE's default action would
    also kill the process on a closed socket)."""
    try:
        fileno = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a test's capture: nothing to do
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fileno)
    os.close(devnull)


def check_out_dir(name: str, path: str | Path | None) -> None:
    """Raise a ``ValueError`` if folder ``path`` (argument ``name``, e.g. ``"--out-dir"``)
    cannot be created or written; None is not checked."""
    if path is None:
        return
    folder = Path(path)
    ancestors = (folder, *folder.parents)
    existing = next((part for part in ancestors if part.exists()), ancestors[-1])
    if not existing.is_dir():
        what = "is a file" if existing == folder else f"is inside {existing}, which is a file"
        raise ValueError(f"{name} {str(path)!r} {what}; give a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {str(path)!r}: no permission to write in {existing}")


def check_in_dir(name: str, path: str | Path | None) -> None:
    """Raise a ``ValueError`` unless ``path`` (argument ``name``) is None or an existing folder."""
    if path is not None and not Path(path).is_dir():
        what = "is a file" if Path(path).exists() else "does not exist"
        raise ValueError(f"{name} {str(path)!r} {what}; give the folder that holds the data")


def check_out_file(name: str, path: str | Path | None) -> None:
    """Raise a ``ValueError`` if file ``path`` (argument ``name``) cannot be written; None or
    empty is not checked."""
    if not path:
        return
    if Path(path).is_dir():
        raise ValueError(f"{name} {str(path)!r} is a folder; give a file name")
    check_out_dir(f"the folder of {name}", Path(path).parent)
