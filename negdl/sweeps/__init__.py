"""Sweeps: one grid of trials (:mod:`~negdl.sweeps.grid`), run in-process, in a process pool or
on Ray by :mod:`~negdl.sweeps.runner`, with the command-line options of :mod:`~negdl.sweeps.options`;
the trials themselves are :mod:`negdl.trials`, where they run :mod:`negdl.sweep_backends`."""

from negdl.sweeps.grid import Grid
from negdl.sweeps.options import MAX_SEED, SweepOptions, execution_fields, execution_only
from negdl.sweeps.runner import Sweep, SweepResult, TrialsFailed

__all__ = [
    "MAX_SEED",
    "Grid",
    "Sweep",
    "SweepOptions",
    "SweepResult",
    "TrialsFailed",
    "execution_fields",
    "execution_only",
]
