"""Requests that would need more memory than the limit are refused before anything is allocated,
saying how much and what to change; file readers trust no size a file declares."""

from __future__ import annotations

import gzip
import pickle
import struct
import zipfile
from dataclasses import asdict

import gymnasium as gym
import numpy as np
import pytest

import neg_envs  # noqa: F401
from neg_agents import NegRewardDQN, TrainConfig, train_agent
from neg_agents.model_io import load_agent, save_run
from neg_agents.training import build_model
from negdl.resources import MEMORY_LIMIT_ENV, MemoryLimitError, format_bytes, parse_bytes
from supervised.data import DataFileError, load_cifar10, load_emnist, load_mnist


def test_sizes_read_and_written():
    assert parse_bytes("64GiB") == 64 * 2**30 and parse_bytes("500 MB") == 500 * 10**6
    assert parse_bytes("2e9") == 2 * 10**9
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(3 * 2**40) == "3.0 TiB"
    for bad in ("lots", "-5GiB", "0", "inf", "12 parsecs"):
        with pytest.raises(ValueError, match=f"{MEMORY_LIMIT_ENV}=.* is not a memory size"):
            parse_bytes(bad)


def many_obstacles(**kwargs):
    return gym.make("NegCollision-v0", num_obstacles=100_000, **kwargs)


TOO_LARGE = {
    "batched env bounds and state": (
        lambda tmp: gym.make_vec("NegCollision-v0", num_envs=1024, num_obstacles=100_000),
        r"NegCollisionVectorEnv with 1,024 sub-envs x 100,000 obstacles .* would need 11\.\d GiB, "
        r"more than the limit of 1\.0 GiB \(NEGDL_MEMORY_LIMIT=1GiB\); use fewer sub-envs",
    ),
    "NegRewardDQN's replay buffer": (
        lambda tmp: NegRewardDQN("MlpPolicy", many_obstacles()),
        r"the replay buffer \(buffer_size 300,000 x 400,002-value observations x 2\) would need "
        r"894\.\d GiB, more than the limit of 1\.0 GiB.*lower buffer_size \(at most 335 fit\)",
    ),
    "SB3 DQN's replay buffer through train_agent": (
        lambda tmp: train_agent(
            TrainConfig("dqn", env_kwargs={"num_obstacles": 100_000}, n_envs=1, eval_freq=0)
        ),
        r"the replay buffer .* would need 894\.\d GiB",
    ),
    "the replay buffer of a loaded run's config.json": (
        lambda tmp: load_agent(saved_model(tmp, buffer_size=10**9)),
        r"the replay buffer \(buffer_size 1,000,000,000 .* would need",
    ),
}


def saved_model(tmp_path, **hyperparams):
    """A run folder whose config.json asks for ``hyperparams``."""
    config = TrainConfig(
        env_kwargs={"num_obstacles": 2}, hyperparams={"buffer_size": 64, "batch_size": 16}
    )
    model = build_model(config, gym.make("NegCollision-v0", num_obstacles=2))
    run = asdict(config)
    run["hyperparams"].update(hyperparams)
    return save_run(model, run, tmp_path)


@pytest.mark.parametrize("case", TOO_LARGE)
def test_requests_beyond_the_memory_limit_are_refused_before_allocating(
    case, monkeypatch, tmp_path
):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1GiB")
    make, message = TOO_LARGE[case]
    with pytest.raises(MemoryLimitError, match=message):
        make(tmp_path)


def idx(dims: tuple[int, ...], payload: bytes = b"") -> bytes:
    return struct.pack(">HBB", 0, 8, len(dims)) + struct.pack(f">{len(dims)}I", *dims) + payload


class Allocates:
    """Pickles as a call of an allowed numpy constructor that asks for ``size`` bytes."""

    def __init__(self, call):
        self.call = call

    def __reduce__(self):
        return self.call


def tiny_cifar_batch(data) -> bytes:
    return pickle.dumps({"data": Allocates(data), "labels": []}, protocol=2)


def write(path, payload: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path


RECONSTRUCT = np.zeros(1).__reduce__()[0]
#: (what to write where, loader, the error it must give): each file is tiny.
HOSTILE_FILES = {
    "MNIST images as a gzip bomb": (
        "MNIST/raw/t10k-images-idx3-ubyte.gz",
        gzip.compress(idx((10_000, 28, 28)) + bytes(40 * 2**20)),
        lambda root: load_mnist(False, root),
        r"holds more than 7,840,016 bytes \(decompressed\).*gzip bomb",
    ),
    "MNIST images declaring a billion items": (
        "MNIST/raw/t10k-images-idx3-ubyte",
        idx((10**9, 28, 28), bytes(10)),
        lambda root: load_mnist(False, root),
        r"declares shape \(1000000000, 28, 28\), but the official file holds at most 10000 items",
    ),
    "MNIST images of another size": (
        "MNIST/raw/t10k-images-idx3-ubyte",
        idx((2, 4096, 4096)),
        lambda root: load_mnist(False, root),
        r"at most 10000 items of shape \(28, 28\)",
    ),
    "EMNIST gzip bomb inside gzip.zip": (
        "EMNIST/raw/emnist-mnist-test-images-idx3-ubyte.gz",
        gzip.compress(idx((10_000, 28, 28)) + bytes(40 * 2**20)),
        lambda root: load_emnist("mnist", False, root),
        "gzip bomb",
    ),
    "CIFAR batch calling numpy.ndarray": (
        "cifar-10-batches-py/test_batch",
        tiny_cifar_batch((np.ndarray, ((10**10,), np.dtype("u1")))),
        lambda root: load_cifar10(False, root),
        "not a valid CIFAR-10 batch",
    ),
    "CIFAR batch reconstructing a huge array": (
        "cifar-10-batches-py/test_batch",
        tiny_cifar_batch((RECONSTRUCT, (np.ndarray, (10**10,), b"b"))),
        lambda root: load_cifar10(False, root),
        r"declares 10,000,000,000 bytes, more than an official batch's 30,720,000",
    ),
    "CIFAR batch of Python objects": (
        "cifar-10-batches-py/test_batch",
        tiny_cifar_batch((RECONSTRUCT, (np.ndarray, (10**6,), np.dtype("O")))),
        lambda root: load_cifar10(False, root),
        r"refusing arrays of dtype object",
    ),
}


@pytest.mark.parametrize("case", HOSTILE_FILES)
def test_files_declaring_huge_sizes_are_refused_before_allocating(case, tmp_path):
    name, payload, load, message = HOSTILE_FILES[case]
    write(tmp_path / name, payload)
    with pytest.raises(DataFileError, match=message):
        load(tmp_path)


def test_oversized_cifar_files_and_archive_members_are_not_read(tmp_path):
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    batch.parent.mkdir()
    with open(batch, "wb") as handle:
        handle.truncate(41 * 2**20)  # sparse: nothing is written
    with pytest.raises(DataFileError, match="more than an official CIFAR-10 batch"):
        load_cifar10(False, tmp_path)
    raw = tmp_path / "EMNIST" / "raw"
    raw.mkdir(parents=True)
    with zipfile.ZipFile(raw / "gzip.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("gzip/emnist-mnist-test-images-idx3-ubyte.gz", bytes(12 * 2**20))
    with pytest.raises(DataFileError, match=r"declares 12,582,912 bytes, more than the official"):
        load_emnist("mnist", False, tmp_path)
