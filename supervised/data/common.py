"""Shared pieces of the dataset readers: the tensor container, the data directory, verified
downloads, and reads bounded by the official files' sizes (a gzip bomb is refused after reading
that much) and IDX parsing, with clear errors.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import struct
import tempfile
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from negdl.checks import check_bool
from negdl.errors import UserError

DATA_DIR_ENV = "NEGDL_DATA_DIR"
#: Used when neither an explicit ``root`` nor ``NEGDL_DATA_DIR`` is given.
DEFAULT_DATA_DIR = Path.home() / ".cache" / "negdl" / "data"
#: How a user asks for the official files, in error messages.
DOWNLOAD_HINT = "pass --download to the script (download=True in Python)"


class DataFileError(RuntimeError, UserError):
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
        images, labels, classes = self.images, self.labels, self.classes
        if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
            raise ValueError(
                f"images and labels must be tensors, got {type(images).__name__} and "
                f"{type(labels).__name__}"
            )
        if images.ndim != 4 or not images.is_floating_point():
            raise ValueError(
                f"images must be a float tensor (N, C, H, W), got {tuple(images.shape)} "
                f"{images.dtype}; convert uint8 pixels with .float() / 255"
            )
        if labels.ndim != 1 or labels.dtype != torch.int64:
            raise ValueError(
                f"labels must be an int64 tensor (N,), got {tuple(labels.shape)} {labels.dtype}"
            )
        if len(images) != len(labels):
            raise ValueError(
                f"{len(images)} images but {len(labels)} labels; they must match one to one"
            )
        if isinstance(classes, str) or not classes or not all(isinstance(c, str) for c in classes):
            raise ValueError(f"classes must name at least one class, as strings; got {classes!r}")
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= len(classes)):
            raise ValueError(
                f"labels span [{int(labels.min())}, {int(labels.max())}] but there are "
                f"{len(classes)} classes; labels must lie in [0, {len(classes) - 1}]"
            )
        # min and max are NaN when any value is (and infinite when one is): one fast pass.
        if images.numel() and not bool(torch.isfinite(torch.stack(torch.aminmax(images))).all()):
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


def reader_folder(root: str | os.PathLike[str] | None, train: bool, download: bool) -> Path:
    """A reader's data directory (:func:`resolve_data_dir`), after checking its flags."""
    check_bool("train", train)
    check_bool("download", download)
    return resolve_data_dir(root)


def md5sum(path: Path) -> str:
    """Hex md5 digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(urls: Sequence[str], destination: Path, md5: str) -> Path:
    """Download a file from the first working mirror (``urls`` in order) and keep it only if
    its md5 matches; an existing file with the right checksum is kept without touching the
    network, one with another checksum is downloaded again."""
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


def bounded_read(
    handle: BinaryIO, source: str, how_to_fix: str, max_bytes: int, gzipped: bool
) -> bytes:
    """The (decompressed) bytes of ``handle``, with clear errors; more than ``max_bytes`` is an
    error, reported after reading only that much."""
    try:
        data = (gzip.GzipFile(fileobj=handle) if gzipped else handle).read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise DataFileError(f"{source} is corrupt or truncated ({error}); {how_to_fix}") from error
    if len(data) > max_bytes:
        raise DataFileError(
            f"{source} holds more than {max_bytes:,} bytes (decompressed), more than the official "
            f"file of its kind: it is not one (a gzip bomb?), and was not read further; {how_to_fix}"
        )
    return data


def extracted_copy(folder: Path, name: str) -> Path | None:
    """The file ``folder/name`` (a ``.gz`` name), else the uncompressed copy torchvision leaves
    next to it, else None."""
    for path in (folder / name, folder / name.removesuffix(".gz")):
        if path.is_file():
            return path
    return None


def read_maybe_gzip(path: Path, how_to_fix: str, max_bytes: int) -> bytes:
    """The decompressed bytes of ``path`` (gzip when it ends in ``.gz``), see :func:`bounded_read`."""
    if not path.is_file():
        raise DataFileError(f"missing dataset file {path}; {how_to_fix}")
    try:
        with open(path, "rb") as handle:
            return bounded_read(handle, str(path), how_to_fix, max_bytes, path.suffix == ".gz")
    except OSError as error:
        raise DataFileError(f"{path} is corrupt or truncated ({error}); {how_to_fix}") from error


def read_idx_pair(
    raw_dir: Path,
    names: tuple[str, str],
    count: int,
    how_to_fix: str,
    from_archive: Callable[[str, int], tuple[bytes, str]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The uint8 images ``(N, 28, 28)`` and labels ``(N,)`` of an IDX pair of at most ``count``
    items, from ``raw_dir`` (see :func:`extracted_copy`), else from ``from_archive(name,
    max_bytes)``, which returns a file's decompressed bytes and its name for errors."""

    def parsed(name: str, item_shape: tuple[int, ...]) -> torch.Tensor:
        max_bytes = 4 * (2 + len(item_shape)) + count * math.prod(item_shape)  # header, data
        path = extracted_copy(raw_dir, name)
        if path is None and from_archive is not None:
            raw, source = from_archive(name, max_bytes)
        else:
            path = path or raw_dir / name
            raw, source = read_maybe_gzip(path, how_to_fix, max_bytes), str(path)
        return parse_idx(raw, source, how_to_fix, count, item_shape)

    return parsed(names[0], (28, 28)), parsed(names[1], ())  # MNIST and EMNIST images: 28 x 28


def parse_idx(
    raw: bytes, source: str, how_to_fix: str, max_items: int, item_shape: tuple[int, ...]
) -> torch.Tensor:
    """Parse an IDX file of unsigned bytes (the MNIST/EMNIST format) into a uint8 tensor of at
    most ``max_items`` items of ``item_shape``, after checking its header, declared sizes and
    payload size (a truncated, foreign or oversized file is reported, not reshaped into garbage)."""
    ndim = 1 + len(item_shape)
    if len(raw) < 4 + 4 * ndim:
        raise DataFileError(
            f"{source} is too short ({len(raw)} bytes) to hold an IDX header; {how_to_fix}"
        )
    zero, dtype_code, got_ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08 or got_ndim != ndim:  # 0x08: unsigned bytes
        raise DataFileError(
            f"{source} has IDX magic {raw[:4].hex()} but a {ndim}-d uint8 file needs "
            f"0000080{ndim}; {how_to_fix}"
        )
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    if dims[0] > max_items or tuple(dims[1:]) != item_shape:
        shape = f" of shape {item_shape}" if item_shape else ""
        raise DataFileError(
            f"{source} declares shape {dims}, but the official file holds at most {max_items} "
            f"items{shape}: it is not one; {how_to_fix}"
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
    labels: torch.Tensor,
    classes: Sequence[str],
    source: str,
    how_to_fix: str,
) -> LabelledImages:
    """:class:`LabelledImages` from uint8 ``(N, H, W)`` or ``(N, C, H, W)`` pixels and integer
    labels; a mismatched pair of files is a :class:`DataFileError` naming ``source``."""
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise DataFileError(
            f"{source}: labels must be integers, got {labels.dtype} (not truncated); {how_to_fix}"
        )
    if images_u8.ndim == 3:
        images_u8 = images_u8.unsqueeze(1)
    try:
        return LabelledImages(images_u8.float().div_(255.0), labels.long(), tuple(classes))
    except ValueError as error:
        raise DataFileError(f"{source}: {error}; {how_to_fix}") from error
