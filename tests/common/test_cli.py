"""Dataclass-driven command lines: docstrings become help, types become parsers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from negdl.cli import field_docstrings, parse_args


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

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError("steps must be >= 0")


def test_parse_args_types_defaults_and_docs(capsys: pytest.CaptureFixture[str]) -> None:
    assert field_docstrings(Example) == {
        "steps": "how many steps",
        "names": "some names",
        "path": "an optional path",
        "fast": "go fast",
    }
    assert parse_args(Example, []) == Example()
    parsed = parse_args(Example, ["--steps", "5", "--names", "x", "y", "--path", "p", "--no-fast"])
    assert parsed == Example(5, ("x", "y"), "p", False)
    with pytest.raises(SystemExit):
        parse_args(Example, ["--steps", "-1"])
    assert "steps must be >= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(Example, ["--help"])
    assert "how many steps" in capsys.readouterr().out
