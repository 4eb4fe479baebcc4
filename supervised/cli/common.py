"""The options every supervised study command takes, declared and checked once, and the steps
every study runs and reports through.

A study is a sweep of trials (``negdl.sweeps``), one per seed (``<out_dir>/seed<k>/``, with its
TensorBoard runs) unless it says otherwise; its ``results.csv`` and ``results.md`` (mean ± std
over seeds) are rewritten after every finished trial.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import torch

from negdl.checks import check_int
from negdl.cli import check_out_dir
from negdl.results import machine_description, write_csv, write_text_atomic
from negdl.sweeps import Sweep, SweepOptions, SweepResult, execution_only
from negdl.trials import Trial, cached_per_process
from supervised.data import DataOptions, LabelledImages
from supervised.runtime import select_device


def check_known(what: str, names: Sequence[str], known: Collection[str]) -> None:
    """Refuse the ``names`` not among ``known``, naming them and the choices."""
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown {what}(s) {unknown}; choose from {list(known)}")


@dataclass
class Report:
    """What a study's report is written from: the finished trials' rows by table, and where and
    how long the study ran (``summary``: the sweep's sentence)."""

    tables: dict[str, list[dict]]
    out_dir: Path
    device: torch.device
    seconds: float
    summary: str = ""

    @property
    def rows(self) -> list[dict]:
        """The rows of the ``results`` table."""
        return self.tables["results"]

    def head(self, title: str, settings: str, how: str = "") -> list[str]:
        """The report's first lines: ``title`` with the seeds, ``settings``, then where and how
        long it ran (``how``: after the wall time, e.g. ``", all seeds stacked"``)."""
        seeds = sorted({row["seed"] for rows in self.tables.values() for row in rows})
        return [
            f"# {title}, mean ± std over seeds {seeds}",
            "",
            settings,
            f"Machine: {machine_description(self.device)}. Wall time: "
            f"{self.seconds / 60:.1f} min{how}. {self.summary}",
        ]

    def write(self, text: Sequence[str]) -> None:
        """Write each table to ``<out_dir>/<table>.csv`` (an empty one: no file) and ``text`` to
        ``results.md``."""
        for name, rows in self.tables.items():
            path = self.out_dir / f"{name}.csv"
            if rows:
                write_csv(rows, path)
            else:  # e.g. no attack suite asked for; a file from an earlier run would mislead
                path.unlink(missing_ok=True)
        write_text_atomic(self.out_dir / "results.md", "\n".join(text) + "\n")


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

    def loaded(self, load: Callable[[Any, torch.device], Any]) -> tuple[torch.device, Any]:
        """The device and ``load(self, device)``, made once per process (the trials a process
        runs share it), after setting torch's CPU threads."""
        if self.threads:
            torch.set_num_threads(self.threads)

        def make() -> tuple[torch.device, Any]:
            device = select_device(self.device)
            return device, load(self, device)

        return cached_per_process((load.__module__, load.__qualname__, repr(self)), make)

    def test_split(self, dataset: str) -> LabelledImages:
        """The test split of ``dataset``, cut to ``--test-subset``."""
        test = self.load(dataset, train=False)
        return test.subset(slice(0, self.test_subset)) if self.test_subset else test

    def sweep_settings(self, *grid_fields: str, ignore: Sequence[str] = ()) -> dict[str, Any]:
        # Nested configs (e.g. --cbomf.*) as plain data, so a resumed sweep compares them too.
        nested = [item.name for item in fields(self) if is_dataclass(getattr(self, item.name))]
        settings = super().sweep_settings(*grid_fields, ignore=(*ignore, *nested))
        return settings | {
            name: asdict(getattr(self, name)) for name in nested if name not in ignore
        }

    def run_study(
        self,
        prog: str,
        load: Callable[[Any, torch.device], Any],
        write_report: Callable[[Any, Report], None],
        make_sweep: Callable[[torch.device], Sweep],
    ) -> None:
        """Call ``load`` once (see :meth:`loaded`) so that any data error, or the download,
        comes before the first trial, run the sweep ``make_sweep(device)`` and rewrite its
        report with ``write_report(self, report)`` after every finished trial."""
        start = time.perf_counter()
        device = self.loaded(load)[0]
        sweep = make_sweep(device)
        out_dir = Path(sweep.root)

        def report(result: SweepResult) -> None:
            names = dict.fromkeys(name for tables in result.finished.values() for name in tables)
            tables = {name: result.rows(name) for name in names}
            seconds = time.perf_counter() - start
            write_report(self, Report(tables, out_dir, device, seconds, result.summary()))

        self.run_reported(sweep, prog, self.progress, report)
        print(f"results in {out_dir}/results.md ({time.perf_counter() - start:.0f} s)")

    def run_seeds(
        self,
        prog: str,
        run_seed: Callable[[Any, Trial], Any],
        load: Callable[[Any, torch.device], Any],
        write_report: Callable[[Any, Report], None],
        ignore: Sequence[str] = (),
        subfolder: str = "",
    ) -> None:
        """:meth:`run_study` with one trial ``run_seed(self, trial)`` per seed, under
        ``<out_dir>/<subfolder>``; ``ignore``: fields that only change where or how results show."""
        trial = functools.partial(run_seed, self)
        root = Path(self.out_dir, subfolder)
        self.run_study(
            prog, load, write_report, lambda _: self.seed_sweep(trial, self.seeds, root, ignore)
        )


@dataclass
class TrainRunOptions(RunOptions):
    """:class:`RunOptions` of a study that trains: also a training subset."""

    train_subset: int = 0
    """use only the first N training images (0: all); for smoke runs"""

    def splits(self, dataset: str) -> tuple[LabelledImages, LabelledImages]:
        """The training and test splits of ``dataset``, cut to the subsets."""
        train = self.load(dataset, train=True)
        train = train.subset(slice(0, self.train_subset)) if self.train_subset else train
        return train, self.test_split(dataset)

    def subsets(self) -> str:
        """The subsets, as the reports say them."""
        return (
            f"{self.train_subset or 'all'} training images, {self.test_subset or 'all'} test images"
        )


def section(title: str, *lines: str) -> list[str]:
    """A report's section: a blank line, the heading ``## title``, a blank line, ``lines``."""
    return ["", f"## {title}", "", *lines]


def accuracy_rows(label: str, by_set: dict[str, float], **columns: Any) -> list[dict]:
    """One result row per test set, ``columns`` then the set's name and its accuracy (%) to
    two decimals; printed as one line, ``<label>: <set> <accuracy>, ...``."""
    scores = ", ".join(f"{name} {value:.2f}" for name, value in by_set.items())
    print(f"{label}: {scores}", flush=True)
    return [
        {**columns, "test_set": name, "accuracy": round(value, 2)} for name, value in by_set.items()
    ]
