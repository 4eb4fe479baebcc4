"""Command lines from a dataclass whose fields carry docstrings (CleanRL style), parsed by tyro.

Each field's docstring (the string literal right below it) becomes its ``--help`` text, so a
script states every argument once, with its documentation, at the top. `tyro
<https://brentyi.github.io/tyro/>`_ (what CleanRL uses) builds the parser; this module adds the
rules every negdl command shares:

- ``parse_args``: ``bool`` and ``bool | None`` fields are ``--flag`` / ``--no-flag`` pairs,
  ``tuple[X, ...]`` fields take several values (``--seeds 0 1 2``), and a ``ValueError`` from
  the dataclass's ``__post_init__`` ends the program with one ``prog: error: ...`` line and exit
  status 2, like any other bad argument, not with a traceback.
- ``parse_options``: ``name=value`` strings (env options, hyperparameter overrides) to a dict.
- ``run_main``: parse, run, and end a failed run with ``prog: error: ...`` too (a
  ``ValueError``, an ``OSError`` such as a missing file, or a ``negdl.errors.UserError``); a
  Ctrl-C the command does not handle itself ends with one line and status 130, and work that
  stopped on a signal (``negdl.interrupt.Stopped``, e.g. a sweep) says what it kept and ends
  with 130 (SIGINT) or 143 (SIGTERM). A reader that closes the output early (``negdl-train
  --help | head -3``) ends the command quietly with status 141, like any Unix tool killed by
  SIGPIPE, not with a ``BrokenPipeError`` traceback.
- ``check_out_dir`` / ``check_out_file`` / ``check_in_dir``: an output path that cannot be
  written (a folder that is a file, a file that is a folder) or an input folder that is not
  there is an argument error, found before any work is done.

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
from typing import Any, NoReturn, TypeVar

import tyro

from negdl.errors import UserError
from negdl.interrupt import Stopped

T = TypeVar("T")

#: What ``run_main`` reports as one line: errors the user fixes, not bugs.
USER_ERRORS = (ValueError, OSError, UserError)
#: Exit status of a command whose reader closed its output: 128 + SIGPIPE, what the shell
#: reports for ``yes | head -1``'s ``yes``.
BROKEN_PIPE_STATUS = 141


def parse_args(cls: type[T], argv: Sequence[str] | None = None, prog: str | None = None) -> T:
    """Parse ``argv`` into an instance of dataclass ``cls``.

    :param cls: a dataclass; each field becomes ``--field-name`` with its default and docstring.
    :param argv: arguments to parse (``sys.argv[1:]`` when None).
    :param prog: program name for help and errors (default: the script's file name).
    """
    prog = prog or Path(sys.argv[0]).name
    try:
        # tyro reports errors raised by a class with a box of its own; through a partial (the
        # top-level class) or the parse-error hook (a nested config such as negdl-train's
        # TrainConfig) they reach this handler and end in the same one-line error as every
        # other negdl failure.
        with _nested_errors_raised():
            return tyro.cli(
                functools.partial(cls),
                args=argv,
                prog=prog,
                config=(tyro.conf.DisallowNone,),
            )
    except (ValueError, UserError) as error:  # UserError: e.g. a value of the wrong type
        exit_with_error(prog, error)


def _raise_instantiation_failure(event: Any) -> None:
    if type(event).__name__ == "InstantiationFailure":
        raise ValueError(event.message)


def _nested_errors_raised() -> contextlib.AbstractContextManager[None]:
    """While parsing, a ``ValueError`` from a nested dataclass's checks is raised to the caller
    (tyro 1.0's parse-error hook; where a tyro lacks it, tyro's own error box is kept)."""
    hook = getattr(getattr(tyro, "_errors", None), "on_parse_error", None)
    return hook(_raise_instantiation_failure) if hook else contextlib.nullcontext()


def exit_with_error(prog: str, error: Exception | str) -> NoReturn:
    """Print ``prog: error: <error>`` to stderr and exit with status 2 (argparse's usage error)."""
    print(f"{prog}: error: {error}", file=sys.stderr)
    raise SystemExit(2)


def parse_options(items: Sequence[str], what: str = "option") -> dict[str, Any]:
    """``["num_obstacles=30", "obstacle_speed=(0.005, 0.02)"]`` -> a dict of Python values.

    Values are Python literals (numbers, tuples, lists, dicts, True/False/None); anything else
    is kept as a string, so ``observation=nearest`` works without quotes.

    :param items: ``name=value`` strings.
    :param what: what the items are, for the error message.
    :raises ValueError: an item is not ``name=value`` with an identifier as the name.
    """
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
    prog: str,
    args_class: type[T],
    run: Callable[[T], Any],
    argv: Sequence[str] | None = None,
) -> Any:
    """Parse ``argv`` into ``args_class`` and call ``run``; a bad argument, a missing file or
    any other :data:`USER_ERRORS` ends the program with ``prog: error: ...`` instead of a
    traceback, work stopped on a signal (:class:`~negdl.interrupt.Stopped`) with what it kept
    and status 130/143, and an unhandled Ctrl-C with ``prog: interrupted`` and status 130. Output
    whose reader went away (``| head``) ends the program quietly with status 141: print what the
    command reports inside ``run``, not after ``run_main`` returns.

    :param prog: the command's name.
    :param args_class: its arguments dataclass.
    :param run: what the command does with the parsed arguments.
    :param argv: arguments to parse (``sys.argv[1:]`` when None).
    """
    try:
        # parse_args prints --help, run prints progress: either can meet a closed pipe, and so
        # can the last flush, done here rather than by the interpreter at exit.
        try:
            return _run_reporting_errors(prog, args_class, run, argv)
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        _quiet_closed_stdout()
        raise SystemExit(BROKEN_PIPE_STATUS) from None


def _run_reporting_errors(
    prog: str, args_class: type[T], run: Callable[[T], Any], argv: Sequence[str] | None
) -> Any:
    args = parse_args(args_class, argv, prog)
    try:
        return run(args)
    except BrokenPipeError:
        raise  # an OSError, but the reader left: nothing to report (run_main ends quietly)
    except USER_ERRORS as error:
        raise SystemExit(f"{prog}: error: {error}") from error
    except Stopped as stopped:
        print(f"{prog}: stopped by {stopped.signal_name}: {stopped.kept}", file=sys.stderr)
        raise SystemExit(stopped.exit_status) from None
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None


def _quiet_closed_stdout() -> None:
    """Point stdout at ``os.devnull`` so the interpreter's final flush of what is still buffered
    does not raise a second ``BrokenPipeError`` at exit (the recipe of Python's ``signal`` docs;
    restoring SIGPIPE's default action instead would also kill the process on a closed socket)."""
    try:
        fileno = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a test's capture: nothing to do
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fileno)
    finally:
        os.close(devnull)


