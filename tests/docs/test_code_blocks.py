"""Every code block of the README and the site runs (bash with its budgets shrunk by markers).

Blocks that call an installed command not on PATH (``shutil.which``) are skipped with that
reason, as are blocks that read MNIST when ``NEGDL_DATA_DIR`` is unset. A block shown on two pages
(the README and the site's home page) runs once.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from .pages import REPO, blocks, user_pages

#: Blocks that are not run, and why: only the set-up commands (CI runs exactly those), a Ray
#: cluster and a GPU may be named here.
ALLOWED_NOT_RUN = ("set-up", "cluster", "GPU")


def unique_blocks():
    seen, found = set(), []
    for page in user_pages():
        for block in blocks(page):
            if block.language not in ("bash", "python") or (block.language, block.run_code) in seen:
                continue
            seen.add((block.language, block.run_code))
            found.append(block)
    return found


BLOCKS = unique_blocks()


def commands(code: str) -> list[str]:
    """The first word of every command in a bash block."""
    code = code.replace("\\\n", " ")
    words = []
    for line in code.splitlines():
        for part in re.split(r"&&|\|\||;|\|", line.split(" #")[0]):
            part = part.strip()
            if part and not part.startswith("#"):
                words.append(part.split()[0])
    return words


def test_not_run_blocks_are_only_the_allowed_kinds():
    for block in BLOCKS:
        if block.not_run:
            assert block.not_run.startswith(ALLOWED_NOT_RUN), block.name


@pytest.mark.parametrize("block", [b for b in BLOCKS if not b.not_run], ids=lambda b: b.name)
def test_block_runs(block, tmp_path):
    needs_data = "mnist" in block.run_code.lower() or "negdl-" in block.run_code and any(
        name in block.run_code for name in ("cbomf", "synergy", "robustness", "siamese",
                                            "negative-", "ohem", "occlusion")
    )  # fmt: skip
    if needs_data and not os.environ.get("NEGDL_DATA_DIR"):
        pytest.skip("needs MNIST: NEGDL_DATA_DIR is unset")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SDL_VIDEODRIVER": "dummy", "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    if block.language == "bash":
        missing = [
            word for word in commands(block.run_code)
            if word.startswith("negdl-") and shutil.which(word) is None
        ]  # fmt: skip
        if missing:
            pytest.skip(f"not installed yet: {', '.join(sorted(set(missing)))}")
        # Scripts of a source checkout run from the repository's files; outputs go to tmp_path.
        code = block.run_code.replace("python scripts/", f"{sys.executable} {REPO}/scripts/")
        argv = ["bash", "-euo", "pipefail", "-c", code]
    else:
        # A file, not -c: worker processes of a sweep import the main module again.
        (tmp_path / "block.py").write_text(block.run_code)
        argv = [sys.executable, "block.py"]
    result = subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, f"{block.name}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
