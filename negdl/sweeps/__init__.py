"""Sweeps: one description of a grid of trials, run in-process, in a process pool or on Ray.

- :mod:`negdl.sweeps.grid`: the :class:`Grid` of named parameters;
- :mod:`negdl.sweeps.runner`: the :class:`Sweep` that runs a grid's trials, writes their
  records and resumes a restarted sweep, and its :class:`SweepResult`;
- :mod:`negdl.sweeps.options`: :class:`SweepOptions`, the command-line options of a script
  that runs a sweep (``--backend``, ``--workers``, ``--no-resume``, ...), with the pattern
  such a script follows, and :func:`execution_only`, which marks a field that a sweep's
  settings leave out.

The trials themselves are :mod:`negdl.trials`; where they run, :mod:`negdl.sweep_backends`.
"""

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
