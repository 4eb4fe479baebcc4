"""The options every supervised study command takes, declared and checked once, and the steps
every study runs and reports through.

A study is a sweep of trials (``negdl.sweeps``), one per seed or grid point: its results are
rewritten after every finished trial, running the command again skips the trials that finished,
trials run in local processes with ``--workers N`` or as Ray tasks with ``--backend ray``, and
Ctrl-C (or SIGTERM) drops the trials in flight, keeps the finished ones and exits with status
130 (143).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import torch

from negdl.checks import check_int
from negdl.cli import check_out_dir
from negdl.results import machine_description, write_csv, write_text_atomic
from negdl.sweeps import Sweep, SweepOptions, SweepResult, execution_only
from negdl.trials import Trial
from supervised.data import DataOptions
from supervised.runtime import select_device


@dataclass
class RunOptions(SweepOptions, DataOptions):
    """Seeds, test subset, device, threads, progress and output folder of a study's sweep, plus
    the data (``--data-dir``, ``--download``) and sweep options."""

    seeds: tuple[int, ...] = (0,)
    """seeds; the study runs once per seed"""
    test_subset: int = 0
    """use only the first N test images (0: all); for smoke runs"""
    device: str | None = execution_only(None)
    """cpu or cuda; when not given, cuda when available"""
    out_dir: str = execution_only("runs/supervised")
    """where results and TensorBoard runs go"""
    progress: bool = execution_only(True)
    """show progress bars"""
    threads: int = execution_only(0)
    """torch CPU threads (0: torch's default); 1 avoids thrashing on a busy machine"""

    def __post_init__(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"need at least one seed, each once, got {self.seeds}")
        for seed in self.seeds:
            check_int("seed", seed, 0)
        if min(self.test_subset, self.threads, getattr(self, "train_subset", 0)) < 0:
            raise ValueError("subsets and threads must be >= 0")
        select_device(self.device)
        super().__post_init__()  # --data-dir, --download, the sweep's options
        check_out_dir("--out-dir", self.out_dir)

    def use_threads(self) -> None:
        """Set torch's CPU threads to ``threads`` (0: leave torch's default); each process of a
        sweep calls it, the workers too."""
        if self.threads:
            torch.set_num_threads(self.threads)

    def sweep_settings(self, *grid_fields: str, ignore: Sequence[str] = ()) -> dict[str, Any]:
        # Nested configs (e.g. --cbomf.*) as plain data, so a resumed sweep compares them too.
        nested = [item.name for item in fields(self) if is_dataclass(getattr(self, item.name))]
        settings = super().sweep_settings(*grid_fields, ignore=(*ignore, *nested))
        return settings | {
            name: asdict(getattr(self, name)) for name in nested if name not in ignore
        }

    def report_sweep(
        self,
        prog: str,
        sweep: Sweep,
        write_report: Callable[[Any, list[dict], Path, float, Any, str], None],
        device: Any,
        start: float,
    ) -> None:
        """Run ``sweep`` and rewrite its report after every trial with
        ``write_report(self, rows, sweep's folder, seconds since start, device, summary)``."""
        out_dir = Path(sweep.root)

        def report(result: SweepResult) -> None:
            seconds = time.perf_counter() - start
            write_report(self, result.rows("results"), out_dir, seconds, device, result.summary())

        self.run_reported(sweep, prog, self.progress, report)
        print(f"results in {out_dir}/results.md ({time.perf_counter() - start:.0f} s)")

    def run_seeds(
        self,
        prog: str,
        run_seed: Callable[[Any, Trial], Any],
        load: Callable[[Any], tuple],
        write_report: Callable[[Any, list[dict], Path, float, Any, str], None],
        ignore: Sequence[str] = (),
    ) -> None:
        """What a study with one trial per seed runs: the threads set, ``load(self)`` (which
        returns the device first) called once so that any data error, or the download, comes
        before the first trial, then ``run_seed(self, trial)`` for each seed under ``out_dir``,
        reported by :meth:`report_sweep`.

        :param ignore: fields that only change where or how results are shown.
        """
        start = time.perf_counter()
        self.use_threads()
        device = load(self)[0]
        trial = functools.partial(run_seed, self)
        sweep = self.seed_sweep(trial, self.seeds, Path(self.out_dir), ignore)
        self.report_sweep(prog, sweep, write_report, device, start)


@dataclass
class TrainRunOptions(RunOptions):
    """:class:`RunOptions` of a study that trains: also a training subset."""

    train_subset: int = 0
    """use only the first N training images (0: all); for smoke runs"""


def accuracy_rows(label: str, by_set: dict[str, float], **columns: Any) -> list[dict]:
    """One result row per test set, ``columns`` then the set's name and its accuracy (%) to
    two decimals; printed as one line, ``<label>: <set> <accuracy>, ...``."""
    print(
        f"{label}: " + ", ".join(f"{name} {value:.2f}" for name, value in by_set.items()),
        flush=True,
    )
    return [
        {**columns, "test_set": name, "accuracy": round(value, 2)} for name, value in by_set.items()
    ]


def seeds_of(rows: Sequence[dict]) -> list[int]:
    """The seeds the result rows come from, sorted (the report's title names them)."""
    return sorted({row["seed"] for row in rows})


def machine_line(device: Any, seconds: float, summary: str) -> str:
    """The report's line on where and how long the study ran (``summary``: the sweep's)."""
    return f"Machine: {machine_description(device)}. Wall time: {seconds / 60:.1f} min. {summary}"


def write_results(out_dir: Path, text: Sequence[str], **tables: list[dict]) -> None:
    """Write each table of result rows to ``out_dir/<name>.csv`` and the report's lines to
    ``out_dir/results.md``."""
    for name, rows in tables.items():
        write_csv(rows, out_dir / f"{name}.csv")
    write_text_atomic(out_dir / "results.md", "\n".join(text) + "\n")
