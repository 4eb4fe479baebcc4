"""EMNIST (balanced, mnist, digits, letters) from the official ``gzip.zip`` in
``<root>/EMNIST/raw/``, whose IDX gzip files are named
``gzip/emnist-<split>-<train|test>-<images-idx3|labels-idx1>-ubyte.gz``. Files already extracted
into ``EMNIST/raw/`` (gzip or plain, as torchvision leaves them) are used first. EMNIST stores
every image transposed; the reader turns them upright.
"""

from __future__ import annotations

import functools
import io
import os
import string
import zipfile
from pathlib import Path

from supervised.data.common import (
    DOWNLOAD_HINT,
    DataFileError,
    LabelledImages,
    bounded_read,
    download_file,
    extracted_copy,
    images_and_labels,
    read_idx_pair,
    reader_folder,
)

EMNIST_URL = "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"
EMNIST_MD5 = "58c8d27c78d21e728a6bc7b3cc06412e"
_DIGITS = tuple(string.digits)
EMNIST_CLASSES: dict[str, tuple[str, ...]] = {
    "balanced": _DIGITS + tuple(string.ascii_uppercase) + tuple("abdefghnqrt"),
    "mnist": _DIGITS,
    "digits": _DIGITS,
    "letters": tuple(string.ascii_lowercase),
}
#: Images in each official (training, test) file: no larger EMNIST file is read.
EMNIST_COUNTS: dict[str, tuple[int, int]] = {
    "balanced": (112_800, 18_800),
    "mnist": (60_000, 10_000),
    "digits": (240_000, 40_000),
    "letters": (124_800, 20_800),
}
#: The letters split numbers its classes 1..26 in the files; labels are shifted to 0..25.
_LABEL_OFFSET = {"letters": 1}


def _member_bytes(raw_dir: Path, how_to_fix: str, name: str, max_bytes: int) -> tuple[bytes, str]:
    """Decompressed bytes of one IDX file from inside gzip.zip (at most ``max_bytes``), and where
    they come from."""
    archive = raw_dir / "gzip.zip"
    if not archive.is_file():
        raise DataFileError(f"missing EMNIST archive {archive}; {how_to_fix}")
    member = f"gzip/{name}"
    source = f"{archive}:{member}"
    try:
        with zipfile.ZipFile(archive) as zipped:
            # zipfile stops at the declared size, so checking it bounds what is read.
            if zipped.getinfo(member).file_size > max_bytes + 2**20:
                raise DataFileError(
                    f"{source} declares {zipped.getinfo(member).file_size:,} bytes, more than the "
                    f"official file; {how_to_fix}"
                )
            raw = zipped.read(member)
    except KeyError as error:
        raise DataFileError(f"{archive} has no member {member}; {how_to_fix}") from error
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise DataFileError(f"{archive} is corrupt or truncated ({error}); {how_to_fix}") from error
    return bounded_read(io.BytesIO(raw), source, how_to_fix, max_bytes, gzipped=True), source


def load_emnist(
    split: str = "balanced",
    train: bool = True,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> LabelledImages:
    """Load one EMNIST split from ``<root>/EMNIST/raw/`` as upright 28x28 tensors; ``split``:
    ``"balanced"`` (47 classes), ``"mnist"``, ``"digits"`` (10) or ``"letters"`` (26, labels
    0..25 for a..z), other arguments as :func:`~supervised.data.load_dataset` (``download``
    fetches ``gzip.zip``, about 536 MB, unless the split's files are already extracted)."""
    if not isinstance(split, str) or split not in EMNIST_CLASSES:
        raise ValueError(f"unknown EMNIST split {split!r}; choose one of {sorted(EMNIST_CLASSES)}")
    raw_dir = reader_folder(root, train, download) / "EMNIST" / "raw"
    part = "train" if train else "test"
    prefix = f"emnist-{split}-{part}"
    names = (f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz")
    if download and not all(extracted_copy(raw_dir, name) for name in names):
        download_file([EMNIST_URL], raw_dir / "gzip.zip", EMNIST_MD5)
    how_to_fix = (
        f"download {EMNIST_URL} into {raw_dir} (set NEGDL_DATA_DIR or root= to the folder that "
        f"contains EMNIST/raw/), or let negdl do it: {DOWNLOAD_HINT}"
    )
    count = EMNIST_COUNTS[split][0 if train else 1]
    from_archive = functools.partial(_member_bytes, raw_dir, how_to_fix)
    images, labels = read_idx_pair(raw_dir, names, count, how_to_fix, from_archive)
    images = images.transpose(1, 2).contiguous()
    labels = labels.long() - _LABEL_OFFSET.get(split, 0)
    classes = EMNIST_CLASSES[split]
    return images_and_labels(images, labels, classes, f"EMNIST {split} {part}", how_to_fix)
