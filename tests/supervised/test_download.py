"""--download against a small HTTP mirror started by the test (never the real mirrors): files
are md5-verified before use, a corrupt file is refused, and the scripts' flag reaches it."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from negdl.cli import parse_args
from supervised.data import DATASETS, DataFileError, DataOptions, load_dataset, mnist
from supervised.data import cifar10 as cifar_module
from supervised.data import emnist as emnist_module

REPO = Path(__file__).resolve().parents[2]


def load_script(name: str):
    """Import the command module ``supervised.cli.<name>``, without running it."""
    return importlib.import_module(f"supervised.cli.{name}")


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A folder served over HTTP on localhost, and its URL."""
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "mirror"
    folder.mkdir()
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def serve_mnist(folder: Path, synthetic, monkeypatch: pytest.MonkeyPatch, url: str) -> dict:
    """Put synthetic MNIST files on the mirror and make them the 'official' ones."""
    raw = synthetic.write_mnist(folder / "source") / "MNIST" / "raw"
    sums = {}
    for path in raw.iterdir():
        shutil.copyfile(path, folder / path.name)
        sums[path.name] = md5(path)
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", (url,))
    monkeypatch.setattr(mnist, "MNIST_FILES", sums)
    return sums


def test_mnist_download_accepts_the_right_checksum(mirror, synthetic, monkeypatch, tmp_path):
    folder, url = mirror
    sums = serve_mnist(folder, synthetic, monkeypatch, url)
    root = tmp_path / "data"
    test = load_dataset("mnist", train=False, root=root, download=True)
    assert len(test) == 64 and test.num_classes == 10
    assert (
        md5(root / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz")
        == sums["t10k-images-idx3-ubyte.gz"]
    )
    # Without --download the files now there are used as they are; only the split asked for came.
    assert len(load_dataset("mnist", train=False, root=root)) == 64
    assert not (root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").exists()


def test_a_corrupt_download_is_refused(mirror, synthetic, monkeypatch, tmp_path):
    folder, url = mirror
    serve_mnist(folder, synthetic, monkeypatch, url)
    served = folder / "t10k-labels-idx1-ubyte.gz"
    served.write_bytes(served.read_bytes()[:-3] + b"bad")
    root = tmp_path / "data"
    with pytest.raises(DataFileError, match="md5 .* does not match the official"):
        load_dataset("mnist", train=False, root=root, download=True)
    raw = root / "MNIST" / "raw"
    assert not (raw / "t10k-labels-idx1-ubyte.gz").exists()  # nothing unverified is kept
    assert not list(raw.glob("tmp*"))


def test_a_corrupt_local_file_is_verified_and_fetched_again(
    mirror, synthetic, monkeypatch, tmp_path
):
    folder, url = mirror
    sums = serve_mnist(folder, synthetic, monkeypatch, url)
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(b"truncated")
    load_dataset("mnist", train=False, root=tmp_path / "data", download=True)
    assert md5(raw / "t10k-images-idx3-ubyte.gz") == sums["t10k-images-idx3-ubyte.gz"]


def test_emnist_and_cifar_download_from_the_mirror(mirror, synthetic, monkeypatch, tmp_path):
    folder, url = mirror
    import numpy as np

    labels = np.arange(47, dtype=np.uint8) % 47
    archive = synthetic.write_emnist_zip(
        folder / "e", "balanced", labels, synthetic.digit_like_images(labels)
    )
    shutil.copyfile(archive, folder / "gzip.zip")
    monkeypatch.setattr(emnist_module, "EMNIST_URL", url + "gzip.zip")
    monkeypatch.setattr(emnist_module, "EMNIST_MD5", md5(archive))
    cifar = synthetic.write_cifar_archive(folder / "c")
    shutil.copyfile(cifar, folder / "cifar-10-python.tar.gz")
    monkeypatch.setattr(cifar_module, "CIFAR10_URL", url + "cifar-10-python.tar.gz")
    monkeypatch.setattr(cifar_module, "CIFAR10_MD5", md5(cifar))
    root = tmp_path / "data"
    assert len(load_dataset("emnist-balanced", train=False, root=root, download=True)) == 47
    assert len(load_dataset("cifar10", train=False, root=root, download=True)) == 8
    monkeypatch.setattr(cifar_module, "CIFAR10_MD5", "0" * 32)  # a tampered archive on disk
    with pytest.raises(DataFileError, match="does not match"):
        load_dataset("cifar10", train=False, root=tmp_path / "other", download=True)


def test_datasets_by_name_and_the_default_folder(monkeypatch, tmp_path):
    assert DATASETS[0] == "mnist" and "cifar10" in DATASETS and "emnist-letters" in DATASETS
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        load_dataset("svhn")
    monkeypatch.setenv("NEGDL_DATA_DIR", str(tmp_path / "shared"))
    with pytest.raises(DataFileError, match=r"shared/MNIST/raw.*--download"):
        DataOptions().load("mnist")


def test_the_scripts_download_flag_reaches_the_reader(mirror, synthetic, monkeypatch, tmp_path):
    folder, url = mirror
    serve_mnist(folder, synthetic, monkeypatch, url)
    script = load_script("occlusion_grid")
    png = tmp_path / "grid.png"
    args = parse_args(
        script.Args,
        ["--download", "--data-dir", str(tmp_path / "data"), "--out", str(png), "--examples", "1"],
    )
    script.run(args)
    assert (
        png.is_file()
        and (tmp_path / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").is_file()
    )