def check_out_dir(name: str, path: str | Path | None) -> None:
    """Raise a ``ValueError`` if folder ``path`` (argument ``name``) cannot be created or written.

    :param name: the argument, e.g. ``"--out-dir"``.
    :param path: the folder; it may not exist yet (None: nothing to check).
    """
    if path is None:
        return
    folder = Path(path)
    for existing in (folder, *folder.parents):
        if existing.exists():
            break
    if not existing.is_dir():
        what = "is a file" if existing == folder else f"is inside {existing}, which is a file"
        raise ValueError(f"{name} {str(path)!r} {what}; give a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {str(path)!r}: no permission to write in {existing}")


def check_in_dir(name: str, path: str | Path | None) -> None:
    """Raise a ``ValueError`` unless ``path`` (argument ``name``), when given, is an existing folder.

    :param name: the argument, e.g. ``"--data-dir"``.
    :param path: the folder to read from (None: nothing to check).
    """
    if path is None:
        return
    if not Path(path).exists():
        raise ValueError(
            f"{name} {str(path)!r} does not exist; give the folder that holds the data"
        )
    if not Path(path).is_dir():
        raise ValueError(f"{name} {str(path)!r} is a file; give the folder that holds the data")


def check_out_file(name: str, path: str | Path | None) -> None:
    """Raise a ``ValueError`` if file ``path`` (argument ``name``) cannot be written.

    :param name: the argument, e.g. ``"--out"``.
    :param path: the file; its folder may not exist yet (None or empty: nothing to check).
    """
    if not path:
        return
    if Path(path).is_dir():
        raise ValueError(f"{name} {str(path)!r} is a folder; give a file name")
    check_out_dir(f"the folder of {name}", Path(path).parent)
