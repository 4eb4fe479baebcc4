"""Suite-wide settings and the one runner of the scripts' smoke tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

REPO = Path(__file__).resolve().parents[1]


def run_in_repo(
    command: str, *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a script as a subprocess from the repository root, headless, and capture its output.

    :param command: a file of ``scripts/`` (``"play.py"``) or a command module, run with
        ``python -m`` (``"neg_agents.cli.train"``).
    :param args: its arguments.
    :param check: fail the test, showing the output, when it exits with an error.
    :param timeout: seconds before it is killed.
    """
    target = [str(REPO / "scripts" / command)] if command.endswith(".py") else ["-m", command]
    env = {
        **os.environ,
        "SDL_VIDEODRIVER": "dummy",
        "SDL_AUDIODRIVER": "dummy",
        "PYTHONHASHSEED": "0",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, *target, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="session")
def run_script() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_in_repo``: runs a script or command as a subprocess (scripts' smoke tests)."""
    return run_in_repo
