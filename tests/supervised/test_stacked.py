"""Stacked training: K models in one vectorised step equal K separate runs with the same seeds."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from supervised.cbomf import (
    CBOMFConfig,
    evaluate_modes,
    train_modes,
)
from supervised.context import RunContext
from supervised.evaluation import evaluate
from supervised.models import cifar_resnet18, mnist_net
from supervised.occlusions import mnist_cuts, partial_test_sets
from supervised.stacked import (
    StackedBatches,
    StackedTrainer,
    check_stackable,
    evaluate_stacked,
    predict_stacked,
)
from supervised.training import Trainer, iterate_batches

CPU = RunContext("cpu", progress=False)

# Stacked kernels sum in another order than separate ones. In float64 that leaves ~1e-15; in
# float32 a ReLU, max-pool or batch-norm decision flipped by rounding can grow to ~1e-4 within
# a few steps, so the generic checks run in float64 and the CBOMF one (float32, ~1e-7 here)
# with a looser bound. A wrong shuffle, head reset or coupled gradient moves parameters by 1e-2.
ATOL_FLOAT64, ATOL_FLOAT32 = 1e-10, 1e-5


def close(a: nn.Module, b: nn.Module, atol: float = ATOL_FLOAT64) -> bool:
    return all(
        torch.allclose(x.double(), y.double(), atol=atol, rtol=0)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def stacked_equals_separate(factory, images, labels, optimizer, epochs=1, seeds=(0, 1)):
    """Train one float64 model per seed stacked and separately; return the stacked ones and
    their epoch losses after checking them against the separate runs."""
    images = images.double()
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(factory().double())
    trainer = StackedTrainer(models, optimizer, context=CPU)
    generators = [torch.Generator().manual_seed(100 + seed) for seed in seeds]
    losses = trainer.fit((images, labels), epochs, generators)
    for seed, model, model_losses in zip(seeds, models, losses, strict=True):
        torch.manual_seed(seed)
        reference = factory().double()
        expected = Trainer(reference, optimizer(reference.parameters()), context=CPU).fit(
            (images, labels), epochs, torch.Generator().manual_seed(100 + seed)
        )
        assert model_losses == pytest.approx(expected, rel=1e-6)  # float32 accumulators
        assert close(model, reference), f"seed {seed} diverged from its separate run"
    return models, trainer


@pytest.mark.parametrize(
    "optimizer",
    [
        lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.5),
        lambda params: torch.optim.Adam(params, lr=1e-3),
    ],
    ids=["sgd-momentum", "adam"],
)
def test_stacked_models_equal_separate_runs(small_data, optimizer) -> None:
    data = small_data.subset(slice(0, 100))  # a batch of 64 and a short one of 36
    _, trainer = stacked_equals_separate(mnist_net, data.images, data.labels, optimizer, epochs=2)
    assert trainer.global_step == 4


def test_one_stacked_model_equals_the_plain_trainer(small_data) -> None:
    # The stacked trainer is the trainer with a vectorised step: K=1 is the plain run.
    data = small_data.subset(slice(0, 100))
    sgd = lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.5)  # noqa: E731
    (model,), trainer = stacked_equals_separate(
        mnist_net, data.images, data.labels, sgd, epochs=2, seeds=(0,)
    )
    assert trainer.global_step == 4 and trainer.models == [model]


class ConvBN(nn.Module):
    """A small net with batch norm, standing in for ResNet18's blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)
        self.head = nn.Linear(4 * 26 * 26, 10)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.bn(self.conv(images))).flatten(1))


def plain_sgd(params) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.05)


def test_batch_norm_statistics_stay_per_model(small_data) -> None:
    models, _ = stacked_equals_separate(
        ConvBN, small_data.images[:96], small_data.labels[:96], plain_sgd
    )
    assert [int(model.bn.num_batches_tracked) for model in models] == [2, 2]
    assert not torch.allclose(models[0].bn.running_mean, models[1].bn.running_mean)


def test_resnet18_stacks_with_its_batch_norms() -> None:
    images = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    models, _ = stacked_equals_separate(cifar_resnet18, images, torch.arange(4), plain_sgd)
    assert models[0].extractor.stem[1].num_batches_tracked == 1


