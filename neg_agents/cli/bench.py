"""negdl-bench: train and evaluate every agent over seeds and obstacle counts.

    negdl-bench --seeds 0 1 2 --num-obstacles 10 30

    negdl-bench --workers 2                           # two runs at once, in local processes
    negdl-bench --backend ray --address auto          # every run a Ray task on a cluster

Writes bench.csv, bench_curves.csv, bench.md and learning_curves.png into --out-dir (see
``neg_agents.bench``), rewritten after every finished run. Started again, it runs only the runs
that have not finished (--no-resume: all of them). Ctrl-C: see docs/guide/reliability.md.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence

from neg_agents.bench import BenchConfig, run_bench
from negdl.cli import run_main


def main(argv: Sequence[str] | None = None) -> None:
    command = "negdl-bench " + shlex.join(sys.argv[1:] if argv is None else argv)

    def run(config: BenchConfig) -> None:
        # Inside run_main, which turns a Ctrl-C's Stopped into status 130 and ends quietly when
        # the reader has gone.
        print(f"wrote {run_bench(config, command)}")

    run_main("negdl-bench", BenchConfig, run, argv)


if __name__ == "__main__":
    main()
