"""MNIST from the official IDX gzip files in ``<root>/MNIST/raw/`` (torchvision's layout)."""

from __future__ import annotations

import os

from supervised.data.common import (
    DOWNLOAD_HINT,
    LabelledImages,
    download_file,
    extracted_copy,
    images_and_labels,
    read_idx_pair,
    reader_folder,
)

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
#: Official file names and md5 sums.
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_CLASSES = tuple(str(digit) for digit in range(10))
#: Images in each official file: no larger MNIST file is read.
MNIST_COUNTS = {"train": 60_000, "t10k": 10_000}
#: Per-pixel mean and std of the training split, for input standardisation.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def load_mnist(
    train: bool = True, root: str | os.PathLike[str] | None = None, download: bool = False
) -> LabelledImages:
    """Load the MNIST training (60000) or test (10000) split from ``<root>/MNIST/raw/`` as
    tensors; arguments as :func:`~supervised.data.load_dataset`."""
    raw_dir = reader_folder(root, train, download) / "MNIST" / "raw"
    prefix = "train" if train else "t10k"
    names = (f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz")
    if download:
        for name in names:
            if (raw_dir / name).exists() or extracted_copy(raw_dir, name) is None:
                mirrors = [mirror + name for mirror in MNIST_MIRRORS]
                download_file(mirrors, raw_dir / name, MNIST_FILES[name])
    how_to_fix = (
        f"put the official MNIST files in {raw_dir} (set NEGDL_DATA_DIR or root= to the folder "
        f"that contains MNIST/raw/), or download them: {DOWNLOAD_HINT}"
    )
    images, labels = read_idx_pair(raw_dir, names, MNIST_COUNTS[prefix], how_to_fix)
    return images_and_labels(images, labels, MNIST_CLASSES, str(raw_dir), how_to_fix)
