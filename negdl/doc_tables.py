"""Tables in the README and the documentation site, copied from the result files under docs/.

A page marks a quoted table with ``<!-- table:agents/bench.md#1 -->`` ... ``<!-- /table -->``: a
file under docs/ and which of its markdown tables (1 = the first; a ``.csv`` file is one table).
``fill`` rewrites the text between the comments from the file (``scripts/update_docs.py
--tables``), and a test fails when a page differs from what ``fill`` writes.
"""

from __future__ import annotations

import csv
import itertools
import re
from pathlib import Path

#: ``<!-- table:SOURCE -->`` ... ``<!-- /table -->``; SOURCE is ``path[#index]``.
MARKER = re.compile(r"(<!-- table:(?P<source>[^ ]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def markdown_tables(text: str) -> list[str]:
    """Every markdown table in ``text``: runs of lines starting with ``|``, in order."""
    runs = itertools.groupby(text.splitlines(), lambda line: line.startswith("|"))
    return ["\n".join(lines) + "\n" for is_table, lines in runs if is_table]


def csv_table(path: Path) -> str:
    """A csv file as one markdown table, its first row the header."""
    with path.open(newline="") as handle:
        header, *body = csv.reader(handle)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def table(source: str, docs: Path) -> str:
    """The table ``source`` (``path[#index]``, path relative to ``docs``) names."""
    path, _, index = source.partition("#")
    file = docs / path
    if not file.is_file():
        raise FileNotFoundError(f"table source {source!r}: no file {file}")
    if file.suffix == ".csv":
        return csv_table(file)
    tables = markdown_tables(file.read_text())
    number = int(index or 1)
    if not 1 <= number <= len(tables):
        raise ValueError(f"table source {source!r}: {file} has {len(tables)} table(s)")
    return tables[number - 1]


def fill(text: str, docs: Path) -> str:
    """``text`` with every marked table rewritten from its source file."""
    return MARKER.sub(lambda m: m.group(1) + table(m.group("source"), docs) + m.group(4), text)


def pages(repo: Path) -> list[Path]:
    """The pages whose tables ``fill`` keeps current: the README and the site's own pages."""
    docs = repo / "docs"
    return [repo / "README.md", *sorted(docs.glob("*.md")), *sorted((docs / "guide").glob("*.md"))]


def home_page(readme: str) -> str:
    """The site's home page (docs/index.md): the README, its links pointing into the site."""
    return readme.replace("](docs/", "](").replace(
        "`mkdocs serve`, or `mkdocs build` into `site/`",
        "this site; `mkdocs serve` from a source checkout",
    )
