"""Synthetic dataset files in the exact official layouts, and small learnable data sets."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from supervised.data import LabelledImages


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: magic 0x0000080<ndim>, big-endian dims, then the data."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def digit_like_images(
    labels: np.ndarray, size: int = 28, channels: int = 0, seed: int = 0
) -> np.ndarray:
    """uint8 images whose bright block's position encodes the label, plus noise: easy to learn."""
    rng = np.random.default_rng(seed)
    count = len(labels)
    images = rng.integers(0, 40, size=(count, size, size), dtype=np.uint8)
    for index, label in enumerate(labels):
        row, col = divmod(int(label) % 16, 4)
        block = size // 4
        images[index, row * block : (row + 1) * block, col * block : (col + 1) * block] = 255
    if channels:
        images = np.repeat(images[:, None], channels, axis=1)
    return images


def write_mnist(root: Path, train_count: int = 256, test_count: int = 64) -> Path:
    """Write the four MNIST IDX gzip files into ``root/MNIST/raw``."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for prefix, count in (("train", train_count), ("t10k", test_count)):
        labels = rng.integers(0, 10, count).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(idx_bytes(digit_like_images(labels)))
        )
        (raw / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    return root


class Py2StylePickler(pickle._Pickler):  # type: ignore[name-defined]
    """Pickles ``bytes`` as Python 2 ``str`` (BINSTRING opcodes), as the official CIFAR files do."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def py2_pickle(obj: object) -> bytes:
    buffer = io.BytesIO()
    Py2StylePickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def cifar_batch(count: int, seed: int) -> bytes:
    """One CIFAR-10 python batch: dict of byte-string keys, uint8 (N, 3072) data, label list."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count)
    data = digit_like_images(labels, size=32, channels=3, seed=seed).reshape(count, 3072)
    return py2_pickle(
        {
            b"batch_label": b"synthetic batch",
            b"labels": [int(label) for label in labels],
            b"data": data,
            b"filenames": [b"img_%d.png" % i for i in range(count)],
        }
    )


CIFAR_NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_cifar_archive(root: Path, per_batch: int = 8) -> Path:
    """Write ``root/cifar-10-python.tar.gz`` with the official member names."""
    root.mkdir(parents=True, exist_ok=True)
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for seed, name in enumerate(CIFAR_NAMES):
            payload = cifar_batch(per_batch, seed)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return archive


def write_emnist_zip(root: Path, split: str, labels: np.ndarray, upright: np.ndarray) -> Path:
    """Write ``root/EMNIST/raw/gzip.zip`` holding one split, images stored transposed."""
    raw = root / "EMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    archive = raw / "gzip.zip"
    stored = upright.transpose(0, 2, 1)
    with zipfile.ZipFile(archive, "w") as zipped:
        for part in ("train", "test"):
            zipped.writestr(
                f"gzip/emnist-{split}-{part}-images-idx3-ubyte.gz", gzip.compress(idx_bytes(stored))
            )
            zipped.writestr(
                f"gzip/emnist-{split}-{part}-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(labels))
            )
    return archive


@pytest.fixture
def mnist_root(tmp_path: Path) -> Path:
    """A data directory with small synthetic MNIST files in the official format."""
    return write_mnist(tmp_path / "data")


def learnable_data(count: int = 256, classes: int = 10, seed: int = 0) -> LabelledImages:
    """A small easy 28x28 classification set as tensors."""
    labels = np.random.default_rng(seed).integers(0, classes, count)
    images = torch.from_numpy(digit_like_images(labels, seed=seed)).float().div(255).unsqueeze(1)
    return LabelledImages(
        images, torch.from_numpy(labels).long(), tuple(str(i) for i in range(classes))
    )


@pytest.fixture
def small_data() -> LabelledImages:
    return learnable_data()


class SyntheticFiles:
    """The file writers above, handed to tests as a fixture (test modules cannot import conftest
    under ``--import-mode=importlib``)."""

    idx_bytes = staticmethod(idx_bytes)
    digit_like_images = staticmethod(digit_like_images)
    write_mnist = staticmethod(write_mnist)
    py2_pickle = staticmethod(py2_pickle)
    cifar_batch = staticmethod(cifar_batch)
    write_cifar_archive = staticmethod(write_cifar_archive)
    write_emnist_zip = staticmethod(write_emnist_zip)
    learnable_data = staticmethod(learnable_data)
    cifar_names = CIFAR_NAMES


@pytest.fixture
def synthetic() -> type[SyntheticFiles]:
    return SyntheticFiles


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run each test on one thread: on a shared 2-core machine, multi-threaded torch kernels
    spin against other jobs and get many times slower; restored afterwards for other suites."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
