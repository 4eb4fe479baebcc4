"""Dataset readers on synthetic files in the official formats, on broken files, and on real MNIST."""

from __future__ import annotations

import gzip
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from supervised.data import (
    DataFileError,
    LabelledImages,
    RestrictedUnpickler,
    load_cifar10,
    load_emnist,
    load_mnist,
    resolve_data_dir,
)
from supervised.data.common import images_and_labels


def test_mnist_reader_shapes_dtypes_and_values(mnist_root: Path) -> None:
    train, test = load_mnist(True, mnist_root), load_mnist(False, mnist_root)
    assert train.images.shape == (256, 1, 28, 28) and test.images.shape == (64, 1, 28, 28)
    assert train.images.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert 0.0 <= train.images.min() and train.images.max() == 1.0
    assert train.labels.max() < 10 and train.num_classes == 10
    raw = gzip.decompress((mnist_root / "MNIST/raw/train-images-idx3-ubyte.gz").read_bytes())
    first = np.frombuffer(raw, np.uint8, offset=16)[:784].reshape(28, 28)
    assert torch.equal(train.images[0, 0], torch.from_numpy(first.astype(np.float32)) / 255)


def test_mnist_reads_uncompressed_files_too(mnist_root: Path) -> None:
    raw = mnist_root / "MNIST/raw"
    for path in raw.glob("t10k-*.gz"):
        path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))
        path.unlink()
    assert len(load_mnist(False, mnist_root)) == 64


def test_missing_mnist_names_file_and_fix(tmp_path: Path) -> None:
    with pytest.raises(
        DataFileError, match=r"missing dataset file .*train-images-idx3-ubyte.gz.*NEGDL_DATA_DIR"
    ):
        load_mnist(True, tmp_path)


def test_truncated_gzip_is_reported(mnist_root: Path) -> None:
    path = mnist_root / "MNIST/raw/train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataFileError, match="corrupt or truncated"):
        load_mnist(True, mnist_root)


def test_truncated_idx_payload_is_reported(mnist_root: Path) -> None:
    path = mnist_root / "MNIST/raw/train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-10]))
    with pytest.raises(DataFileError, match=r"declares shape \(256, 28, 28\).*truncated"):
        load_mnist(True, mnist_root)


def test_wrong_idx_magic_is_reported(mnist_root: Path, synthetic) -> None:
    path = mnist_root / "MNIST/raw/train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(synthetic.idx_bytes(np.zeros((256, 2), np.uint8))))
    with pytest.raises(DataFileError, match="IDX magic 00000802"):
        load_mnist(True, mnist_root)


def test_mismatched_image_and_label_counts_are_reported(mnist_root: Path, synthetic) -> None:
    path = mnist_root / "MNIST/raw/train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(synthetic.idx_bytes(np.zeros(10, np.uint8))))
    with pytest.raises(DataFileError, match="256 images but 10 labels"):
        load_mnist(True, mnist_root)


def test_out_of_range_labels_are_reported(mnist_root: Path, synthetic) -> None:
    path = mnist_root / "MNIST/raw/train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(synthetic.idx_bytes(np.full(256, 12, np.uint8))))
    with pytest.raises(DataFileError, match=r"labels span \[12, 12\] but there are 10 classes"):
        load_mnist(True, mnist_root)


def test_data_dir_resolution_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NEGDL_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("NEGDL_DATA_DIR")
    assert resolve_data_dir().parts[-3:] == (".cache", "negdl", "data")


@pytest.mark.parametrize(
    ("split", "classes", "offset"),
    [("balanced", 47, 0), ("mnist", 10, 0), ("digits", 10, 0), ("letters", 26, 1)],
)
def test_emnist_reader_turns_images_upright(
    tmp_path: Path, synthetic, split: str, classes: int, offset: int
) -> None:
    labels = (np.arange(20) % classes + offset).astype(np.uint8)
    upright = np.zeros((20, 28, 28), np.uint8)
    upright[:, 2, :] = 255  # a horizontal bar near the top: transposed it would be vertical
    upright[:, 5, 3] = np.arange(20)
    synthetic.write_emnist_zip(tmp_path, split, labels, upright)
    data = load_emnist(split, train=False, root=tmp_path)
    assert data.images.shape == (20, 1, 28, 28) and data.num_classes == classes
    assert torch.equal(data.labels, torch.from_numpy(labels.astype(np.int64) - offset))
    assert torch.equal(data.images[:, 0] * 255, torch.from_numpy(upright).float())


