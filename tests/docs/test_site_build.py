"""The documentation site builds in strict mode: no broken link, reference or image."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_strict_build(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:]
    index = (tmp_path / "site" / "index.html").read_text()
    assert "fonts.googleapis" not in index  # builds and reads offline
    api = {page.name: page.read_text() for page in (tmp_path / "site" / "api").glob("*.html")}
    assert {"neg_envs.html", "neg_agents.html", "supervised.html", "negdl.html"} <= set(api)
    # Docstrings' Sphinx roles are shown as the code they name, not as ":class:" text.
    assert "<code>NegRewardDQN</code>" in api["neg_agents.html"]
    assert not [
        name for name, html in api.items() if ":class:<code>" in html or ":func:<code>" in html
    ]
