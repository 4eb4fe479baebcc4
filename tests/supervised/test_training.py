"""Device selection, batching, the fit loop, evaluation over named sets, and checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from supervised.cbomf import CBOMFConfig, evaluate_modes, train_modes
from supervised.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from supervised.context import RunContext
from supervised.data import LabelledImages
from supervised.evaluation import evaluate
from supervised.models import mnist_net
from supervised.runtime import derive_seed, select_device
from supervised.stacked import StackedTrainer
from supervised.training import (
    BatchSource,
    LossReducer,
    MeanReducer,
    TensorBatches,
    Trained,
    Trainer,
    TrainerOptions,
    iterate_batches,
)

CPU = RunContext("cpu", progress=False)


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
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        list(iterate_batches(5, 0))


def fit_once(data, seed: int, writer=None) -> tuple[list[float], nn.Module]:
    torch.manual_seed(seed)
    model = mnist_net()
    trainer = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5),
        context=RunContext("cpu", (writer,), progress=False),
        options=TrainerOptions(log_every=2),
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
            Trainer(model, optimizer, context=CPU, options=TrainerOptions(amp=True))
    trainer = Trainer(model, optimizer, context=CPU)
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


class TripletLikeSource(BatchSource):
    """Three aligned tensors per batch, as a triplet sampler would yield."""

    def __init__(self, anchors, positives, labels, batch_size: int) -> None:
        self.inner = TensorBatches(anchors, positives, labels, batch_size=batch_size)

    def __len__(self) -> int:
        return len(self.inner)

    @property
    def samples(self) -> int:
        return self.inner.samples

    def batches(self, generator=None):
        return self.inner.batches(generator)


class KeepHardest(LossReducer):
    """Back-propagate only the k highest losses (what hard-example mining will do)."""

    def __init__(self, k: int) -> None:
        self.k, self.seen = k, []

    def reduce(self, losses):
        self.seen.append(losses.detach().clone())
        return losses.topk(self.k).values.mean()


def test_trainer_takes_any_batch_source_and_reducer(small_data) -> None:
    torch.manual_seed(0)
    model = mnist_net()
    seen_batches = []

    class PairTrainer(Trainer):
        def compute_loss(self, batch):
            anchors, positives, labels = batch
            seen_batches.append(len(batch))
            logits = self.model(anchors) + self.model(positives)
            return nn.functional.cross_entropy(logits, labels, reduction="none")

    reducer = KeepHardest(4)
    trainer = PairTrainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.05),
        reducer=reducer,
        context=CPU,
    )
    source = TripletLikeSource(
        small_data.images, small_data.images.flip(-1), small_data.labels, batch_size=32
    )
    losses = trainer.fit(source, 2, torch.Generator().manual_seed(0))
    assert len(losses) == 2 and set(seen_batches) == {3}
    assert len(reducer.seen) == 2 * len(source) and reducer.seen[0].shape == (32,)
    # The reported epoch loss is the reduced one: the mean of the 4 hardest of each batch.
    first_epoch = [batch.topk(4).values.mean() for batch in reducer.seen[: len(source)]]
    assert losses[0] == pytest.approx(torch.stack(first_epoch).mean().item(), rel=1e-5)


def test_mean_reducer_matches_the_mean_reduction() -> None:
    losses = torch.tensor([1.0, 2.0, 6.0])
    assert MeanReducer()(losses) == 3.0 and MeanReducer()(torch.tensor(5.0)) == 5.0
    with pytest.raises(ValueError, match="per sample"):
        MeanReducer()(torch.ones(2, 2))


def test_step_counter_continues_across_fits_and_trainers(small_data) -> None:
    writer = RecordingWriter()
    model = mnist_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    trainer = Trainer(model, optimizer, context=RunContext("cpu", (writer,), progress=False))
    data = (small_data.images, small_data.labels)
    trainer.fit(data, 1)
    trainer.fit(data, 1)
    assert trainer.global_step == 8
    second = Trainer(
        model,
        optimizer,
        context=RunContext("cpu", (writer,), progress=False),
        options=TrainerOptions(global_step=8),
    )
    second.fit(data, 1)
    epoch_steps = [step for key, _, step in writer.scalars if key == "train/epoch_loss"]
    assert epoch_steps == [4, 8, 12]
    with pytest.raises(ValueError, match="global_step must be an integer >= 0, got -1"):
        TrainerOptions(global_step=-1)
    with pytest.raises(TypeError, match="BatchSource or a tuple of tensors"):
        trainer.fit(small_data.images, 1)
    with pytest.raises(ValueError, match="drop_last"):
        TensorBatches(small_data.images, batch_size=1000, drop_last=True)


# Input checks at the training entry points: a clear error before any work, never torch's
# "mat1 and mat2 shapes cannot be multiplied" or "Target 10 is out of bounds" from deep inside.

ELEVEN = tuple(str(digit) for digit in range(11))  # data with a class the 10-way net lacks


def sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.1)


def fit_trainer(images: torch.Tensor, labels: torch.Tensor) -> None:
    model = mnist_net()
    trainer = Trainer(model, sgd(model), context=CPU)
    trainer.fit((images, labels), 1)


def fit_stacked(images: torch.Tensor, labels: torch.Tensor) -> None:
    trainer = StackedTrainer([mnist_net(), mnist_net()], plain_sgd, context=CPU)
    trainer.fit((images, labels), 1)


def plain_sgd(params) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.1)


def cbomf_train(images: torch.Tensor, labels: torch.Tensor) -> None:
    data = LabelledImages(images, labels, ELEVEN)
    train_modes(["SN"], mnist_net, data, CBOMFConfig(epochs=1), context=CPU)


def cbomf_evaluate(images: torch.Tensor, labels: torch.Tensor) -> None:
    trained = {0: {"SN": Trained(mnist_net(), [], 0)}}
    evaluate_modes(trained, {"full": LabelledImages(images, labels, ELEVEN)}, RunContext("cpu"))


ENTRY_POINTS = {
    "Trainer.fit": fit_trainer,
    "StackedTrainer.fit": fit_stacked,
    "train_modes": cbomf_train,
    "evaluate_modes": cbomf_evaluate,
}

IMAGES, LABELS = torch.rand(8, 1, 28, 28), torch.arange(8)
BAD_INPUTS = {
    # LabelledImages, what the CBOMF functions take, refuses some of these itself: same advice.
    "uint8 images": ((IMAGES * 255).to(torch.uint8), LABELS, r"\.float\(\) / 255"),
    "wrong image size": (torch.rand(8, 1, 32, 32), LABELS, r"shape \(1, 32, 32\) per sample"),
    "wrong channel count": (torch.rand(8, 3, 28, 28), LABELS, r"shape \(3, 28, 28\) per sample"),
    "float64 images": (IMAGES.double(), LABELS, r"\(1, 28, 28\) per sample \(torch.float64\)"),
    "float targets": (IMAGES, LABELS.float(), r"(integer class indices|int64 tensor).*float32"),
    "targets beyond the classes": (IMAGES, LABELS + 3, r"class indices in \[0, 9\].* to 10"),
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("bad", BAD_INPUTS)
def test_entry_points_refuse_bad_inputs_before_training(entry: str, bad: str) -> None:
    images, labels, message = BAD_INPUTS[bad]
    with pytest.raises((TypeError, ValueError), match=message):
        ENTRY_POINTS[entry](images, labels)


def test_good_inputs_pass_every_entry_point() -> None:
    for entry in ENTRY_POINTS.values():
        entry(IMAGES, LABELS)  # the checks refuse nothing that trains


def test_trainers_refuse_an_optimizer_over_another_models_parameters() -> None:
    model, other = mnist_net(), mnist_net()
    with pytest.raises(ValueError, match="8 of its 8 tensors are another module's"):
        Trainer(model, sgd(other), context=CPU)
    with pytest.raises(ValueError, match="optimizer must hold the model's trainable parameters"):
        StackedTrainer([model, mnist_net()], lambda _: sgd(other), context=CPU)
    model.freeze_extractor()
    with pytest.raises(ValueError, match="0 of its 4 tensors are another module's and 0 require"):
        Trainer(model, torch.optim.SGD(model.extractor.parameters(), lr=0.1), context=CPU)
    head = Trainer(model, sgd(model.head), forward=model.classify, context=CPU)
    assert head.optimizer.param_groups[0]["params"][0] is model.head[0].weight


def test_train_modes_refuses_a_model_without_negation() -> None:
    data = LabelledImages(IMAGES, LABELS, ELEVEN)
    with pytest.raises(TypeError, match="must build a supervised.models.NegatableClassifier.*Seq"):
        train_modes(["SN"], lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), data)
