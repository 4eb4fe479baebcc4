"""Suite-wide settings and the one runner of the scripts' smoke tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

REPO = Path(__file__).resolve().parents[1]


def _command(command: str, args: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    target = [str(REPO / "scripts" / command)] if command.endswith(".py") else ["-m", command]
    env = {
        **os.environ,
        "SDL_VIDEODRIVER": "dummy",
        "SDL_AUDIODRIVER": "dummy",
        "PYTHONHASHSEED": "0",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    return [sys.executable, *target, *args], env


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
    argv, env = _command(command, args)
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def import_script(name: str):
    """Import ``scripts/<name>.py`` (or the command module ``supervised.cli.<name>``) as a
    module: cheaper than a subprocess for argument checks."""
    import importlib
    import importlib.util

    if (REPO / "supervised" / "cli" / f"{name}.py").is_file():
        return importlib.import_module(f"supervised.cli.{name}")

    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def seeded_torch() -> None:
    """Every test starts from the same global torch state, so a test that builds a network
    without a seed of its own runs the same way each time (unseeded weights once made a
    float32 near-tie flip a comparison in CI)."""
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def run_script() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_in_repo``: runs a script or command as a subprocess (scripts' smoke tests)."""
    return run_in_repo


def interrupt_in_repo(
    command: str,
    *args: str,
    ready: Callable[[], bool],
    signals: Sequence[int] = (signal.SIGINT,),
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run a command as ``run_in_repo`` does, send it ``signals`` once ``ready()`` is true, and
    wait for it to end.

    Between two signals it waits until the command has said on stderr that it received the
    first (signals sent closer together may merge into one).

    :param command: a file of ``scripts/`` or a command module.
    :param args: its arguments.
    :param ready: polled until true, e.g. ``lambda: results.exists()``.
    :param signals: what to send, in order.
    :param timeout: seconds before the test fails.
    """
    argv, env = _command(command, args)
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert process.poll() is None, f"ended before it was ready:\n{''.join(lines)}"
            assert time.monotonic() < deadline, "never became ready"
            time.sleep(0.05)
        for count, number in enumerate(signals):
            while sum("received" in line for line in lines) < count:
                assert time.monotonic() < deadline, f"no word of the signal:\n{''.join(lines)}"
                time.sleep(0.02)
            process.send_signal(number)
        stdout = process.stdout.read()
        process.wait(max(deadline - time.monotonic(), 1))
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(5)
    return subprocess.CompletedProcess(argv, process.returncode, stdout, "".join(lines))


@pytest.fixture(scope="session")
def interrupt_script() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``interrupt_in_repo``: runs a command and sends it SIGINT/SIGTERM (interrupt tests)."""
    return interrupt_in_repo
