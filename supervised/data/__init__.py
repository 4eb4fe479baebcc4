"""Dataset readers (MNIST, EMNIST, CIFAR-10) that load official files into tensors, no torchvision;
``load_dataset`` by name and ``DataOptions``, the ``--data-dir``/``--download`` options of every
script."""

from supervised.data.cifar10 import RestrictedUnpickler, load_cifar10
from supervised.data.common import DataFileError, LabelledImages, resolve_data_dir
from supervised.data.datasets import DATASETS, DataOptions, load_dataset
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