def test_emnist_prefers_extracted_files(tmp_path: Path, synthetic) -> None:
    raw = tmp_path / "EMNIST/raw"
    raw.mkdir(parents=True)
    labels = np.arange(5, dtype=np.uint8)
    images = np.arange(5 * 28 * 28, dtype=np.uint8).reshape(5, 28, 28)
    (raw / "emnist-digits-train-images-idx3-ubyte").write_bytes(synthetic.idx_bytes(images))
    (raw / "emnist-digits-train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(synthetic.idx_bytes(labels))
    )
    data = load_emnist("digits", True, tmp_path)
    assert torch.equal(data.images[:, 0] * 255, torch.from_numpy(images.transpose(0, 2, 1)).float())


def test_emnist_errors(tmp_path: Path, synthetic) -> None:
    with pytest.raises(ValueError, match="unknown EMNIST split 'byfoo'"):
        load_emnist("byfoo", root=tmp_path)
    with pytest.raises(DataFileError, match=r"missing EMNIST archive .*gzip.zip.*download"):
        load_emnist("balanced", root=tmp_path)
    archive = synthetic.write_emnist_zip(
        tmp_path, "mnist", np.zeros(3, np.uint8), np.zeros((3, 28, 28), np.uint8)
    )
    with pytest.raises(DataFileError, match="has no member gzip/emnist-balanced-train"):
        load_emnist("balanced", root=tmp_path)
    archive.write_bytes(archive.read_bytes()[:100])
    with pytest.raises(DataFileError, match="corrupt or truncated"):
        load_emnist("mnist", root=tmp_path)


def test_cifar_reader_from_archive_and_folder(tmp_path: Path, synthetic) -> None:
    archive = synthetic.write_cifar_archive(tmp_path / "a", per_batch=8)
    train, test = load_cifar10(True, archive.parent), load_cifar10(False, archive.parent)
    assert train.images.shape == (40, 3, 32, 32) and test.images.shape == (8, 3, 32, 32)
    assert (
        train.labels.dtype == torch.int64
        and int(train.labels.max()) < 10
        and train.num_classes == 10
    )
    folder = tmp_path / "b" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        for name in synthetic.cifar_names:
            (folder / name).write_bytes(tar.extractfile(f"cifar-10-batches-py/{name}").read())
    assert torch.equal(load_cifar10(False, folder.parent).images, test.images)
    # Channel-major layout: the first 1024 values are the red plane.
    batch = pickle.loads((folder / "test_batch").read_bytes(), encoding="latin1")
    assert torch.equal(
        test.images[0, 0].flatten() * 255, torch.from_numpy(batch["data"][0, :1024]).float()
    )


def test_cifar_restricted_unpickler_refuses_code(tmp_path: Path) -> None:
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(pickle.dumps({"data": Exploit(), "labels": []}, protocol=2))
    with pytest.raises(DataFileError, match=r"refusing to load global (posix|nt)\.system"):
        load_cifar10(False, tmp_path)
    with pytest.raises(pickle.UnpicklingError):
        RestrictedUnpickler(__import__("io").BytesIO(pickle.dumps(print))).load()


@pytest.mark.parametrize(
    "labels, says",
    [
        ([0.0, 1.5, 2.0, 3.0], "got float64 values"),  # would have been truncated to 1
        ([0, 1, 2.0, 3], "got float64 values"),
        (np.array([0.0, 1.0, 2.0, 3.0]), "got float64 values"),
        ([True, False, True, False], "got bool values"),
        (["0", "1", "2", "3"], "got <U1 values"),
        ([[0], [1], [2], [3]], r"of shape \(4, 1\)"),
        ([[0, 1], [2], [3], [4]], "must be a flat list of integers"),  # ragged
        (4, "must be a list of integers, got a int"),
        (b"0123", "must be a list of integers, got a str"),  # latin1-decoded
    ],
)
def test_cifar_labels_that_are_not_integers_are_refused(tmp_path: Path, synthetic, labels, says):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batch = {b"data": np.zeros((4, 3072), np.uint8), b"labels": labels}
    (folder / "test_batch").write_bytes(synthetic.py2_pickle(batch))
    with pytest.raises(DataFileError, match=f"test_batch: 'labels' .*{says}"):
        load_cifar10(False, tmp_path)


