"""The README and the site's pages, their code blocks and the markers that shrink them for tests."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def user_pages() -> list[Path]:
    """The pages a user reads: the README, the site's own pages (not the result files)."""
    return [REPO / "README.md", *sorted(DOCS.glob("*.md")), *sorted((DOCS / "guide").glob("*.md"))]


#: ``<!-- replace: A => B -->`` (the next code block runs with A replaced by B),
#: ``<!-- setup: CODE -->`` (CODE runs first: what an earlier block on the page defined) and
#: ``<!-- not-run: why -->`` (the next block is not run by the tests; only for the set-up commands
#: themselves, a cluster or a GPU), on the lines right above a block.
MARKER = re.compile(r"<!-- (replace|setup|not-run): (.*?) -->")
BLOCK = re.compile(
    r"((?:^ *<!-- (?:replace|setup|not-run): .*? -->\n)*)^( *)```(\w+)\n(.*?)^\2```", re.S | re.M
)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    code: str  # as shown, dedented
    run_code: str  # with the replace markers applied
    not_run: str  # why it is not run, or ""

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in BLOCK.finditer(text):
        markers, indent, language, body = match.groups()
        code = "".join(line[len(indent) :] + "\n" for line in body.splitlines())
        run_code, not_run, setup = code, "", []
        for kind, value in MARKER.findall(markers):
            if kind == "not-run":
                not_run = value
            elif kind == "setup":
                setup.append(value)
            else:
                old, new = (part.strip() for part in value.split("=>"))
                if old not in run_code:
                    raise AssertionError(f"{page}: replace marker {old!r} not in its block")
                run_code = run_code.replace(old, new)
        run_code = "".join(line + "\n" for line in setup) + run_code
        line = text[: match.start(2)].count("\n") + 1
        found.append(Block(page, line, language, code, run_code, not_run))
    return found
