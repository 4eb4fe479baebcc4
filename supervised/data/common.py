"""Shared pieces of the dataset readers: the tensor container, the data directory, IDX parsing,
file reading with clear errors, and verified downloads.

Readers never trust a file's sizes: decompression stops once the output exceeds the largest
official file of its kind (a gzip bomb is refused after reading that much, not after filling
memory), and IDX headers are checked against the format's known sizes before any array is made.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import struct
import tempfile
import urllib.request
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from negdl.errors import UserError

DATA_DIR_ENV = "NEGDL_DATA_DIR"
#: Used when neither an explicit ``root`` nor ``NEGDL_DATA_DIR`` is given.
DEFAULT_DATA_DIR = Path.home() / ".cache" / "negdl" / "data"
#: How a user asks for the official files, in error messages.
DOWNLOAD_HINT = "pass --download to the script (download=True in Python)"


class DataFileError(RuntimeError, UserError):
    """A dataset file is missing, truncated or not in the expected format."""


#: Every MNIST and EMNIST image is 28 x 28 uint8 pixels.
IDX_IMAGE_SHAPE = (28, 28)


def idx_file_bytes(count: int, item_shape: tuple[int, ...] = ()) -> int:
    """Bytes of an IDX file of ``count`` uint8 items of ``item_shape``: header, then data."""
    return 4 + 4 * (1 + len(item_shape)) + count * int(np.prod(item_shape, dtype=np.int64))


#: The largest decompressed IDX file negdl reads (EMNIST digits' 240,000 training images).
MAX_IDX_BYTES = idx_file_bytes(240_000, IDX_IMAGE_SHAPE)


@dataclass(frozen=True)
class LabelledImages:
    """Images and labels held as tensors, batched by indexing rather than per-sample access.

    :param images: float tensor ``(N, C, H, W)`` with pixel values in ``[0, 1]``; background is 0.
    :param labels: int64 tensor ``(N,)`` with values in ``[0, len(classes))``.
    :param classes: the class names, index ``i`` naming label ``i``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.images, torch.Tensor) or not isinstance(self.labels, torch.Tensor):
            raise ValueError(
                f"images and labels must be tensors, got {type(self.images).__name__} and "
                f"{type(self.labels).__name__}"
            )
        if self.images.ndim != 4 or not self.images.is_floating_point():
            raise ValueError(
                f"images must be a float tensor (N, C, H, W), got {tuple(self.images.shape)} "
                f"{self.images.dtype}; convert uint8 pixels with .float() / 255"
            )
        if self.labels.ndim != 1 or self.labels.dtype != torch.int64:
            raise ValueError(
                f"labels must be an int64 tensor (N,), got {tuple(self.labels.shape)} {self.labels.dtype}"
            )
        if len(self.images) != len(self.labels):
            raise ValueError(
                f"{len(self.images)} images but {len(self.labels)} labels; they must match one to one"
            )
        if (
            isinstance(self.classes, str)
            or not self.classes
            or not all(isinstance(name, str) for name in self.classes)
        ):
            raise ValueError(
                f"classes must name at least one class, as strings; got {self.classes!r}"
            )
        if len(self.labels) and (
            int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes)
        ):
            raise ValueError(
                f"labels span [{int(self.labels.min())}, {int(self.labels.max())}] but there are "
                f"{len(self.classes)} classes; labels must lie in [0, {len(self.classes) - 1}]"
            )
        # min and max are NaN when any value is (and infinite when one is): one fast pass.
        if self.images.numel() and not bool(
            torch.isfinite(torch.stack(torch.aminmax(self.images))).all()
        ):
            raise ValueError(
                "images hold NaN or infinite values; pixels must be finite (e.g. in [0, 1])"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: torch.device | str) -> LabelledImages:
        """The same data on ``device`` (no copy when it is already there)."""
        return LabelledImages(self.images.to(device), self.labels.to(device), self.classes)

    def subset(self, index: torch.Tensor | slice) -> LabelledImages:
        """The samples selected by ``index`` (a slice, index tensor or boolean mask)."""
        return LabelledImages(self.images[index], self.labels[index], self.classes)

    def with_images(self, images: torch.Tensor) -> LabelledImages:
        """The same labels with replacement images, e.g. an occluded copy of a test split."""
        return LabelledImages(images, self.labels, self.classes)


