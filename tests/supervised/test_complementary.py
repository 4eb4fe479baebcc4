"""Complementary labels, the loss -log(1 - p), symmetric label noise and the noisy-label methods."""

from __future__ import annotations

import math

import pytest
import torch

from supervised.complementary import (
    ComplementaryBatches,
    ConfidenceHistory,
    NoisyLabelConfig,
    complementary_labels,
    negative_learning_loss,
    selnl_selection,
    selpl_selection,
    symmetric_label_noise,
    train_noisy,
)
from supervised.data.common import LabelledImages
from supervised.models import NegatableClassifier, mnist_net

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


def test_selection_rules_by_hand() -> None:
    # Four classes: SelNL keeps p_y > 1/4, SelPL p_y > 1/2; both strict, as in the paper.
    confidence = torch.tensor([0.05, 0.25, 0.26, 0.5, 0.51, 1.0])
    assert selnl_selection(confidence, 4).tolist() == [False, False, True, True, True, True]
    assert selpl_selection(confidence).tolist() == [False, False, False, False, True, True]
    assert selpl_selection(confidence, gamma=0.2).tolist() == [False, True, True, True, True, True]
    for bad in (torch.tensor([0.5, 1.5]), torch.tensor([[0.5]]), torch.tensor([1, 0])):
        with pytest.raises(ValueError, match="confidence must"):
            selnl_selection(bad, 4)
    with pytest.raises(ValueError, match=r"gamma must be in \(0, 1\), got 1.0"):
        selpl_selection(confidence, 1.0)
    with pytest.raises(ValueError, match="num_classes must be an int >= 2, got 1"):
        selnl_selection(confidence, 1)


def test_confidence_history_averages_the_last_window() -> None:
    history = ConfidenceHistory(2)
    with pytest.raises(RuntimeError, match="no probabilities recorded"):
        history.mean()
    for value in (0.9, 0.1, 0.3):
        history.record(torch.full((3,), value))
    assert history.mean().tolist() == pytest.approx([0.2] * 3)  # 0.9 fell out of the window
    with pytest.raises(ValueError, match=r"every recording must have shape \(3,\)"):
        history.record(torch.zeros(4))


class _SampleIndex(torch.nn.Module):
    """Features: the one-hot of the sample index written in the image's first pixel (index / 8)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot((images.flatten(1)[:, 0] * 8).round().long(), 6).float()


def _table(logits: torch.Tensor) -> NegatableClassifier:
    """A classifier whose logits for sample i are ``logits[i]``, column i of a bias-free linear
    head: each sample's confidence is set by hand and moves only when that sample is trained."""
    head = torch.nn.Linear(6, logits.shape[1], bias=False)
    with torch.no_grad():
        head.weight.copy_(logits.T)
    return NegatableClassifier(_SampleIndex(), head)


def _noisy_set() -> tuple[LabelledImages, torch.Tensor]:
    """Six samples, four classes; logits chosen so the given-label probabilities are
    0.1, 0.2, 0.3, 0.4, 0.6, 0.9 (a softmax of log-probabilities)."""
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    confidence = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.6, 0.9])
    probabilities = ((1 - confidence) / 3)[:, None].repeat(1, 4)
    probabilities[torch.arange(6), labels] = confidence
    images = (torch.arange(6.0) / 8).view(6, 1, 1, 1).repeat(1, 1, 4, 4)
    return LabelledImages(images, labels, tuple("abcd")), probabilities.log()


def test_each_nlnl_stage_trains_only_on_its_selection() -> None:
    data, logits = _noisy_set()
    # lr tiny: the confidences stay where they were set, so each stage's selection is fixed.
    config = NoisyLabelConfig(
        lr=1e-9, nl_lr=1e-9, nl_epochs=1, selnl_epochs=2, selpl_epochs=2, selected_epochs=1,
        confidence_epochs=1, batch_size=2,
    )  # fmt: skip
    trained = train_noisy(
        ["NLNL", "NL+SelCE"], lambda: _table(logits), data, config, device="cpu", progress=False
    )
    # NL trains every sample, SelNL those above 1/4, SelPL those above 1/2; NL+SelCE >= 1/4.
    assert trained["NLNL"].selected.tolist() == [False, False, False, False, True, True]
    assert trained["NL+SelCE"].selected.tolist() == [False, False, True, True, True, True]
    # Steps per stage: NL 6 samples / 2 = 3; SelNL 4 samples x 2 epochs = 4; SelPL 2 x 2 = 2.
    assert trained["NLNL"].global_step == 3 + 4 + 2
    assert trained["NL+SelCE"].global_step == 3 + 2
    assert [len(losses) for losses in trained["NLNL"].losses] == [1, 2, 2]  # epochs


def test_a_selective_stage_changes_only_the_selected_samples() -> None:
    data, logits = _noisy_set()
    config = NoisyLabelConfig(
        lr=1.0, nl_lr=1.0, momentum=0.0, nl_epochs=0, selnl_epochs=1, selpl_epochs=1,
        confidence_epochs=1,
    )  # fmt: skip
    trained = train_noisy(
        ["SelNL", "NLNL"], lambda: _table(logits), data, config, device="cpu", progress=False
    )
    selnl = trained["SelNL"].model.head.weight.detach().T
    # Rows of the table are the samples: SelNL moved only p_y > 1/4 (samples 2-5).
    moved = (selnl - logits).abs().sum(1) > 0
    assert moved.tolist() == [False, False, True, True, True, True]
    # SelPL then moves only the samples SelNL left above 1/2, and raises their given label.
    nlnl = trained["NLNL"].model.head.weight.detach().T
    selected = trained["NLNL"].selected
    moved = (nlnl - selnl).abs().sum(1) > 0
    assert torch.equal(moved, selected) and selected[[4, 5]].all()
    p_before = selnl.softmax(1)[torch.arange(6), data.labels]
    p_after = nlnl.softmax(1)[torch.arange(6), data.labels]
    assert (p_after[selected] > p_before[selected]).all()


def test_noisy_label_methods(small_data) -> None:
    data = small_data.subset(slice(0, 96))
    config = NoisyLabelConfig(
        epochs=1, nl_epochs=2, selnl_epochs=1, selpl_epochs=1, selected_epochs=1,
        confidence_epochs=1, gamma=0.05, threshold=0.05,
    )  # fmt: skip
    trained = train_noisy(
        ["CE", "NLNL", "NL"], mnist_net, data, config, device="cpu", progress=False
    )
    assert list(trained) == ["CE", "NLNL", "NL"]
    nl, nlnl = trained["NL"], trained["NLNL"]
    assert trained["CE"].selected is None and nl.selected is None
    # NLNL continues the NL run: its first stage's losses are NL's, and its model moved on.
    assert nlnl.losses[0] == nl.losses[0] and len(nlnl.losses) == 3
    assert not torch.equal(nl.model.head[-1].weight, nlnl.model.head[-1].weight)
    with pytest.raises(ValueError, match=r"unknown method\(s\) \['SelPL'\]"):
        train_noisy(["SelPL"], mnist_net, data, config)
    with pytest.raises(ValueError, match=r"threshold must be a finite number in \(0, 1\)"):
        NoisyLabelConfig(threshold=1.0)
    with pytest.raises(ValueError, match=r"gamma must be a finite number in \(0, 1\)"):
        NoisyLabelConfig(gamma=0.0)
