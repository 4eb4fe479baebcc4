"""The README and the site: length, quoted tables equal to their files, every linked file there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from negdl import doc_tables

from .pages import DOCS, REPO, user_pages

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def test_readme_fits_on_a_few_screens():
    assert len((REPO / "README.md").read_text().splitlines()) <= 250


@pytest.mark.parametrize("page", user_pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_quoted_tables_equal_their_files(page):
    text = page.read_text()
    assert doc_tables.fill(text, DOCS) == text, (
        f"{page.relative_to(REPO)}: run python scripts/update_docs.py --tables"
    )


def test_home_page_is_the_readme():
    readme = (REPO / "README.md").read_text()
    assert (DOCS / "index.md").read_text() == doc_tables.home_page(readme), (
        "run python scripts/update_docs.py --tables"
    )


def test_readme_quotes_a_table_per_part():
    readme = (REPO / "README.md").read_text()
    assert len(doc_tables.MARKER.findall(readme)) >= 6


@pytest.mark.parametrize("page", user_pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_linked_or_embedded_file_exists(page):
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "#", "mailto:")):
            continue
        path = target.split("#")[0]
        assert (page.parent / path).exists(), f"{page.relative_to(REPO)} links {target}"


@pytest.mark.parametrize("page", user_pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_work_notes(page):
    text = re.sub(r"<!--.*?-->", "", page.read_text(), flags=re.S)
    assert not re.search(r"\b[Ii]ssue \d+", text), page
    for unbacked in ("PCA spread about", "--complementary 1", "2.5-3.5x", "unseen digits"):
        assert unbacked not in text, (page, unbacked)


def test_fill_writes_tables_from_md_and_csv(tmp_path: Path):
    (tmp_path / "r.md").write_text(
        "# t\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n\ntext\n\n| c |\n| --- |\n| 3 |\n"
    )
    (tmp_path / "r.csv").write_text("x,y\n5,6\n")
    page = "<!-- table:r.md#2 -->\nold\n<!-- /table -->\n<!-- table:r.csv -->\n<!-- /table -->\n"
    assert doc_tables.fill(page, tmp_path) == (
        "<!-- table:r.md#2 -->\n| c |\n| --- |\n| 3 |\n<!-- /table -->\n"
        "<!-- table:r.csv -->\n| x | y |\n| --- | --- |\n| 5 | 6 |\n<!-- /table -->\n"
    )
    with pytest.raises(ValueError):
        doc_tables.fill("<!-- table:r.md#3 -->\n<!-- /table -->\n", tmp_path)
