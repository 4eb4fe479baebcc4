"""Loss reducers: OHEM keeps the top-k, the mean over non-zero losses, empty batches."""

from __future__ import annotations

import pytest
import torch

from supervised.cbomf import CBOMFConfig, train_mode
from supervised.models import mnist_net
from supervised.reducers import HardExampleMining, NonZeroMean
from supervised.training import MeanReducer


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


def test_ohem_trains_a_cbomf_mode(small_data) -> None:
    data = small_data.subset(slice(0, 128))

    def run(reducer):
        config = CBOMFConfig(epochs=1, reducer=reducer)
        return train_mode("SN", mnist_net, data, config=config, device="cpu", progress=False)

    mean, hard = run(None), run(HardExampleMining(fraction=0.25))
    # Same initialisation and batches; back-propagating a quarter of each batch changes the weights.
    assert torch.isfinite(torch.tensor(hard.losses[0])).all()
    first = next(mean.model.parameters())
    assert not torch.equal(first, next(hard.model.parameters()))
