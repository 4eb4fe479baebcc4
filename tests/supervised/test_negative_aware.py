"""Negative-aware training: uniform targets by hand, negative sources, batches and the report."""

from __future__ import annotations

import math

import pytest
import torch

from supervised.context import RunContext
from supervised.data import LabelledImages
from supervised.models import mnist_net
from supervised.negative_aware import (
    HeldOutClasses,
    InvertedNegatives,
    NegativeAwareConfig,
    NegativeBatches,
    NoiseNegatives,
    OccludedNegatives,
    OutlierExposureLoss,
    kl_to_uniform,
    make_negative_source,
    negative_report,
    train_classifier,
    uniform_cross_entropy,
)
from supervised.ood import max_softmax

LOG3 = math.log(3.0)


def test_uniform_targets_by_hand() -> None:
    assert uniform_cross_entropy(torch.zeros(1, 2)).item() == pytest.approx(math.log(2))
    assert kl_to_uniform(torch.zeros(1, 5)).item() == pytest.approx(0.0, abs=1e-6)
    # softmax(log 3, 0) = (3/4, 1/4): cross-entropy to uniform -(log 3/4 + log 1/4) / 2.
    expected = -(math.log(0.75) + math.log(0.25)) / 2
    logits = torch.tensor([[LOG3, 0.0]])
    assert uniform_cross_entropy(logits).item() == pytest.approx(expected)
    assert kl_to_uniform(logits).item() == pytest.approx(expected - math.log(2))


def test_outlier_exposure_loss_adds_the_weighted_negative_term() -> None:
    # Two real samples then two negatives.
    logits = torch.tensor([[LOG3, 0.0], [0.0, LOG3], [0.0, 0.0], [LOG3, 0.0]])
    targets = torch.tensor([0, 0])
    real = torch.tensor([-math.log(0.75), -math.log(0.25)])
    negative = (math.log(2) + uniform_cross_entropy(logits[3:]).item()) / 2
    losses = OutlierExposureLoss(0.5)(logits, targets)
    assert losses.tolist() == pytest.approx((real + 0.5 * negative).tolist())
    kl = OutlierExposureLoss(1.0, "kl")(logits, targets)
    assert kl.tolist() == pytest.approx((real + negative - math.log(2)).tolist())
    with pytest.raises(ValueError, match="at least one negative"):
        OutlierExposureLoss()(logits[:2], targets)
    with pytest.raises(ValueError, match="weight must be >= 0"):
        OutlierExposureLoss(-1.0)
    with pytest.raises(ValueError, match="target must be one of .*got 'l2'"):
        OutlierExposureLoss(0.5, "l2")


def test_negative_batches() -> None:
    images, targets = torch.zeros(10, 1, 2, 2), torch.arange(10)
    negatives = torch.ones(3, 1, 2, 2)
    source = NegativeBatches(images, targets, negatives, batch_size=4, negative_batch_size=2)
    batches = list(source.batches(torch.Generator().manual_seed(0)))
    assert [len(b[0]) for b in batches] == [6, 6, 4] and [len(b[1]) for b in batches] == [4, 4, 2]
    assert all((b[0][len(b[1]) :] == 1).all() and (b[0][: len(b[1])] == 0).all() for b in batches)
    assert source.samples == 10 + 3 * 2
    with pytest.raises(ValueError, match="the negative set is empty"):
        NegativeBatches(images, targets, torch.zeros(0, 1, 2, 2))
    with pytest.raises(ValueError, match="must have the shape of the samples"):
        NegativeBatches(images, targets, torch.zeros(2, 1, 3, 3))


def test_negative_sources() -> None:
    ones = LabelledImages(torch.ones(8, 1, 28, 28), torch.arange(8) % 4, tuple("abcd"))
    generator = torch.Generator().manual_seed(0)
    inliers, inverted = InvertedNegatives().split(ones, generator)
    assert inliers is ones and (inverted == 0).all()
    _, occluded = OccludedNegatives().split(ones, generator)
    assert (occluded.sum((1, 2, 3)) == 14 * 14).all()  # one quarter left of each image
    _, noise = NoiseNegatives().split(ones, torch.Generator().manual_seed(1))
    _, again = NoiseNegatives().split(ones, torch.Generator().manual_seed(1))
    assert torch.equal(noise, again) and 0 <= noise.min() and noise.max() <= 1
    inliers, held = HeldOutClasses([1, 3]).split(ones)
    assert inliers.labels.tolist() == [0, 1, 0, 1] and inliers.classes == ("a", "c")
    assert len(held) == 4
    with pytest.raises(ValueError, match="the negative set is empty"):
        HeldOutClasses([2]).split(ones.subset(ones.labels != 2))
    with pytest.raises(ValueError, match=r"held-out class \(1, 3\): the split has no sample"):
        HeldOutClasses([1, 3]).split(ones.subset(ones.labels % 2 == 1))
    with pytest.raises(ValueError, match=r"not all in \[0, 4\)"):
        HeldOutClasses([7]).split(ones)
    with pytest.raises(ValueError, match="negative source must be one of .*got 'cifar'"):
        make_negative_source("cifar")


def test_negative_aware_training_lowers_confidence_on_negatives(small_data) -> None:
    data = small_data.subset(slice(0, 128))
    noise = NoiseNegatives().transform(data.images, torch.Generator().manual_seed(0))
    config = NegativeAwareConfig(epochs=2, weight=1.0, lr=0.05)
    confidence = {}
    for name, negatives in (("baseline", None), ("negative-aware", noise)):
        torch.manual_seed(0)
        model = mnist_net()
        train_classifier(model, data, negatives, config, context=RunContext("cpu", progress=False))
        report = negative_report(model, data, {"noise": noise}, device="cpu")
        assert set(report) == {"clean", "noise"} and 0 <= report["noise"]["AUROC"] <= 1
        model.eval()
        confidence[name] = max_softmax(model(noise)).mean().item()
    assert confidence["negative-aware"] < confidence["baseline"]