def test_stacked_batches_shuffle_each_model_like_iterate_batches() -> None:
    values = torch.arange(10).float()
    features = torch.stack([values, values + 100])  # one slice per model
    batches = StackedBatches(features, values, models=2, per_model=(True, False), batch_size=4)
    seeds = (3, 4)
    drawn = list(batches.batches([torch.Generator().manual_seed(s) for s in seeds]))
    assert [batch[0].shape for batch in drawn] == [(2, 4), (2, 4), (2, 2)]
    for row, seed in enumerate(seeds):
        expected = torch.cat(
            list(iterate_batches(10, 4, generator=torch.Generator().manual_seed(seed)))
        )
        shared = torch.cat([batch[1][row] for batch in drawn])
        own = torch.cat([batch[0][row] for batch in drawn])
        assert torch.equal(shared, expected.float()) and torch.equal(own, expected + 100.0 * row)
    assert len(batches) == 3 and batches.samples == 10
    with pytest.raises(ValueError, match="one generator per model"):
        list(batches.batches([torch.Generator()]))
    with pytest.raises(ValueError, match="must start with 2 models"):
        StackedBatches(values, models=2, per_model=(True,))
    with pytest.raises(ValueError, match="matching, non-empty sample counts"):
        StackedBatches(values, values[:5], models=2)


def test_only_identical_models_and_elementwise_optimizers_stack() -> None:
    with pytest.raises(ValueError, match="differs from model 0"):
        check_stackable([mnist_net(10), mnist_net(47)])
    frozen = mnist_net()
    frozen.freeze_extractor()
    with pytest.raises(ValueError, match="differs from model 0"):
        check_stackable([mnist_net(), frozen])
    with pytest.raises(ValueError, match="train/eval mode"):
        check_stackable([mnist_net(), mnist_net().eval()])
    with pytest.raises(ValueError, match="only copies of one architecture"):
        check_stackable([mnist_net(), ConvBN()])
    with pytest.raises(ValueError, match="LBFGS is not an elementwise optimiser"):
        StackedTrainer([mnist_net(), mnist_net()], torch.optim.LBFGS, context=CPU)
    with pytest.raises(ValueError, match="one writer"):
        StackedTrainer(
            [mnist_net()], torch.optim.SGD, context=RunContext("cpu", (None, None), progress=False)
        )


def test_stacked_evaluation_equals_per_model_evaluation(small_data) -> None:
    models = [mnist_net() for _ in range(3)]
    test_sets = partial_test_sets(small_data.subset(slice(0, 100)), mnist_cuts())
    together = evaluate_stacked(models, test_sets)
    for model, accuracies in zip(models, together, strict=True):
        assert accuracies == pytest.approx(evaluate(model, test_sets), abs=1e-9)
        assert model.training  # modes restored
    features = predict_stacked(models, small_data.images[:50], "features")
    assert features.shape == (3, 50, 800)
    logits = predict_stacked(models, features, "classify", per_model=True, batch_size=7)
    with torch.no_grad():
        models[2].eval()
        assert torch.allclose(logits[2], models[2](small_data.images[:50]), atol=1e-5)


def test_cbomf_seeds_stacked_equal_separate_runs(small_data) -> None:
    data = small_data.subset(slice(0, 96))  # a full batch and a short one
    config = CBOMFConfig(lr=0.05, batch_size=64, epochs=1, second_epochs=2)
    modes = ["SN", "ONN", "ALT", "HN-K"]  # full network, negation, alternation, kernels
    stacked = train_modes(modes, mnist_net, data, config, seeds=(0, 1), context=CPU)
    test_sets = partial_test_sets(small_data.subset(slice(100, 200)), mnist_cuts())
    accuracies = evaluate_modes(stacked, test_sets, CPU)
    for seed in (0, 1):
        alone = train_modes(modes, mnist_net, data, config, (seed,), CPU)[seed]
        expected = evaluate_modes({seed: alone}, test_sets, CPU)[seed]
        for mode in modes:
            ours, theirs = stacked[seed][mode], alone[mode]
            assert close(ours.model, theirs.model, ATOL_FLOAT32), f"seed {seed} {mode}"
            assert len(ours.losses) == len(theirs.losses) and ours.global_step == theirs.global_step
            for our_phase, their_phase in zip(ours.losses, theirs.losses, strict=True):
                assert our_phase == pytest.approx(their_phase, rel=1e-5)
            assert ours.model.negate == theirs.model.negate
            assert accuracies[seed][mode] == pytest.approx(expected[mode], abs=1.0)  # 1 image
    with pytest.raises(ValueError, match="distinct seeds"):
        train_modes(modes, mnist_net, data, config, seeds=(1, 1))
