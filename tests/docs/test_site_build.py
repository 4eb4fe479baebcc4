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
    assert (tmp_path / "site" / "api" / "neg_envs.html").exists()
