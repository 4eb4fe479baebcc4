"""Device selection, batching, the fit loop, evaluation over named sets, and checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from supervised.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from supervised.evaluation import evaluate
from supervised.models import mnist_net
from supervised.runtime import derive_seed, select_device
from supervised.training import Trainer, iterate_batches


class RecordingWriter:
    def __init__(self) -> None:
        self.scalars: list[tuple[str, float, int]] = []

    def add_scalar(self, key: str, value: float, step: int) -> None:
        self.scalars.append((key, value, step))


def test_select_device() -> None:
    assert select_device("cpu") == torch.device("cpu")
    assert select_device() == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="invalid device 'gpu0'"):
        select_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            select_device("cuda")


def test_iterate_batches_covers_every_index_once() -> None:
    batches = list(iterate_batches(10, 4, generator=torch.Generator().manual_seed(0)))
    assert [len(batch) for batch in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    again = list(iterate_batches(10, 4, generator=torch.Generator().manual_seed(0)))
    assert all(torch.equal(a, b) for a, b in zip(batches, again, strict=True))
    assert [len(b) for b in iterate_batches(10, 4, drop_last=True)] == [4, 4]
    assert torch.equal(torch.cat(list(iterate_batches(5, 2, shuffle=False))), torch.arange(5))
    with pytest.raises(ValueError, match="batch_size must be positive"):
        list(iterate_batches(5, 0))


def fit_once(data, seed: int, writer=None) -> tuple[list[float], nn.Module]:
    torch.manual_seed(seed)
    model = mnist_net()
    trainer = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5),
        device="cpu",
        writer=writer,
        log_every=2,
        progress=False,
    )
    return trainer.fit((data.images, data.labels), 3, torch.Generator().manual_seed(seed)), model


def test_fit_decreases_loss_logs_and_is_reproducible(small_data) -> None:
    writer = RecordingWriter()
    losses, model = fit_once(small_data, 0, writer)
    assert losses[-1] < 0.5 * losses[0]
    again, model_again = fit_once(small_data, 0)
    assert again == losses
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), model_again.parameters(), strict=True)
    )
    assert fit_once(small_data, 1)[0] != losses
    keys = {key for key, _, _ in writer.scalars}
    assert keys == {"train/loss", "train/epoch_loss"}
    assert [step for key, _, step in writer.scalars if key == "train/epoch_loss"] == [4, 8, 12]


def test_trainer_rejects_bad_settings(small_data) -> None:
    model = mnist_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="amp=True needs a CUDA device"):
            Trainer(model, optimizer, device="cpu", amp=True)
    trainer = Trainer(model, optimizer, device="cpu", progress=False)
    with pytest.raises(ValueError, match="matching, non-empty"):
        trainer.fit((small_data.images, small_data.labels[:3]), 1)


def test_evaluate_several_named_sets(small_data) -> None:
    model = mnist_net().train()
    writer = RecordingWriter()
    flipped = small_data.with_images(small_data.images.flip(-1))
    results = evaluate(
        model, {"full": small_data, "flipped": flipped}, batch_size=50, writer=writer, step=7
    )
    with torch.no_grad():
        model.eval()
        expected = (
            100.0 * (model(small_data.images).argmax(1) == small_data.labels).float().mean().item()
        )
    assert list(results) == ["full", "flipped"] and results["full"] == pytest.approx(expected)
    assert [(key, step) for key, _, step in writer.scalars] == [
        ("eval/full/accuracy", 7),
        ("eval/flipped/accuracy", 7),
    ]
    model.train()
    evaluate(model, {"full": small_data})
    assert model.training
    with pytest.raises(ValueError, match="at least one named test set"):
        evaluate(model, {})


def test_checkpoint_round_trip(tmp_path: Path, small_data) -> None:
    losses, model = fit_once(small_data, 0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
    optimizer.step()  # create momentum state
    path = save_checkpoint(
        tmp_path / "ckpt" / "model.pt",
        model,
        optimizer,
        {"mode": "SN", "seed": 0, "losses": losses},
    )
    fresh = mnist_net()
    fresh_optimizer = torch.optim.SGD(fresh.parameters(), lr=0.05, momentum=0.5)
    metadata = load_checkpoint(path, fresh, fresh_optimizer)
    assert metadata == {"mode": "SN", "seed": 0, "losses": losses}
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True)
    )
    assert fresh_optimizer.state_dict()["state"].keys() == optimizer.state_dict()["state"].keys()


def test_checkpoint_errors(tmp_path: Path) -> None:
    model = mnist_net()
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt", model)
    truncated = save_checkpoint(tmp_path / "t.pt", model)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt, truncated"):
        load_checkpoint(truncated, model)
    with pytest.raises(CheckpointError, match="does not fit NegatableClassifier"):
        load_checkpoint(save_checkpoint(tmp_path / "other.pt", mnist_net(47)), model)
    with pytest.raises(CheckpointError, match="holds no optimizer state"):
        load_checkpoint(
            save_checkpoint(tmp_path / "m.pt", model),
            model,
            torch.optim.SGD(model.parameters(), lr=0.1),
        )

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    malicious = tmp_path / "evil.pt"
    torch.save({"model": Exploit()}, malicious)
    with pytest.raises(CheckpointError, match="objects other than tensors"):
        load_checkpoint(malicious, model)


def test_derive_seed_is_stable_and_separates_streams() -> None:
    assert derive_seed(0, "init") == derive_seed(0, "init")
    assert len({derive_seed(0, "init"), derive_seed(1, "init"), derive_seed(0, "shuffle")}) == 3