def resolve_data_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``root`` when given, else ``$NEGDL_DATA_DIR``, else ``DEFAULT_DATA_DIR``.

    :param root: explicit directory that contains ``MNIST/raw/``, ``EMNIST/raw/`` and/or the
        CIFAR-10 archive.
    :raises ValueError: ``root`` is not a path, or is a file.
    """
    if root is not None:
        if not isinstance(root, (str, os.PathLike)):
            raise ValueError(f"root must be a folder path, got {type(root).__name__} {root!r}")
        path = Path(root).expanduser()
        if path.is_file():
            raise ValueError(
                f"the data folder {str(root)!r} is a file; give the folder that holds the data"
            )
        return path
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else DEFAULT_DATA_DIR


def md5sum(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex md5 digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(urls: Sequence[str], destination: Path, md5: str) -> Path:
    """Download a file from the first working mirror and keep it only if its md5 matches.

    An existing file with the right checksum is kept without touching the network; one with
    another checksum is downloaded again.

    :param urls: mirrors, tried in order.
    :param destination: final path; the parent directory is created.
    :param md5: expected hex md5 of the whole file.
    """
    if destination.exists() and md5sum(destination) == md5:
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        with tempfile.NamedTemporaryFile(dir=destination.parent, delete=False) as tmp:
            tmp_path = Path(tmp.name)
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    shutil.copyfileobj(response, tmp)
            except OSError as error:
                failures.append(f"{url}: {error}")
                tmp_path.unlink(missing_ok=True)
                continue
        got = md5sum(tmp_path)
        if got != md5:
            tmp_path.unlink(missing_ok=True)
            failures.append(f"{url}: md5 {got} does not match the official {md5}")
            continue
        tmp_path.replace(destination)
        return destination
    raise DataFileError(f"could not download {destination.name}:\n  " + "\n  ".join(failures))


def _too_big(source: str, max_bytes: int, how_to_fix: str) -> DataFileError:
    return DataFileError(
        f"{source} holds more than {max_bytes:,} bytes (decompressed), more than the official "
        f"file of its kind: it is not one (a gzip bomb?), and was not read further; {how_to_fix}"
    )


def read_maybe_gzip(path: Path, how_to_fix: str, max_bytes: int = MAX_IDX_BYTES) -> bytes:
    """The decompressed bytes of ``path`` (gzip when it ends in ``.gz``), with clear errors;
    at most ``max_bytes`` are decompressed (more is an error)."""
    if not path.is_file():
        raise DataFileError(f"missing dataset file {path}; {how_to_fix}")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                data = handle.read(max_bytes + 1)
        elif path.stat().st_size > max_bytes:
            raise _too_big(str(path), max_bytes, how_to_fix)
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise DataFileError(f"{path} is corrupt or truncated ({error}); {how_to_fix}") from error
    if len(data) > max_bytes:
        raise _too_big(str(path), max_bytes, how_to_fix)
    return data


def gunzip_bytes(raw: bytes, source: str, how_to_fix: str, max_bytes: int = MAX_IDX_BYTES) -> bytes:
    """Decompress gzip bytes read from inside an archive, with clear errors; at most
    ``max_bytes`` are decompressed (more is an error)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as handle:
            data = handle.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise DataFileError(f"{source} is corrupt or truncated ({error}); {how_to_fix}") from error
    if len(data) > max_bytes:
        raise _too_big(source, max_bytes, how_to_fix)
    return data


_IDX_UINT8 = 0x08


def parse_idx(
    raw: bytes,
    source: str,
    ndim: int,
    how_to_fix: str,
    max_items: int | None = None,
    item_shape: tuple[int, ...] | None = None,
) -> torch.Tensor:
    """Parse an IDX file of unsigned bytes (the MNIST/EMNIST format) into a uint8 tensor.

    The header (magic, element type, number of dimensions), the declared sizes and the payload
    size are checked, so a truncated, foreign or oversized file is reported instead of being
    reshaped into garbage.

    :param raw: the whole decompressed file.
    :param source: file name used in error messages.
    :param ndim: expected number of dimensions (3 for images, 1 for labels).
    :param how_to_fix: appended to error messages.
    :param max_items: the most items (first dimension) the official file holds (None: no bound).
    :param item_shape: the shape every item must have, e.g. ``(28, 28)`` (None: any).
    """
    if len(raw) < 4 + 4 * ndim:
        raise DataFileError(
            f"{source} is too short ({len(raw)} bytes) to hold an IDX header; {how_to_fix}"
        )
    zero, dtype_code, got_ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != _IDX_UINT8 or got_ndim != ndim:
        raise DataFileError(
            f"{source} has IDX magic {raw[:4].hex()} but a {ndim}-d uint8 file needs "
            f"0000080{ndim}; {how_to_fix}"
        )
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    if (max_items is not None and dims[0] > max_items) or (
        item_shape is not None and tuple(dims[1:]) != tuple(item_shape)
    ):
        raise DataFileError(
            f"{source} declares shape {dims}, but the official file holds at most "
            f"{max_items if max_items is not None else 'any number of'} items"
            f"{f' of shape {tuple(item_shape)}' if item_shape is not None else ''}: it is not one; "
            f"{how_to_fix}"
        )
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims, dtype=np.int64))
    if len(raw) - offset != expected:
        raise DataFileError(
            f"{source} declares shape {dims} ({expected} bytes of data) but holds "
            f"{len(raw) - offset} bytes: truncated or corrupt; {how_to_fix}"
        )
    array = np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)
    return torch.from_numpy(array.copy())


def images_and_labels(
    images_u8: torch.Tensor,
    labels_u8: torch.Tensor,
    classes: Sequence[str],
    source: str,
    how_to_fix: str,
) -> LabelledImages:
    """Build :class:`LabelledImages` from uint8 ``(N, H, W)`` or ``(N, C, H, W)`` pixels and labels.

    Counts and label ranges are checked so a mismatched pair of files is reported.
    """
    if len(images_u8) != len(labels_u8):
        raise DataFileError(
            f"{source}: {len(images_u8)} images but {len(labels_u8)} labels; the image and label "
            f"files do not belong together; {how_to_fix}"
        )
    if labels_u8.is_floating_point() or labels_u8.is_complex() or labels_u8.dtype == torch.bool:
        raise DataFileError(
            f"{source}: labels must be integers, got {labels_u8.dtype} (not truncated); {how_to_fix}"
        )
    labels = labels_u8.to(torch.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise DataFileError(
            f"{source}: labels span [{int(labels.min())}, {int(labels.max())}] but there are "
            f"{len(classes)} classes; {how_to_fix}"
        )
    if images_u8.ndim == 3:
        images_u8 = images_u8.unsqueeze(1)
    return LabelledImages(images_u8.float().div_(255.0), labels, tuple(classes))
