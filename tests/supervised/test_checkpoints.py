"""Checkpoints refuse bad arguments and bad files before they touch the model: one test per
class of bad input, over every entry point that takes it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from supervised.checkpoints import (
    CheckpointError,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
)


def small_model(out: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, out))


def stepped_sgd(model: nn.Module) -> torch.optim.SGD:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(2, 4)).sum().backward()
    optimizer.step()  # momentum buffers exist
    return optimizer


ENTRY_POINTS = {
    "save": lambda path, model=None, optimizer=None: save_checkpoint(
        path, small_model() if model is None else model, optimizer
    ),
    "load": lambda path, model=None, optimizer=None: load_checkpoint(
        path, small_model() if model is None else model, optimizer
    ),
    "read_metadata": lambda path, model=None, optimizer=None: read_metadata(path),
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_a_folder_is_not_a_checkpoint_path(tmp_path: Path, entry: str) -> None:
    with pytest.raises(CheckpointError, match=f"checkpoint path {tmp_path} is a folder"):
        ENTRY_POINTS[entry](tmp_path)


@pytest.mark.parametrize("entry", ["save", "load"])
@pytest.mark.parametrize(
    "model, optimizer, says",
    [
        ({"0.weight": torch.zeros(5, 4)}, None, "model must be a torch.nn.Module, got dict"),
        ("net", None, "model must be a torch.nn.Module, got str"),
        (None, {"lr": 0.1}, "optimizer must be a torch.optim.Optimizer or None, got dict"),
    ],
)
def test_non_modules_and_non_optimizers_are_refused(tmp_path, entry, model, optimizer, says):
    path = save_checkpoint(tmp_path / "m.pt", small_model())
    with pytest.raises(TypeError, match=says):
        ENTRY_POINTS[entry](path, model, optimizer)


@pytest.mark.parametrize("metadata", [[("seed", 0)], "seed=0", 3])
def test_metadata_must_be_a_dict(tmp_path: Path, metadata) -> None:
    with pytest.raises(TypeError, match="metadata must be a dict or None, got"):
        save_checkpoint(tmp_path / "m.pt", small_model(), metadata=metadata)
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize(
    "state, says",
    [
        ({"model": [torch.zeros(5, 4)]}, "the 'model' entry must be a state dict .* got a list"),
        ({"model": {"0.weight": 1.0}}, "the 'model' entry must be a state dict"),
        ({"model": {}, "metadata": [1]}, "the 'metadata' entry must be a dict, got a list"),
        ({"model": {}, "optimizer": [1]}, "the 'optimizer' entry is not an optimizer state"),
    ],
)
def test_checkpoint_files_with_wrong_entries_are_refused(tmp_path: Path, state, says) -> None:
    path = tmp_path / "odd.pt"
    torch.save(state, path)
    model = small_model()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=says):
        load_checkpoint(path, model)
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())


def test_an_optimizer_over_other_parameter_groups_is_refused_before_loading(tmp_path) -> None:
    saved_model = small_model()
    path = save_checkpoint(tmp_path / "m.pt", saved_model, stepped_sgd(saved_model))
    target = small_model()
    nn.init.zeros_(target[0].weight)
    # Two groups instead of one; then one group of the right size but other shapes.
    split = torch.optim.SGD(
        [{"params": target[0].parameters()}, {"params": target[2].parameters()}], lr=0.1
    )
    with pytest.raises(
        CheckpointError, match=r"groups of sizes \[4\], .* groups of sizes \[2, 2\]"
    ):
        load_checkpoint(path, target, split)
    assert (target[0].weight == 0).all()  # the model was left as it was
    shuffled = [target[2].bias, target[0].weight, target[0].bias, target[2].weight]
    with pytest.raises(
        CheckpointError,
        match="'momentum_buffer' of shape \\(5, 4\\) for a parameter of shape \\(3,\\)",
    ):
        load_checkpoint(path, target, torch.optim.SGD(shuffled, lr=0.1))
    fresh = small_model()
    load_checkpoint(path, fresh, stepped_sgd(fresh))  # the same layout loads
