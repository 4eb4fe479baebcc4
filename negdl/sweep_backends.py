"""Where a sweep's trials run: in this process, in a local process pool, or as Ray tasks.

A backend is a context manager (entering starts its workers or Ray connection) whose ``run``
yields each trial's :class:`~negdl.trials.TrialOutcome` as it finishes, in any order, each
trial run through :func:`negdl.trials.execute_trial`. Once ``stop.requested``, ``run`` drops
the trials in flight and raises :class:`~negdl.interrupt.StopRequested`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import multiprocessing
import os
import pickle
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from negdl.errors import UserError
from negdl.interrupt import StopOnSignal, StopRequested, terminate_child_processes
from negdl.trials import Trial, TrialOutcome, execute_trial, failed_outcome

#: How often (seconds) a backend waiting for trials looks for a stop request.
POLL_SECONDS = 0.2
#: The backends by name, as ``--backend`` takes them.
BACKEND_NAMES = ("in-process", "processes", "ray")


class Backend(contextlib.AbstractContextManager["Backend"]):
    """Runs trials (see the module docstring); subclasses override :meth:`run` and :meth:`describe`."""

    #: Trials that run at once (known once the backend is entered).
    slots: int = 1

    def __exit__(self, *exc_info: object) -> None:
        pass

    def run(
        self, function: Callable[[Trial], Any], trials: Sequence[Trial], stop: StopOnSignal
    ) -> Iterator[TrialOutcome]:
        """Run ``function`` on every trial and yield each outcome as it ends."""
        raise NotImplementedError

    def describe(self) -> str:
        """How trials run, for reports, e.g. ``"2 worker processes"``."""
        raise NotImplementedError


class InProcess(Backend):
    """One trial after another in this process: no extra dependency, nothing to pickle."""

    def run(
        self, function: Callable[[Trial], Any], trials: Sequence[Trial], stop: StopOnSignal
    ) -> Iterator[TrialOutcome]:
        for trial in trials:
            with stop.raising():  # a trial has no safe point of its own: it is dropped
                outcome = execute_trial(function, trial)
            yield outcome

    def describe(self) -> str:
        return "in-process, one trial at a time"


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group: the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class ProcessPool(Backend):
    """Up to ``workers`` trials at once in spawned worker processes of this machine (CUDA and
    threads start clean; a worker runs several trials one after another)."""

    def __init__(self, workers: int) -> None:
        self.slots = workers

    def run(
        self, function: Callable[[Trial], Any], trials: Sequence[Trial], stop: StopOnSignal
    ) -> Iterator[TrialOutcome]:
        if not trials:
            return
        try:
            pickle.dumps(function)
        except Exception as error:  # pickle raises several kinds (PicklingError, AttributeError...)
            raise UserError(
                "--backend processes sends the trial function to other processes, but it cannot "
                f"be pickled ({error}); use a module-level function, or functools.partial of one"
            ) from error
        with ProcessPoolExecutor(
            min(self.slots, len(trials)),
            multiprocessing.get_context("spawn"),
            initializer=_ignore_sigint,
        ) as pool:
            futures = {pool.submit(execute_trial, function, trial): trial for trial in trials}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                for future in done:  # trials that finished are kept, even after a stop request
                    try:
                        yield future.result()
                    except Exception as error:  # the worker died or could not unpickle
                        yield failed_outcome(futures[future], error)
                if stop.requested:
                    # The trials in flight are dropped. Their futures are not cancelled first:
                    # the pool, finding its workers gone, fails every pending future, and on a
                    # cancelled one that raises in its thread (CPython 3.11).
                    terminate_child_processes()
                    raise StopRequested(stop.signal_name)

    def describe(self) -> str:
        return f"{self.slots} worker processes"


def _execute_in(cwd: str, function: Callable[[Trial], Any], trial: Trial) -> TrialOutcome:
    """:func:`execute_trial` from the driver's working directory (where it exists), so relative
    paths mean the same on a Ray worker as in the command."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    return execute_trial(function, trial)


def ray_available() -> bool:
    """Whether the ``ray`` package is installed (without importing it)."""
    return importlib.util.find_spec("ray") is not None


class Ray(Backend):
    """Each trial a Ray task reserving ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs
    (fractions share one), so Ray runs as many at once as the cluster's free resources allow.

    Entering connects to Ray unless this process already did, leaving disconnects only what it
    connected. Trial folders should be on a file system every node sees at the same path.

    :param address: ``"auto"``, a head's ``host:port`` or ``ray://host:port``, or None (Ray's
        rules: ``$RAY_ADDRESS``, else the cluster ``ray start`` made here, else a new local one).
    """

    def __init__(
        self, address: str | None = None, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0
    ) -> None:
        if not ray_available():
            raise UserError("--backend ray needs Ray: pip install 'negdl[ray]'")
        self.address = address
        self.cpus_per_trial = cpus_per_trial
        self.gpus_per_trial = gpus_per_trial
        self._connected = False

    def __enter__(self) -> Ray:
        import ray

        if not ray.is_initialized():
            # Before the sweep's StopOnSignal: ray.init installs its own SIGTERM handler.
            ray.init(address=self.address)
            self._connected = True
        resources = ray.cluster_resources()
        fits = [
            resources.get("CPU", 0.0) / self.cpus_per_trial if self.cpus_per_trial else math.inf
        ]
        if self.gpus_per_trial:
            fits.append(resources.get("GPU", 0.0) / self.gpus_per_trial)
        if min(fits) < 1:
            self.__exit__()
            raise UserError(
                f"the Ray cluster has {resources.get('CPU', 0):g} CPUs and "
                f"{resources.get('GPU', 0):g} GPUs, too few for one trial "
                f"({self.cpus_per_trial:g} CPUs, {self.gpus_per_trial:g} GPUs): lower "
                "--cpus-per-trial / --gpus-per-trial or add nodes with `ray start --address ...`"
            )
        self.slots = int(min(fits))
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._connected:
            import ray

            ray.shutdown()
            self._connected = False

    def run(
        self, function: Callable[[Trial], Any], trials: Sequence[Trial], stop: StopOnSignal
    ) -> Iterator[TrialOutcome]:
        import ray

        task = ray.remote(_execute_in).options(
            num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial, name="negdl-trial"
        )
        function_ref = ray.put(function)  # sent to the object store once, not once per trial
        refs = {task.remote(os.getcwd(), function_ref, trial): trial for trial in trials}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=POLL_SECONDS)
            for ref in done:  # trials that finished are kept, even after a stop request
                trial = refs.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as error:  # the task's worker died, or the task was cancelled
                    yield failed_outcome(trial, error)
            if stop.requested:
                for ref in refs:
                    ray.cancel(ref, force=True)  # the trials in flight are dropped
                raise StopRequested(stop.signal_name)

    def describe(self) -> str:
        return (
            f"Ray tasks of {self.cpus_per_trial:g} CPU(s) and {self.gpus_per_trial:g} GPU(s) "
            f"each, up to {self.slots} at once"
        )
