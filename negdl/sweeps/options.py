"""The command-line options of a script that runs a sweep (:class:`SweepOptions`, which its
``Args`` derives from) and the settings a sweep's records keep from them: every field but those
its declaration marks :func:`execution_only`. A script's pattern::

    def run_seed(args: Args, trial: Trial) -> dict[str, list[dict]]:
        seed_everything(trial.params["seed"])
        ...  # TensorBoard runs and checkpoints into trial.dir
        return {"results": rows}

    def main(args: Args) -> None:
        sweep = args.seed_sweep(functools.partial(run_seed, args), args.seeds, out_dir)
        args.run_reported(sweep, "script.py", args.progress,
                          lambda result: write_report(result.rows("results")))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from negdl.checks import check_bool, check_choice, check_int, check_number
from negdl.sweep_backends import BACKEND_NAMES, Backend, InProcess, ProcessPool, Ray, ray_available
from negdl.sweeps.grid import Grid
from negdl.sweeps.runner import Sweep, SweepResult, plain
from negdl.trials import Trial

T = TypeVar("T")

EXECUTION_ONLY = "execution_only"


def execution_only(default: T) -> T:
    """A dataclass field with this default that says how or where trials run, not what they
    compute (a device, an output folder): a sweep's settings leave it out, so changing it does
    not stop a sweep from resuming (a subclass declaring it again keeps the mark)."""
    return dataclasses.field(default=default, metadata={EXECUTION_ONLY: True})


def execution_fields(config: Any) -> frozenset[str]:
    """The fields of dataclass ``config`` (instance or class) that it or a base class marks
    :func:`execution_only`."""
    classes = config.__mro__ if isinstance(config, type) else type(config).__mro__
    return frozenset(
        item.name
        for cls in classes
        if dataclasses.is_dataclass(cls)
        for item in dataclasses.fields(cls)
        if item.metadata.get(EXECUTION_ONLY)
    )


#: The largest seed a seed sweep takes: what torch's and numpy's generators accept.
MAX_SEED = 2**63 - 1


@dataclass
class SweepOptions:
    """The options of every command that runs a sweep, for a script's ``Args`` to derive from
    (a subclass with its own ``__post_init__`` calls ``super().__post_init__()``)."""

    backend: str | None = execution_only(None)
    """where trials run: in-process (one after another, here), processes (a pool of --workers processes on this machine) or ray (Ray tasks, see --address); when not given, processes if --workers > 1, else in-process"""
    workers: int = execution_only(1)
    """trials at once with --backend processes (N > 1 alone chooses that backend)"""
    address: str | None = execution_only(None)
    """with --backend ray: auto (the cluster this machine joined with `ray start`) or the head's host:port; when not given, $RAY_ADDRESS, else a cluster started on this machine, else a new local Ray instance"""
    cpus_per_trial: float = execution_only(1.0)
    """with --backend ray: CPUs each trial reserves (Ray runs as many trials at once as free CPUs and GPUs allow)"""
    gpus_per_trial: float = execution_only(0.0)
    """with --backend ray: GPUs each trial reserves (> 0 places trials on nodes with a GPU)"""
    resume: bool = execution_only(True)
    """skip the trials that finished in an earlier run with the same settings (--no-resume runs them all again)"""

    def __post_init__(self) -> None:
        check_int("workers", self.workers, 1)
        check_bool("resume", self.resume)
        check_number("cpus_per_trial", self.cpus_per_trial, 0, low_open=True)
        check_number("gpus_per_trial", self.gpus_per_trial, 0)
        if self.backend is not None:
            check_choice("backend", self.backend, BACKEND_NAMES)
        backend = self.sweep_backend
        if self.workers > 1 and backend != "processes":
            raise ValueError(f"--workers is for --backend processes, not {backend}")
        if backend != "ray" and (
            self.address is not None or self.cpus_per_trial != 1.0 or self.gpus_per_trial != 0.0
        ):
            raise ValueError(
                "--address, --cpus-per-trial and --gpus-per-trial are for --backend ray"
            )
        if backend == "ray" and not ray_available():
            raise ValueError("--backend ray needs Ray: pip install 'negdl[ray]'")

        parent = getattr(super(), "__post_init__", None)
        if parent is not None:  # the script's other option classes, e.g. DataOptions
            parent()

    @property
    def sweep_backend(self) -> str:
        return self.backend or ("processes" if self.workers > 1 else "in-process")

    def make_backend(self) -> Backend:
        if self.sweep_backend == "ray":
            return Ray(self.address, self.cpus_per_trial, self.gpus_per_trial)
        if self.sweep_backend == "processes":
            return ProcessPool(self.workers)
        return InProcess()

    def run_sweep(
        self,
        sweep: Sweep,
        prog: str,
        progress: bool = True,
        on_update: Callable[[SweepResult], None] | None = None,
    ) -> SweepResult:
        """``sweep.run`` on the backend these options ask for, resuming unless ``--no-resume``."""
        return sweep.run(
            self.make_backend(),
            prog=prog,
            progress=progress,
            resume=self.resume,
            on_update=on_update,
        )

    def run_reported(
        self, sweep: Sweep, prog: str, progress: bool, report: Callable[[SweepResult], None]
    ) -> SweepResult:
        """:meth:`run_sweep` with ``report`` (which writes the tables of the trials finished so
        far) after each finished trial and once more at the end, then ``raise_for_failures``."""
        result = self.run_sweep(sweep, prog, progress, report)
        if result.finished:
            report(result)
        result.raise_for_failures()
        return result

    def seed_sweep(
        self,
        function: Callable[[Trial], Any],
        seeds: Sequence[int],
        root: str | Path,
        ignore: Sequence[str] = (),
    ) -> Sweep:
        """One trial per seed (each in [0, :data:`MAX_SEED`], checked before any trial starts),
        in ``<root>/seed<seed>``, with :meth:`sweep_settings` but ``seeds`` and ``ignore``."""
        for seed in seeds:
            check_int("seeds", seed, 0, MAX_SEED)
        return Sweep(
            function,
            Grid(seed=tuple(seeds)),
            root,
            name="seed{seed}",
            settings=self.sweep_settings("seeds", ignore=ignore),
        )

    def sweep_settings(self, *grid_fields: str, ignore: Sequence[str] = ()) -> dict[str, Any]:
        """This command's fields that change what a trial computes, as plain data: every field
        but ``grid_fields`` (where the grid's axes come from), ``ignore`` and those marked
        :func:`execution_only`."""
        left_out = execution_fields(self) | set(grid_fields) | set(ignore)
        return plain(
            {
                item.name: getattr(self, item.name)
                for item in dataclasses.fields(self)
                if item.name not in left_out
            }
        )
