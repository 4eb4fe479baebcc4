"""Where and how reproducibly code runs: device selection, seeding, determinism."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch

from negdl.checks import check_bool, check_int
from negdl.devices import resolve_device

T = TypeVar("T")

#: The largest seed: torch's generators take 64 bits, signed for ``torch.manual_seed``.
SEED_MAX = 2**63 - 1


def check_seed(name: str, seed: object) -> int:
    """``seed`` as an int in ``[0, SEED_MAX]``, else a ``TypeError``/``ValueError`` naming
    ``name`` (torch would fail later with "Overflow when unpacking long long")."""
    return check_int(name, seed, 0, SEED_MAX)


def select_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``device`` (e.g. ``"cuda:1"``) when given, else CUDA when present,
    else CPU; asking for CUDA without one is an error (the API page lists it; an alias of
    :func:`negdl.devices.resolve_device` would not appear there)."""
    return resolve_device(device)


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, numpy and torch (all devices); ``deterministic`` asks for deterministic
    algorithms where torch offers them (a warning, not an error, elsewhere), no cuDNN autotuning."""
    check_seed("seed", seed)
    check_bool("deterministic", deterministic)
    random.seed(seed)
    # Legacy global numpy RNG on purpose: third-party code (e.g. gymnasium helpers) draws from it.
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs a fixed workspace to be deterministic; it must be set before first use.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def derive_seed(seed: int, *names: object) -> int:
    """A seed for one named random stream, stable across processes and Python versions, so
    e.g. phase 2 does not depend on how phase 1 consumed randomness. ``seed`` is checked, so
    every seeded entry point refuses a bad seed before any work."""
    check_seed("seed", seed)
    text = "/".join(str(part) for part in (seed, *names))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") & (2**63 - 1)


def make_generator(seed: int, *names: object) -> torch.Generator:
    """A CPU generator seeded for the named stream (CPU so results match across devices)."""
    return torch.Generator().manual_seed(derive_seed(seed, *names))


def seeded_build(factory: Callable[[], T], seed: int, *names: object) -> T:
    """``factory()`` with torch's global RNG seeded for the named stream (e.g. a model's
    initialisation), the global RNG left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, *names))
        return factory()
