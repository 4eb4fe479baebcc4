"""EMNIST (balanced, mnist, digits, letters) from the official ``gzip.zip`` in ``<root>/EMNIST/raw/``.

The archive holds IDX gzip files named ``gzip/emnist-<split>-<train|test>-<images-idx3|labels-idx1>-ubyte.gz``.
Files already extracted into ``EMNIST/raw/`` (gzip or plain, as torchvision leaves them) are used
first. EMNIST stores every image transposed; the reader turns them upright.
"""

from __future__ import annotations

import os
import string
import zipfile
from pathlib import Path

from negdl.checks import check_bool
from supervised.data.common import (
    IDX_IMAGE_SHAPE,
    MAX_IDX_BYTES,
    DataFileError,
    LabelledImages,
    download_file,
    gunzip_bytes,
    idx_file_bytes,
    images_and_labels,
    parse_idx,
    read_maybe_gzip,
    resolve_data_dir,
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


def _member_bytes(
    raw_dir: Path, member: str, how_to_fix: str, max_bytes: int = MAX_IDX_BYTES
) -> tuple[bytes, str]:
    """Decompressed bytes of one IDX file, from an extracted copy or from inside gzip.zip; at
    most ``max_bytes`` are decompressed."""
    name = member.removeprefix("gzip/")
    for candidate in (raw_dir / name, raw_dir / name.removesuffix(".gz")):
        if candidate.is_file():
            return read_maybe_gzip(candidate, how_to_fix, max_bytes), str(candidate)
    archive = raw_dir / "gzip.zip"
    if not archive.is_file():
        raise DataFileError(f"missing EMNIST archive {archive}; {how_to_fix}")
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
    return gunzip_bytes(raw, source, how_to_fix, max_bytes), source


def load_emnist(
    split: str = "balanced",
    train: bool = True,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> LabelledImages:
    """Load one EMNIST split as upright 28x28 tensors.

    :param split: ``"balanced"`` (47 classes), ``"mnist"``, ``"digits"`` (10) or ``"letters"``
        (26, labels 0..25 for a..z).
    :param train: the training part when True, else the test part.
    :param root: data directory holding ``EMNIST/raw/``; default ``$NEGDL_DATA_DIR``, then
        ``~/.cache/negdl/data``.
    :param download: fetch ``gzip.zip`` (about 536 MB, md5-verified) when it is missing.
    """
    if not isinstance(split, str) or split not in EMNIST_CLASSES:
        raise ValueError(f"unknown EMNIST split {split!r}; choose one of {sorted(EMNIST_CLASSES)}")
    check_bool("train", train)
    check_bool("download", download)
    raw_dir = resolve_data_dir(root) / "EMNIST" / "raw"
    if download and not (raw_dir / "gzip.zip").exists():
        download_file([EMNIST_URL], raw_dir / "gzip.zip", EMNIST_MD5)
    how_to_fix = (
        f"download {EMNIST_URL} into {raw_dir} (or pass download=True; set "
        "NEGDL_DATA_DIR or root= to the folder that contains EMNIST/raw/)"
    )
    part = "train" if train else "test"
    count = EMNIST_COUNTS[split][0 if train else 1]
    images_raw, image_source = _member_bytes(
        raw_dir,
        f"gzip/emnist-{split}-{part}-images-idx3-ubyte.gz",
        how_to_fix,
        idx_file_bytes(count, IDX_IMAGE_SHAPE),
    )
    labels_raw, label_source = _member_bytes(
        raw_dir,
        f"gzip/emnist-{split}-{part}-labels-idx1-ubyte.gz",
        how_to_fix,
        idx_file_bytes(count),
    )
    images = parse_idx(images_raw, image_source, 3, how_to_fix, count, IDX_IMAGE_SHAPE)
    images = images.transpose(1, 2).contiguous()
    labels = parse_idx(labels_raw, label_source, 1, how_to_fix, count).to(
        "cpu"
    ).long() - _LABEL_OFFSET.get(split, 0)
    return images_and_labels(
        images, labels, EMNIST_CLASSES[split], f"EMNIST {split} {part}", how_to_fix
    )
