"""Dataset readers (MNIST, EMNIST, CIFAR-10) that load official files into tensors, no torchvision;
``load_dataset`` by name and ``DataOptions``, the ``--data-dir``/``--download`` options of every
script."""

from __future__ import annotations

import os
from dataclasses import dataclass

from negdl.checks import check_bool
from negdl.cli import check_in_dir, check_out_dir
from negdl.sweeps import execution_only
from supervised.data.cifar10 import RestrictedUnpickler, load_cifar10
from supervised.data.common import DataFileError, LabelledImages, resolve_data_dir
from supervised.data.emnist import EMNIST_CLASSES, load_emnist
from supervised.data.mnist import MNIST_MEAN, MNIST_STD, load_mnist

__all__ = [
    "DATASETS",
    "EMNIST_CLASSES",
    "MNIST_MEAN",
    "MNIST_STD",
    "DataFileError",
    "DataOptions",
    "LabelledImages",
    "RestrictedUnpickler",
    "load_cifar10",
    "load_dataset",
    "load_emnist",
    "load_mnist",
    "resolve_data_dir",
]

#: Every dataset name ``load_dataset`` accepts.
DATASETS = ("mnist", *(f"emnist-{split}" for split in EMNIST_CLASSES), "cifar10")


def load_dataset(
    name: str,
    train: bool = True,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> LabelledImages:
    """Load the training (``train``) or test split of dataset ``name``, one of :data:`DATASETS`:
    ``mnist``, ``emnist-<split>`` (balanced, mnist, digits, letters) or ``cifar10``.

    :param root: data directory; default ``$NEGDL_DATA_DIR``, then ``~/.cache/negdl/data``.
    :param download: fetch missing files from the official mirrors, md5-verified (a file
        already there is verified too, and fetched again if it does not match).
    """
    if name == "mnist":
        return load_mnist(train, root, download)
    if name == "cifar10":
        return load_cifar10(train, root, download)
    if name.startswith("emnist-") and name.removeprefix("emnist-") in EMNIST_CLASSES:
        return load_emnist(name.removeprefix("emnist-"), train, root, download)
    raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")


@dataclass
class DataOptions:
    """The data options of every script that reads a dataset: subclass it for a script's ``Args``
    and load with ``args.load("mnist", train=True)``. A subclass's ``__post_init__`` calls
    ``super().__post_init__()``, which checks the folder: one to read from, or with
    ``--download`` one that can be created and written."""

    data_dir: str | None = execution_only(None)
    """folder holding MNIST/raw/, EMNIST/raw/ or the CIFAR-10 archive; when not given, $NEGDL_DATA_DIR, else ~/.cache/negdl/data"""
    download: bool = execution_only(False)
    """download missing dataset files from the official mirrors into that folder (checksums verified before use)"""

    def __post_init__(self) -> None:
        check_bool("--download", self.download)
        if self.download:
            check_out_dir("--data-dir", self.data_dir)
        else:
            check_in_dir("--data-dir", self.data_dir)

    def load(self, name: str, train: bool = True) -> LabelledImages:
        """One split of dataset ``name`` (see :func:`load_dataset`) from these options."""
        return load_dataset(name, train, self.data_dir, self.download)
