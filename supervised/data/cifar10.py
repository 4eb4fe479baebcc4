"""CIFAR-10 from the official python batches, read without executing arbitrary pickle code.

Accepted layouts (torchvision's): ``<root>/cifar-10-python.tar.gz`` or the extracted
``<root>/cifar-10-batches-py/``. A restricted unpickler admits only numpy's array reconstruction,
so a tampered file cannot run code, and checks every array's declared size and type before numpy
allocates it; a batch file (or archive member) larger than any official one is not read.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from supervised.data.common import (
    DOWNLOAD_HINT,
    DataFileError,
    LabelledImages,
    download_file,
    images_and_labels,
    reader_folder,
)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_CLASSES = tuple("airplane automobile bird cat deer dog frog horse ship truck".split())
_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST_BATCHES = ("test_batch",)
_PIXELS = 3 * 32 * 32
#: An official batch: 10,000 images of 3,072 bytes. No array in a batch may be larger.
MAX_ARRAY_BYTES = 10_000 * _PIXELS
#: An official batch file is about 31 MB (the images, labels and file names).
MAX_BATCH_FILE_BYTES = 40 * 2**20
#: Array element kinds a batch may hold: numbers and strings, never Python objects.
_PLAIN_KINDS = "biufSU"

#: What unpickling a damaged or foreign file can raise.
_UNPICKLING_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                      IndexError, OverflowError, MemoryError)  # fmt: skip

_RECONSTRUCT = cast(Callable[..., np.ndarray], np.zeros(1).__reduce__()[0])


class _NdarrayType:
    """Stands for ``numpy.ndarray`` in a pickle: only ``_reconstruct`` may use it (calling it
    would allocate an array of any declared size)."""


def _plain_dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(*args)
    if dtype.kind not in _PLAIN_KINDS:
        raise pickle.UnpicklingError(f"refusing arrays of dtype {dtype}: batches hold numbers only")
    return dtype


def _checked_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's ``_reconstruct``, after checking the array's declared type and size."""
    if subtype is not _NdarrayType:
        raise pickle.UnpicklingError("refusing to rebuild anything but a plain numpy array")
    dtype = _plain_dtype(dtype) if not isinstance(dtype, bytes) else np.dtype(dtype.decode())
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if not 0 <= size <= MAX_ARRAY_BYTES:
        raise pickle.UnpicklingError(
            f"an array of shape {shape} declares {size:,} bytes, more than an official batch's "
            f"{MAX_ARRAY_BYTES:,}"
        )
    return _RECONSTRUCT(np.ndarray, shape, dtype)


# What numpy needs to rebuild a pickled ndarray, whether pickled by numpy 1 or 2, and the codec
# helper Python 3 protocol-2 pickles use for bytes, each checked. Nothing else may be resolved.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _checked_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _checked_reconstruct,
    ("numpy", "ndarray"): _NdarrayType,
    ("numpy", "dtype"): _plain_dtype,
    ("_codecs", "encode"): __import__("codecs").encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals needed for numpy arrays of plain data, each
    array no larger than an official batch's (:data:`MAX_ARRAY_BYTES`)."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: CIFAR-10 batches contain only numpy "
                "arrays, lists and strings"
            ) from None


