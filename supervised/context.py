"""Where a run trains and what it reports to, passed as one object instead of three parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.tensorboard import SummaryWriter

from negdl.checks import check_bool


@dataclass(frozen=True)
class RunContext:
    """The device, TensorBoard writers and progress display of a run.

    :param device: where to train and evaluate; CUDA when present if None.
    :param writers: one TensorBoard writer (or None) per model trained together; empty: no
        logging. A single model logs to ``writers[0]``.
    """

    device: torch.device | str | None = None
    writers: Sequence[SummaryWriter | None] = ()
    progress: bool = True

    def __post_init__(self) -> None:
        check_bool("progress", self.progress)

    def writers_for(self, models: int) -> list[SummaryWriter | None]:
        """One writer (or None) per model, for ``models`` models trained together."""
        if self.writers and len(self.writers) != models:
            raise ValueError(f"need one writer (or None) per model, got {self.writers!r}")
        return list(self.writers) or [None] * models


#: The default: CUDA when present, no logging, progress bars.
DEFAULT_CONTEXT = RunContext()
