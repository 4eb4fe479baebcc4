"""negdl-bench: train and evaluate every agent over seeds and obstacle counts.

    negdl-bench --seeds 0 1 2 --num-obstacles 10 30

Writes bench.csv, bench_curves.csv, bench.md and learning_curves.png into --out-dir
(see ``neg_agents.bench``), rewritten after every finished run. Ctrl-C (or SIGTERM) drops the
runs in flight, keeps the finished ones' files and exits with status 130 (143); a second
Ctrl-C aborts at once.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from neg_agents.bench import BenchConfig, run_bench
from negdl.cli import run_main
from negdl.interrupt import StopOnSignal, StopRequested


def run(config: BenchConfig, command: str) -> Path:
    """Run the bench; on Ctrl-C say what was kept and exit with 130."""
    with StopOnSignal("negdl-bench") as stop:
        try:
            return run_bench(config, command, lambda: stop.requested)
        except StopRequested as stopped:
            kept = str(stopped)
    stop.exit(kept)


def main(argv: Sequence[str] | None = None) -> None:
    command = "negdl-bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    path = run_main("negdl-bench", BenchConfig, lambda config: run(config, command), argv)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