def parse_cifar_batch(
    raw: bytes, source: str, how_to_fix: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Parse one pickled CIFAR-10 batch (a dict: ``data``, uint8 ``(N, 3072)`` channel-major, and
    ``labels``) into uint8 images ``(N, 3, 32, 32)`` and int64 labels."""
    try:
        batch = RestrictedUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except _UNPICKLING_ERRORS as error:
        raise DataFileError(
            f"{source} is not a valid CIFAR-10 batch ({error}); {how_to_fix}"
        ) from error
    if not isinstance(batch, dict):
        raise DataFileError(
            f"{source} holds a {type(batch).__name__}, not a CIFAR-10 batch dict; {how_to_fix}"
        )
    batch = {key.decode("latin1") if isinstance(key, bytes) else key: v for key, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or labels is None:
        raise DataFileError(f"{source} lacks the 'data' array or 'labels' list; {how_to_fix}")
    labels = integer_labels(labels, source, how_to_fix)
    if data.dtype != np.uint8 or data.shape != (len(labels), _PIXELS):
        raise DataFileError(
            f"{source} has data {data.dtype} {data.shape} and {len(labels)} labels; expected uint8 "
            f"(N, {_PIXELS}) with N labels; {how_to_fix}"
        )
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return images, torch.from_numpy(labels)


def integer_labels(labels: Any, source: str, how_to_fix: str) -> np.ndarray:
    """A batch's ``labels`` entry as int64 ``(N,)``; anything but a flat sequence of integers
    (floats are not truncated, bools, strings and nested lists not coerced) is a DataFileError."""
    if not isinstance(labels, (list, tuple, np.ndarray)):
        raise DataFileError(
            f"{source}: 'labels' must be a list of integers, got a {type(labels).__name__}; "
            f"{how_to_fix}"
        )
    try:
        array = np.asarray(labels)
    except (ValueError, TypeError, OverflowError) as error:  # ragged nesting, odd objects
        raise DataFileError(
            f"{source}: 'labels' must be a flat list of integers ({error}); {how_to_fix}"
        ) from error
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    # numpy picks the kind from the values: "i"/"u" only when every label is an integer.
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise DataFileError(
            f"{source}: 'labels' must be a flat list of integers, got {array.dtype} values of "
            f"shape {array.shape} (e.g. {array.flat[0]!r}); {how_to_fix}"
        )
    if array.dtype.kind == "u" and array.max() > np.iinfo(np.int64).max:
        raise DataFileError(f"{source}: 'labels' hold values beyond int64; {how_to_fix}")
    return array.astype(np.int64)


def _check_batch_size(source: Any, size: int, how_to_fix: str) -> None:
    if size > MAX_BATCH_FILE_BYTES:
        raise DataFileError(
            f"{source} holds {size:,} bytes, more than an official CIFAR-10 batch "
            f"({MAX_BATCH_FILE_BYTES:,} at most): it is not one; {how_to_fix}"
        )


def read_batches(root: Path, names: tuple[str, ...], how_to_fix: str) -> dict[str, bytes]:
    """The raw bytes of the named batches, from the extracted folder, else in one pass over the
    archive (a gzip tar cannot seek, so reading members one by one would decompress it again
    for each)."""
    folder = root / CIFAR10_FOLDER
    if folder.is_dir():
        missing = [name for name in names if not (folder / name).is_file()]
        if missing:
            raise DataFileError(f"missing CIFAR-10 batches {missing} in {folder}; {how_to_fix}")
        for name in names:
            _check_batch_size(folder / name, (folder / name).stat().st_size, how_to_fix)
        return {name: (folder / name).read_bytes() for name in names}
    archive = root / CIFAR10_ARCHIVE
    if not archive.is_file():
        raise DataFileError(
            f"missing CIFAR-10 data: neither {folder} nor {archive} exists; {how_to_fix}"
        )
    wanted = {f"{CIFAR10_FOLDER}/{name}": name for name in names}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    _check_batch_size(f"{archive}:{member.name}", member.size, how_to_fix)
                    found[wanted[member.name]] = tar.extractfile(member).read()  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise DataFileError(f"{archive} is corrupt or truncated ({error}); {how_to_fix}") from error
    missing = [member for member, name in wanted.items() if name not in found]
    if missing:
        raise DataFileError(f"{archive} has no member(s) {missing}; {how_to_fix}")
    return found


def load_cifar10(
    train: bool = True, root: str | os.PathLike[str] | None = None, download: bool = False
) -> LabelledImages:
    """Load the CIFAR-10 training (50000) or test (10000) split as tensors; arguments as
    :func:`~supervised.data.load_dataset` (``download`` fetches the archive, about 170 MB,
    unless the batches are already extracted)."""
    root_path = reader_folder(root, train, download)
    if download and not (root_path / CIFAR10_FOLDER).is_dir():
        download_file([CIFAR10_URL], root_path / CIFAR10_ARCHIVE, CIFAR10_MD5)
    how_to_fix = (
        f"download {CIFAR10_URL} into {root_path} (set NEGDL_DATA_DIR or root= to the folder "
        f"that contains it), or let negdl do it: {DOWNLOAD_HINT}"
    )
    names = _TRAIN_BATCHES if train else _TEST_BATCHES
    raw = read_batches(root_path, names, how_to_fix)
    parts = [parse_cifar_batch(raw[name], name, how_to_fix) for name in names]  # official order
    images, labels = (torch.cat(batches) for batches in zip(*parts, strict=True))
    return images_and_labels(
        images, labels, CIFAR10_CLASSES, f"CIFAR-10 {'train' if train else 'test'}", how_to_fix
    )
