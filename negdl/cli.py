"""Command-line arguments from a dataclass whose fields carry docstrings (CleanRL style).

Each field's docstring (the string literal right below it) becomes its ``--help`` text, so a
script states every argument once, with its documentation, at the top.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def field_docstrings(cls: type) -> dict[str, str]:
    """Map each annotated field of ``cls`` to the string literal that follows it in the source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, following in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if (
                isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def _argument_options(annotation: Any) -> dict[str, Any]:
    """argparse options for a field type: scalars, optionals, tuples/lists of scalars and bools."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        inner = next(arg for arg in args if arg is not type(None))
        return _argument_options(inner)
    if origin in (tuple, list, Sequence):
        return {"type": args[0], "nargs": "+"}
    return {"type": annotation}


def parse_args(cls: type[T], argv: Sequence[str] | None = None) -> T:
    """Build an argparse parser from dataclass ``cls`` and return the parsed instance.

    :param cls: a dataclass; each field becomes ``--field-name`` with its default and docstring.
    :param argv: arguments to parse (``sys.argv[1:]`` when None).
    """
    docs = field_docstrings(cls)
    hints = typing.get_type_hints(cls)
    parser = argparse.ArgumentParser(
        description=(cls.__doc__ or "").strip(),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for field in dataclasses.fields(cls):
        default = (
            field.default if field.default is not dataclasses.MISSING else field.default_factory()
        )  # type: ignore[misc]
        parser.add_argument(
            f"--{field.name.replace('_', '-')}",
            dest=field.name,
            default=default,
            help=docs.get(field.name, ""),
            **_argument_options(hints[field.name]),
        )
    values = vars(parser.parse_args(argv))
    for field in dataclasses.fields(cls):
        if isinstance(values[field.name], list):
            values[field.name] = tuple(values[field.name])
    try:
        return cls(**values)
    except ValueError as error:
        parser.error(str(error))
        raise  # unreachable: parser.error exits
