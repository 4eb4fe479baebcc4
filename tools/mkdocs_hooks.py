"""MkDocs hook (``hooks:`` in mkdocs.yml): docstrings' Sphinx cross-reference roles, which
mkdocstrings leaves as text (``:class:`NegRewardDQN```), are shown as the code they name;
``~a.b.c`` shows ``c``, as Sphinx does."""

from __future__ import annotations

import re
from typing import Any

#: A role before the inline code mkdocstrings makes of its target: ``:class:<code>~a.B</code>``.
ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|attr|data|mod|exc|obj|const):<code>(~?)([^<]*)</code>"
)


def plain_code(match: re.Match[str]) -> str:
    """The role's target as inline code, shortened to its last name after a ``~``."""
    name = match.group(2).rsplit(".", 1)[-1] if match.group(1) else match.group(2)
    return f"<code>{name}</code>"


def on_page_content(html: str, **kwargs: Any) -> str:
    """MkDocs' hook on each page's HTML: every role replaced by :func:`plain_code`."""
    return ROLE.sub(plain_code, html)
