"""negdl-bench: train and evaluate every agent over seeds and obstacle counts.

    negdl-bench --seeds 0 1 2 --num-obstacles 10 30

Writes bench.csv, bench_curves.csv, bench.md and learning_curves.png into --out-dir
(see ``neg_agents.bench``).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence

from neg_agents.bench import BenchConfig, run_bench
from negdl.cli import run_main


def main(argv: Sequence[str] | None = None) -> None:
    command = "negdl-bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    path = run_main("negdl-bench", BenchConfig, lambda config: run_bench(config, command), argv)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
