"""Dataclass-driven command lines: docstrings become help, types become parsers."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from negdl.cli import parse_args, parse_options, run_main


@dataclass
class Example:
    """An example command."""

    steps: int = 3
    """how many steps"""
    names: tuple[str, ...] = ("a",)
    """some names"""
    path: str | None = None
    """an optional path"""
    fast: bool = True
    """go fast"""
    greedy: bool | None = None
    """act greedily (unset: the agent's own way)"""

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError("steps must be >= 0")


def test_parse_args_types_defaults_and_docs(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_args(Example, []) == Example()
    parsed = parse_args(
        Example, ["--steps", "5", "--names", "x", "y", "--path", "p", "--no-fast", "--greedy"]
    )
    assert parsed == Example(5, ("x", "y"), "p", False, True)
    assert parse_args(Example, ["--no-greedy"]).greedy is False
    with pytest.raises(SystemExit):
        parse_args(Example, ["--steps", "-1"])
    assert "steps must be >= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(Example, ["--help"])
    assert "how many steps" in capsys.readouterr().out


def test_post_init_errors_end_in_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(Example, ["--steps", "-1"], prog="example")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "example: error: steps must be >= 0\n"


def test_help_states_each_default_once(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(Example, ["--help"], prog="example")
    help_text = capsys.readouterr().out
    assert "An example command." in help_text
    for default in ("(default: 3)", "(default: True)", "(default: None)"):
        assert default in help_text
    assert help_text.count("(default:") == 5


def test_parse_options_reads_python_literals_and_plain_words() -> None:
    assert parse_options(["n=30", "speed=(0.01, 0.02)", "observation=nearest"]) == {
        "n": 30,
        "speed": (0.01, 0.02),
        "observation": "nearest",
    }
    with pytest.raises(ValueError, match="must look like name=value"):
        parse_options(["num_obstacles"], "env option")


def test_run_main_turns_failures_into_one_error_message() -> None:
    def run(args: Example) -> int:
        raise FileNotFoundError(f"no file at {args.path}")

    with pytest.raises(SystemExit, match=r"^example: error: no file at p$"):
        run_main("example", Example, run, ["--path", "p"])


def test_no_command_docstring_states_its_default() -> None:
    """tyro prints every option's default; a field docstring that says it too shows it twice."""
    import ast
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    sources = [*(repo / "scripts").glob("*.py"), *(repo / "neg_agents" / "cli").glob("*.py")]
    sources += (repo / "supervised" / "cli").glob("*.py")
    sources.append(repo / "neg_agents" / "bench.py")
    offenders = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name in ("Args", "BenchConfig"):
                offenders += [
                    f"{path.name}: {statement.value.value}"
                    for statement in node.body
                    if isinstance(statement, ast.Expr)
                    and isinstance(statement.value, ast.Constant)
                    and "(default" in str(statement.value.value)
                ]
    assert not offenders, "say the default in other words, e.g. 'when not given, ...'"


def test_run_main_reports_user_errors_and_ctrl_c_in_one_line(capsys) -> None:
    from negdl.errors import UserError

    class MissingData(RuntimeError, UserError):
        pass

    for error, expected in [
        (MissingData("no MNIST files"), "example: error: no MNIST files"),
        (IsADirectoryError(21, "Is a directory", "out"), "example: error: [Errno 21]"),
    ]:

        def fail(args: Example, error: Exception = error) -> None:
            raise error

        with pytest.raises(SystemExit, match=f"^{re.escape(expected)}"):
            run_main("example", Example, fail, [])

    def interrupted(args: Example) -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit_info:
        run_main("example", Example, interrupted, [])
    assert exit_info.value.code == 130 and capsys.readouterr().err == "example: interrupted\n"