def test_images_and_labels_refuses_float_labels() -> None:
    with pytest.raises(DataFileError, match="labels must be integers, got torch.float32"):
        images_and_labels(torch.zeros(2, 4, 4, dtype=torch.uint8), torch.tensor([0.0, 1.7]),
                          ("a", "b"), "src", "fix it")  # fmt: skip


def test_cifar_bad_shapes_and_truncation(tmp_path: Path, synthetic) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    bad = synthetic.py2_pickle({b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]})
    (folder / "test_batch").write_bytes(bad)
    with pytest.raises(DataFileError, match=r"expected uint8 \(N, 3072\)"):
        load_cifar10(False, tmp_path)
    (folder / "test_batch").write_bytes(synthetic.cifar_batch(4, 0)[:-50])
    with pytest.raises(DataFileError, match="not a valid CIFAR-10 batch"):
        load_cifar10(False, tmp_path)
    archive = synthetic.write_cifar_archive(tmp_path / "t")
    archive.write_bytes(archive.read_bytes()[:300])
    with pytest.raises(DataFileError, match="corrupt or truncated"):
        load_cifar10(True, archive.parent)
    with pytest.raises(DataFileError, match=r"neither .* nor .*cifar-10-python.tar.gz"):
        load_cifar10(True, tmp_path / "empty")
    (folder / "test_batch").unlink()
    with pytest.raises(DataFileError, match=r"missing CIFAR-10 batches \['test_batch'\]"):
        load_cifar10(False, tmp_path)


def test_cifar_archive_without_a_member_is_reported(tmp_path: Path, synthetic) -> None:
    import io

    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        payload = synthetic.cifar_batch(4, 0)
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(
        DataFileError, match=r"has no member\(s\) \['cifar-10-batches-py/data_batch_2'"
    ):
        load_cifar10(True, tmp_path)


def test_labelled_images_validation_and_helpers() -> None:
    images, labels = torch.zeros(4, 1, 2, 2), torch.arange(4)
    data = LabelledImages(images, labels, ("a", "b", "c", "d"))
    assert len(data.subset(labels > 1)) == 2 and data.to("cpu") is not data
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        LabelledImages(images, labels[:3], ("a",))
    with pytest.raises(ValueError, match="float tensor"):
        LabelledImages(images.to(torch.uint8), labels, ("a",))


@pytest.mark.skipif(not os.environ.get("NEGDL_DATA_DIR"), reason="NEGDL_DATA_DIR is not set")
def test_real_mnist_shapes_and_label_counts() -> None:
    train, test = load_mnist(True), load_mnist(False)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.labels.bincount().tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert test.labels.bincount().tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    assert abs(train.images.mean().item() - 0.1307) < 1e-3


def test_download_verifies_md5_without_touching_the_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib
    import io
    import urllib.request

    from supervised.data.common import download_file

    payload = b"official bytes"
    served = []

    def fake_urlopen(url: str, timeout: float):
        served.append(url)
        return io.BytesIO(b"tampered" if "bad" in url else payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    good = hashlib.md5(payload).hexdigest()
    target = tmp_path / "dl" / "file.gz"
    assert (
        download_file(["https://bad.mirror/file.gz", "https://good.mirror/file.gz"], target, good)
        == target
    )
    assert target.read_bytes() == payload and len(served) == 2
    download_file(["https://good.mirror/file.gz"], target, good)  # already there: no request
    assert len(served) == 2
    with pytest.raises(DataFileError, match="md5 .* does not match the official"):
        download_file(["https://bad.mirror/x"], tmp_path / "x.gz", good)
    assert not (tmp_path / "x.gz").exists() and list(tmp_path.glob("tmp*")) == []


def test_splits_cuts_each_split_to_its_first_images(mnist_root: Path) -> None:
    from supervised.cli.common import TrainRunOptions

    full_train, full_test = TrainRunOptions(data_dir=str(mnist_root)).splits("mnist")
    options = TrainRunOptions(data_dir=str(mnist_root), train_subset=5, test_subset=3)
    train, test = options.splits("mnist")
    assert len(train) == 5 and len(test) == 3 and len(full_train) > 5 and len(full_test) > 3
    torch.testing.assert_close(train.images, full_train.images[:5])
    torch.testing.assert_close(test.labels, full_test.labels[:3])
