"""scripts/play.py and scripts/bench_env.py run end to end (as subprocesses, headless)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_play_runs_headless():
    out = run("play.py", "--episodes", "2", "--max-steps", "5", "--num-obstacles", "3")
    assert out.count("return") == 2 and "steps 5" in out


def test_bench_env_writes_its_table(tmp_path):
    table = tmp_path / "bench.md"
    out = run("bench_env.py", "--seconds", "0.02", "--rounds", "1", "--out", str(table))
    text = table.read_text()
    assert text.strip() == out.strip()
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| NegCollision") or line.startswith("| CartPole")
    ]
    assert len(rows) == 8
    assert rows[0].startswith("| CartPole-v1 (gym.make) |") and rows[0].endswith("| 1.00x | - |")
