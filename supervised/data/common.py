"""Shared pieces of the dataset readers: the tensor container, the data directory, IDX parsing,
file reading with clear errors, and verified downloads."""

from __future__ import annotations

import gzip
import hashlib
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

DATA_DIR_ENV = "NEGDL_DATA_DIR"
#: Used when neither an explicit ``root`` nor ``NEGDL_DATA_DIR`` is given.
DEFAULT_DATA_DIR = Path.home() / ".cache" / "negdl" / "data"
#: How a user asks for the official files, in error messages.
DOWNLOAD_HINT = "pass --download to the script (download=True in Python)"


class DataFileError(RuntimeError):
    """A dataset file is missing, truncated or not in the expected format."""


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
        if not self.classes:
            raise ValueError("classes must name at least one class")

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
    """
    if root is not None:
        return Path(root).expanduser()
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


def read_maybe_gzip(path: Path, how_to_fix: str) -> bytes:
    """The decompressed bytes of ``path`` (gzip when it ends in ``.gz``), with clear errors."""
    if not path.is_file():
        raise DataFileError(f"missing dataset file {path}; {how_to_fix}")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise DataFileError(f"{path} is corrupt or truncated ({error}); {how_to_fix}") from error


def gunzip_bytes(raw: bytes, source: str, how_to_fix: str) -> bytes:
    """Decompress gzip bytes read from inside an archive, with clear errors."""
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DataFileError(f"{source} is corrupt or truncated ({error}); {how_to_fix}") from error


_IDX_UINT8 = 0x08


def parse_idx(raw: bytes, source: str, ndim: int, how_to_fix: str) -> torch.Tensor:
    """Parse an IDX file of unsigned bytes (the MNIST/EMNIST format) into a uint8 tensor.

    The header (magic, element type, number of dimensions) and the payload size are checked,
    so a truncated or foreign file is reported instead of being reshaped into garbage.

    :param raw: the whole decompressed file.
    :param source: file name used in error messages.
    :param ndim: expected number of dimensions (3 for images, 1 for labels).
    :param how_to_fix: appended to error messages.
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
    labels = labels_u8.to(torch.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise DataFileError(
            f"{source}: labels span [{int(labels.min())}, {int(labels.max())}] but there are "
            f"{len(classes)} classes; {how_to_fix}"
        )
    if images_u8.ndim == 3:
        images_u8 = images_u8.unsqueeze(1)
    return LabelledImages(images_u8.float().div_(255.0), labels, tuple(classes))
