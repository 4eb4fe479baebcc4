"""Loss reducers: OHEM keeps the top-k, the mean over non-zero losses, empty batches."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.nn import functional as F

from supervised.context import RunContext
from supervised.models import mnist_net
from supervised.reducers import HardExampleMining, NonZeroMean
from supervised.training import MeanReducer, Trainer


def test_ohem_keeps_the_top_k_and_only_they_get_gradients() -> None:
    losses = torch.tensor([1.0, 5.0, 3.0, 2.0], requires_grad=True)
    reduced = HardExampleMining(k=2)(losses)
    reduced.backward()
    assert reduced.item() == 4.0  # (5 + 3) / 2
    assert losses.grad.tolist() == [0.0, 0.5, 0.5, 0.0]
    assert HardExampleMining(fraction=0.5)(torch.tensor([1.0, 5.0, 3.0, 2.0, 4.0])).item() == 4.0
    assert HardExampleMining(fraction=1.0)(torch.tensor([1.0, 3.0])).item() == 2.0
    assert HardExampleMining(k=1)(torch.zeros(0)).item() == 0.0


def test_ohem_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="OHEM keeps k=5 losses but the batch has only 4"):
        HardExampleMining(k=5)(torch.ones(4))
    with pytest.raises(ValueError, match="needs one loss per sample"):
        HardExampleMining(k=1)(torch.tensor(2.0))
    with pytest.raises(ValueError, match="exactly one of k"):
        HardExampleMining()
    with pytest.raises(ValueError, match="exactly one of k"):
        HardExampleMining(k=2, fraction=0.5)
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        HardExampleMining(fraction=0.0)
    with pytest.raises(ValueError, match="k must be a positive"):
        HardExampleMining(k=0)


def test_mean_over_non_zero_and_empty_batches() -> None:
    assert NonZeroMean()(torch.tensor([0.0, 2.0, 4.0, 0.0])).item() == 3.0
    assert NonZeroMean()(torch.zeros(3)).item() == 0.0
    assert MeanReducer()(torch.zeros(0)).item() == 0.0
    assert MeanReducer()(torch.tensor([1.0, 2.0])).item() == 1.5


def test_ohem_training_step_back_propagates_exactly_the_hardest_k(small_data) -> None:
    """One SGD step of the Trainer with OHEM equals, by hand, a step on the mean cross-entropy
    of the k samples with the highest loss (and differs from a step on any other k)."""
    data, k, lr = small_data.subset(slice(0, 32)), 5, 0.5
    torch.manual_seed(0)
    model = mnist_net()  # no dropout or batch norm: train and eval mode compute the same
    start = copy.deepcopy(model)
    trainer = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=lr),
        reducer=HardExampleMining(k=k),
        batch_size=32,
        context=RunContext("cpu", progress=False),
    )
    trainer.fit((data.images, data.labels), 1, torch.Generator().manual_seed(0))

    def stepped(kept: torch.Tensor) -> list[torch.Tensor]:
        by_hand = copy.deepcopy(start)
        losses = F.cross_entropy(by_hand(data.images[kept]), data.labels[kept])
        gradients = torch.autograd.grad(losses, list(by_hand.parameters()))
        return [p.detach() - lr * g for p, g in zip(by_hand.parameters(), gradients, strict=True)]

    with torch.no_grad():
        losses = F.cross_entropy(start(data.images), data.labels, reduction="none")
    hardest = losses.argsort(descending=True)[:k]
    trained = [parameter.detach() for parameter in model.parameters()]
    assert all(
        torch.allclose(a, b, atol=1e-5) for a, b in zip(trained, stepped(hardest), strict=True)
    )
    # The next-hardest five instead would have given other weights.
    others = losses.argsort(descending=True)[1 : k + 1]
    assert not all(
        torch.allclose(a, b, atol=1e-5) for a, b in zip(trained, stepped(others), strict=True)
    )
