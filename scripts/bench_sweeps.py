"""Time one agents bench on each sweep backend: in-process, a local process pool, local Ray.

Runs ``negdl-bench`` (fewer env steps than the README's by default, ``--no-resume``) once per
backend and round, the backends taking turns so that a change in the machine's load hits each
alike, and writes a markdown table of the wall times, mean training time per agent, load
averages, and whether every backend produced the same rows (timing columns aside).

    python scripts/bench_sweeps.py --rounds 2 --total-timesteps 10000
"""

from __future__ import annotations

import csv
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from negdl.checks import check_bool, check_int
from negdl.cli import check_out_dir, check_out_file, run_main
from negdl.results import cpu_description, write_text_atomic
from negdl.sweep_backends import BACKEND_NAMES, ray_available

#: Columns of bench.csv that measure time, not what the agents did.
TIMING_COLUMNS = ("train_time_s", "env_steps_per_s")


@dataclass
class Args:
    """Time the agents bench on each sweep backend, taking turns."""

    backends: tuple[str, ...] = BACKEND_NAMES
    """backends to time (in-process processes ray)"""
    rounds: int = 2
    """runs of the bench per backend"""
    total_timesteps: int = 10_000
    """env steps per trained agent (the README's bench uses 100,000)"""
    workers: int = 2
    """worker processes of the processes backend (Ray takes one CPU per run)"""
    algos: tuple[str, ...] = ()
    """agents (none given: the bench's default, every agent)"""
    seeds: tuple[int, ...] = ()
    """seeds (none given: the bench's default)"""
    num_obstacles: tuple[int, ...] = ()
    """obstacle counts (none given: the bench's default)"""
    final_episodes: int = 0
    """episodes of each final evaluation (0: the bench's default)"""
    crowd: bool = True
    """also run the crowd scenario (--no-crowd: only the obstacle counts)"""
    work_dir: str = "runs/bench_sweeps"
    """where each bench writes its files"""
    out: str = "runs/bench_sweeps/bench_sweeps.md"
    """the markdown table"""

    def __post_init__(self) -> None:
        unknown = [name for name in self.backends if name not in BACKEND_NAMES]
        if unknown or not self.backends or len(set(self.backends)) != len(self.backends):
            raise ValueError(
                f"give each backend once, from {', '.join(BACKEND_NAMES)}; got {list(self.backends)}"
            )
        if "ray" in self.backends and not ray_available():
            raise ValueError("timing the ray backend needs Ray: pip install 'negdl[ray]'")
        check_int("rounds", self.rounds, 1)
        check_int("total_timesteps", self.total_timesteps, 1)
        check_int("workers", self.workers, 1)
        check_int("final_episodes", self.final_episodes, 0)
        check_bool("crowd", self.crowd)
        check_out_dir("--work-dir", self.work_dir)
        check_out_file("--out", self.out)


def bench_command(args: Args, backend: str, out_dir: Path) -> list[str]:
    """The negdl-bench command line of one timed run."""
    flags = {"in-process": [], "processes": ["--workers", str(args.workers)]}
    grid = [
        *(["--algos", *args.algos] if args.algos else []),
        *(["--seeds", *map(str, args.seeds)] if args.seeds else []),
        *(["--num-obstacles", *map(str, args.num_obstacles)] if args.num_obstacles else []),
        *(["--final-episodes", str(args.final_episodes)] if args.final_episodes else []),
        *([] if args.crowd else ["--no-crowd"]),
    ]
    return [
        "negdl-bench",
        "--total-timesteps", str(args.total_timesteps), *grid,
        *flags.get(backend, ["--backend", backend]),
        "--no-progress-bar", "--no-resume",
        "--out-dir", str(out_dir), "--tensorboard-dir", str(out_dir / "runs"),
    ]  # fmt: skip


def main(args: Args) -> None:
    measured: list[dict] = []
    for round_ in range(1, args.rounds + 1):
        for backend in args.backends:
            out_dir = Path(args.work_dir) / f"{backend}_round{round_}"
            command = bench_command(args, backend, out_dir)
            load_before = os.getloadavg()[0]
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "neg_agents.cli.bench", *command[1:]],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            seconds = time.perf_counter() - started
            with open(out_dir / "bench.csv") as handle:
                rows = list(csv.DictReader(handle))
            trained = [float(r["train_time_s"]) for r in rows if r["train_time_s"] != "nan"]
            measured.append(
                {
                    "backend": backend,
                    "round": round_,
                    "seconds": seconds,
                    "runs": len(rows),
                    "train": statistics.mean(trained) if trained else float("nan"),
                    "load": (load_before, os.getloadavg()[0]),
                    "command": shlex.join(command),
                    "outcome": [
                        {k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows
                    ],
                }
            )
            print(f"{backend}, round {round_}: {seconds:.1f} s", flush=True)
    write_table(args, measured)
    print(f"wrote {args.out}")


def write_table(args: Args, measured: list[dict]) -> None:
    """The markdown report of the timed runs."""
    same = all(m["outcome"] == measured[0]["outcome"] for m in measured)
    reference = statistics.median(
        m["seconds"] for m in measured if m["backend"] == args.backends[0]
    )
    lines = [
        f"# The agents bench on each sweep backend ({args.total_timesteps:,} env steps per agent)",
        "",
        f"Machine: {cpu_description()}, load average (1 min) {os.getloadavg()[0]:.1f} at the end. "
        f"Each row is one `negdl-bench` run, the backends taking turns; Ray's wall time includes "
        f"starting its local instance. Other jobs may share the machine: the load averages "
        f"before and after each run say how busy it was. Rows of every run identical (timing "
        f"columns aside): {'yes' if same else 'NO'}.",
        "",
        "| backend | round | wall time (s) | runs | mean training time per agent (s) | load before -> after |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in measured:
        lines.append(
            f"| {m['backend']} | {m['round']} | {m['seconds']:.1f} | {m['runs']} | "
            f"{'-' if math.isnan(m['train']) else format(m['train'], '.2f')} | "
            f"{m['load'][0]:.1f} -> {m['load'][1]:.1f} |"
        )
    lines += ["", f"Median wall time against {args.backends[0]}:", ""]
    for backend in args.backends:
        median = statistics.median(m["seconds"] for m in measured if m["backend"] == backend)
        lines.append(f"- {backend}: {median:.1f} s ({median / reference:.2f}x)")
    lines += ["", "Commands:", ""]
    lines += [f"- `{m['command']}`" for m in measured if m["round"] == 1]
    write_text_atomic(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    run_main("bench_sweeps.py", Args, main)
