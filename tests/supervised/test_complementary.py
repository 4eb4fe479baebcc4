"""Complementary labels, the loss -log(1 - p), symmetric label noise and the noisy-label methods."""

from __future__ import annotations

import math

import pytest
import torch

from supervised.complementary import (
    ComplementaryBatches,
    NoisyLabelConfig,
    complementary_labels,
    negative_learning_loss,
    symmetric_label_noise,
    train_noisy,
)
from supervised.models import mnist_net

LOG3 = math.log(3.0)


def test_complementary_labels_are_uniform_among_the_wrong_classes() -> None:
    labels = torch.randint(0, 10, (9000,), generator=torch.Generator().manual_seed(0))
    drawn = complementary_labels(labels, 10, torch.Generator().manual_seed(1))
    assert drawn.shape == labels.shape and (drawn != labels).all()
    # For label 0 each of the 9 other classes is drawn about 1/9 of the time.
    counts = torch.bincount(drawn[labels == 0], minlength=10).float()
    assert counts[0] == 0 and (counts[1:] / counts.sum() - 1 / 9).abs().max() < 0.04
    again = complementary_labels(labels, 10, torch.Generator().manual_seed(1))
    assert torch.equal(drawn, again)


def test_several_complementary_labels_are_distinct_and_wrong() -> None:
    labels = torch.tensor([0, 1, 2, 3] * 50)
    drawn = complementary_labels(labels, 4, torch.Generator().manual_seed(0), count=3)
    assert drawn.shape == (200, 3)
    assert (drawn != labels[:, None]).all()
    assert (drawn.sort(1).values.diff(dim=1) > 0).all()  # distinct
    with pytest.raises(ValueError, match=r"count must be in \[1, 3\]"):
        complementary_labels(labels, 4, count=4)
    with pytest.raises(ValueError, match=r"labels must be \(N,\) classes in \[0, 3\)"):
        complementary_labels(labels, 3)


def test_negative_learning_loss_by_hand() -> None:
    # Two equal logits: p = 1/2, -log(1 - 1/2) = log 2.
    assert negative_learning_loss(torch.zeros(1, 2), torch.tensor([0])).item() == pytest.approx(
        math.log(2)
    )
    # Logits (log 3, 0, 0): p = (3/5, 1/5, 1/5).
    logits = torch.tensor([[LOG3, 0.0, 0.0]])
    assert negative_learning_loss(logits, torch.tensor([0])).item() == pytest.approx(
        -math.log(2 / 5)
    )
    both = negative_learning_loss(logits, torch.tensor([[0, 1]])).item()
    assert both == pytest.approx(-math.log(2 / 5) - math.log(4 / 5))
    # Stays finite when p_ybar is 1 in floating point: -log(1 - p) = 100 + log(1 + e^-100).
    assert negative_learning_loss(torch.tensor([[100.0, 0.0]]), torch.tensor([0])).item() == (
        pytest.approx(100.0)
    )


def test_negative_learning_gradient_pushes_the_complementary_class_down() -> None:
    logits = torch.zeros(1, 2, requires_grad=True)
    negative_learning_loss(logits, torch.tensor([0])).backward()
    # d/dz_k = p_k = 1/2; d/dz_j = -p_k p_j / (1 - p_k) = -1/2.
    assert logits.grad.tolist() == [pytest.approx([0.5, -0.5])]


def test_symmetric_label_noise_flips_exactly_the_rate() -> None:
    labels = torch.randint(0, 10, (1000,), generator=torch.Generator().manual_seed(0))
    noisy = symmetric_label_noise(labels, 0.3, 10, torch.Generator().manual_seed(1))
    assert (noisy != labels).sum() == 300
    assert torch.equal(symmetric_label_noise(labels, 0.0, 10), labels)
    for rate in (1.0, -0.1):
        with pytest.raises(ValueError, match=r"noise rate must be in \[0, 1\)"):
            symmetric_label_noise(labels, rate, 10)


def test_complementary_batches_draw_fresh_wrong_labels() -> None:
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    source = ComplementaryBatches(torch.arange(6.0).view(6, 1), labels, 3, batch_size=4)
    generator = torch.Generator().manual_seed(0)
    epochs = [list(source.batches(generator)) for _ in range(2)]
    for batches in epochs:
        for images, complementary in batches:
            assert (complementary != labels[images[:, 0].long()]).all()
    assert len(source) == 2 and source.samples == 6


def test_noisy_label_methods(small_data) -> None:
    data = small_data.subset(slice(0, 96))
    config = NoisyLabelConfig(
        epochs=1, nl_epochs=2, selected_epochs=1, confidence_epochs=1, threshold=0.05
    )
    trained = train_noisy(
        ["CE", "NL+SelNL", "NL"], mnist_net, data, config, device="cpu", progress=False
    )
    assert list(trained) == ["CE", "NL+SelNL", "NL"]
    nl, selective = trained["NL"], trained["NL+SelNL"]
    assert trained["CE"].selected is None and nl.selected.shape == (96,)
    assert torch.equal(nl.selected, selective.selected)  # the selective run continues the NL run
    assert selective.losses[0] == nl.losses[0] and len(selective.losses) == 2
    assert selective.global_step == nl.global_step + math.ceil(int(nl.selected.sum()) / 64)
    with pytest.raises(ValueError, match=r"unknown method\(s\) \['SelPL'\]"):
        train_noisy(["SelPL"], mnist_net, data, config)
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\)"):
        NoisyLabelConfig(threshold=1.0)
