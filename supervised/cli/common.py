"""The options every supervised study command takes, declared and checked once."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import torch

from negdl.checks import check_int
from negdl.cli import check_out_dir
from negdl.sweeps import Sweep, SweepOptions, SweepResult, execution_only
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
        ``write_report(self, rows, out_dir, seconds since start, device, summary)``."""
        out_dir = Path(self.out_dir)

        def report(result: SweepResult) -> None:
            seconds = time.perf_counter() - start
            write_report(self, result.rows("results"), out_dir, seconds, device, result.summary())

        self.run_reported(sweep, prog, self.progress, report)
        print(f"results in {out_dir}/results.md ({time.perf_counter() - start:.0f} s)")


@dataclass
class TrainRunOptions(RunOptions):
    """:class:`RunOptions` of a study that trains: also a training subset."""

    train_subset: int = 0
    """use only the first N training images (0: all); for smoke runs"""
