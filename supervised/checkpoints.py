"""Checkpoints: model (and optimiser) state plus plain metadata, loaded with ``weights_only=True``."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from negdl.devices import resolve_device
from negdl.errors import UserError


class CheckpointError(RuntimeError, UserError):
    """A checkpoint is missing, unreadable, or does not fit the model it is loaded into."""


def check_plain(value: Any, where: str = "metadata") -> None:
    """Raise a ``ValueError`` naming the first part of ``value`` that ``weights_only`` loading
    would refuse: only None, bools, ints, floats, strings, tensors and lists, tuples and dicts
    (with string keys) of them are plain."""
    # Exact types: numpy's float64 is a float, yet weights_only loading refuses it.
    if value is None or type(value) in (bool, int, float, str) or isinstance(value, torch.Tensor):
        return
    if type(value) in (list, tuple, dict):
        for key, item in value.items() if type(value) is dict else enumerate(value):
            if type(value) is dict and not isinstance(key, str):
                raise ValueError(f"{where} has the key {key!r}; keys must be strings")
            check_plain(item, f"{where}[{key!r}]")
        return
    raise ValueError(
        f"{where} is a {type(value).__name__} ({value!r}); checkpoints hold plain data only, "
        "which loads with weights_only=True: convert it (e.g. float(x), x.tolist(), str(x))"
    )


def _check_model_and_optimizer(model: Any, optimizer: Any) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}"
        )


def _check_not_a_folder(path: Path) -> None:
    if path.is_dir():
        raise CheckpointError(f"checkpoint path {path} is a folder; give a file name in it")


def _read(
    path: str | os.PathLike[str], map_location: str | torch.device | None
) -> tuple[Any, Path]:
    """The checkpoint at ``path`` read with ``weights_only=True``, and ``path`` as a Path."""
    source = Path(path)
    _check_not_a_folder(source)
    if not source.is_file():
        raise CheckpointError(
            f"checkpoint {source} does not exist; check the path or train a model first"
        )
    try:
        return torch.load(source, map_location=map_location, weights_only=True), source
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise CheckpointError(
            f"cannot read checkpoint {source}: it is corrupt, truncated or holds objects other than "
            f"tensors and plain data ({error}); re-save it with save_checkpoint"
        ) from error


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Save ``model`` (and ``optimizer``) state with plain ``metadata`` (see :func:`check_plain`,
    since only that loads with ``weights_only=True``), creating parent folders."""
    _check_model_and_optimizer(model, optimizer)
    if metadata is not None and type(metadata) is not dict:
        raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    check_plain(dict(metadata or {}))
    destination = Path(path)
    _check_not_a_folder(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "metadata": dict(metadata or {})}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    torch.save(state, destination)
    return destination


def load_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    map_location: str | torch.device | None = "cpu",
) -> dict[str, Any]:
    """Load a checkpoint saved by :func:`save_checkpoint` into ``model`` (and ``optimizer``) and
    return its metadata. Only tensors and plain containers are unpickled (``weights_only=True``),
    so a malicious file cannot run code; keys must match the model exactly."""
    _check_model_and_optimizer(model, optimizer)
    if map_location is not None:
        resolve_device(map_location)  # torch would blame the file for a missing device
    state, source = _read(path, map_location)
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(
            f"{source} is not a negdl checkpoint (no 'model' entry); save it with save_checkpoint"
        )
    _check_entries(state, source)
    if optimizer is not None:  # checked before the model changes, so a refusal changes nothing
        if "optimizer" not in state:
            raise CheckpointError(
                f"checkpoint {source} holds no optimizer state; load it without optimizer="
            )
        _check_optimizer_fits(state["optimizer"], optimizer, source)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise CheckpointError(
            f"checkpoint {source} does not fit {type(model).__name__}: {error}"
        ) from error
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    return state.get("metadata", {})


def _check_entries(state: dict, source: Path) -> None:
    """The entries a negdl checkpoint holds have the types save_checkpoint gives them."""
    model_state = state["model"]
    if not isinstance(model_state, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor)
        for key, value in model_state.items()
    ):
        raise CheckpointError(
            f"{source}: the 'model' entry must be a state dict (names to tensors), got a "
            f"{type(model_state).__name__}; save it with save_checkpoint"
        )
    if not isinstance(state.get("metadata", {}), dict):
        raise CheckpointError(
            f"{source}: the 'metadata' entry must be a dict, got a "
            f"{type(state['metadata']).__name__}"
        )
    optimizer_state = state.get("optimizer", {"state": {}, "param_groups": []})
    if (
        not isinstance(optimizer_state, dict)
        or not isinstance(optimizer_state.get("param_groups"), list)
        or not all(
            isinstance(group, dict) and isinstance(group.get("params"), list)
            for group in optimizer_state["param_groups"]
        )
    ):
        raise CheckpointError(
            f"{source}: the 'optimizer' entry is not an optimizer state dict (param_groups, "
            "each with its params)"
        )


def _check_optimizer_fits(saved: dict, optimizer: torch.optim.Optimizer, source: Path) -> None:
    """The saved parameter groups have the optimizer's count and sizes (torch checks this only
    after the model was already overwritten, and with a ValueError that names no file)."""
    saved_sizes = [len(group["params"]) for group in saved["param_groups"]]
    sizes = [len(group["params"]) for group in optimizer.param_groups]
    if saved_sizes != sizes:
        raise CheckpointError(
            f"checkpoint {source} holds optimizer state for parameter groups of sizes "
            f"{saved_sizes}, but the given {type(optimizer).__name__} has groups of sizes "
            f"{sizes}; build the optimizer over the same parameter groups as when it was saved"
        )
    # Per-parameter buffers (momentum, Adam's moments) must have their parameter's shape; torch
    # would load mismatched ones and fail only at the next step.
    saved_state = saved.get("state", {})
    saved_ids = [index for group in saved["param_groups"] for index in group["params"]]
    params = [param for group in optimizer.param_groups for param in group["params"]]
    for index, param in zip(saved_ids, params, strict=True):
        for name, value in (saved_state.get(index) or {}).items():
            if isinstance(value, torch.Tensor) and value.ndim and value.shape != param.shape:
                raise CheckpointError(
                    f"checkpoint {source} holds optimizer state {name!r} of shape "
                    f"{tuple(value.shape)} for a parameter of shape {tuple(param.shape)}; the "
                    "optimizer was saved for another model"
                )


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a checkpoint without loading it into a model (e.g. to build the model)."""
    state, source = _read(path, "cpu")
    if not isinstance(state, dict) or not isinstance(state.get("metadata", {}), dict):
        raise CheckpointError(f"{source} is not a negdl checkpoint; save it with save_checkpoint")
    return state.get("metadata", {})
