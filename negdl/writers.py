"""TensorBoard writers for the runs of one script: one per run name, opened on first use."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter


class TensorBoardWriters(contextlib.AbstractContextManager["TensorBoardWriters"]):
    """One :class:`SummaryWriter` per run name (``writers("SN")``) in a sub-folder of ``root``
    (characters that do not belong in a folder name become ``_``), made when first asked for;
    a context manager that closes them all."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.writers: dict[str, SummaryWriter] = {}

    def __call__(self, name: str) -> SummaryWriter:
        if name not in self.writers:
            self.writers[name] = SummaryWriter(str(self.root / re.sub(r"[^\w.+-]", "_", name)))
        return self.writers[name]

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
