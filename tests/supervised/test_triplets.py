"""Triplet distances, the margin ranking loss and its variants, miners, and the triplet sampler."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from supervised.context import RunContext
from supervised.embeddings import EmbeddingNet
from supervised.reducers import NonZeroMean
from supervised.training import MeanReducer, TensorBatches, Trainer
from supervised.triplets import (
    AllTriplets,
    CosineDistance,
    EuclideanDistance,
    HardTriplets,
    MarginTriplets,
    SemiHardTriplets,
    TripletBatches,
    TripletMarginLoss,
    all_triplets,
    make_miner,
)

# Three points: anchor at the origin, positive at distance 5, negative at distance 1.
ANCHOR, POSITIVE, NEGATIVE = [0.0, 0.0], [3.0, 4.0], [0.0, 1.0]
TRIPLET = torch.tensor([[0, 1, 2]])
LABELS = torch.tensor([0, 0, 1])


def three_points() -> torch.Tensor:
    return torch.tensor([ANCHOR, POSITIVE, NEGATIVE], requires_grad=True)


def test_ranking_loss_on_three_points() -> None:
    points = three_points()
    # max(0, d_ap - d_an + margin) = 5 - 1 + 1
    assert TripletMarginLoss(1.0)(points, LABELS, TRIPLET).tolist() == pytest.approx([5.0])
    assert TripletMarginLoss(0.5)(points, LABELS, TRIPLET).tolist() == pytest.approx([4.5])
    far = torch.tensor([ANCHOR, POSITIVE, [0.0, 7.0]])
    assert TripletMarginLoss(1.0)(far, LABELS, TRIPLET).tolist() == [0.0]  # 5 - 7 + 1 < 0
    # Cosine: d_ap = 1 - cos 90deg = 1, d_an = 1 - cos 45deg.
    cosine = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    expected = 1.0 - (1.0 - 1.0 / math.sqrt(2.0)) + 0.2
    loss = TripletMarginLoss(0.2, distance=CosineDistance())(cosine, LABELS, TRIPLET)
    assert loss.tolist() == pytest.approx([expected])


@pytest.mark.parametrize(
    ("variant", "anchor", "positive", "negative"),
    [
        # d(d_ap)/da = (a - p)/5 = (-0.6, -0.8); d(-d_an)/da = -(a - n)/1 = (0, 1).
        ("TSN", [-0.6, 0.2], [0.6, 0.8], [0.0, -1.0]),
        ("TSN-N", [0.0, 1.0], [0.0, 0.0], [0.0, -1.0]),  # positive side detached
        ("TSN-P", [-0.6, -0.8], [0.6, 0.8], [0.0, 0.0]),  # negative side detached
    ],
)
def test_variants_choose_which_side_gets_a_gradient(variant, anchor, positive, negative) -> None:
    points = three_points()
    TripletMarginLoss(1.0, variant)(points, LABELS, TRIPLET).sum().backward()
    assert points.grad.tolist() == [
        pytest.approx(anchor),
        pytest.approx(positive),
        pytest.approx(negative),
    ]


def test_loss_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="margin must be >= 0"):
        TripletMarginLoss(-0.1)
    with pytest.raises(ValueError, match="variant must be one of .*got 'TSN-X'"):
        TripletMarginLoss(1.0, "TSN-X")
    with pytest.raises(ValueError, match="margin must be >= 0"):
        SemiHardTriplets(-1.0)
    with pytest.raises(ValueError, match="miner must be one of .*got 'easy'"):
        make_miner("easy")
    with pytest.raises(ValueError, match=r"triplets must be \(T, 3\)"):
        TripletMarginLoss()(three_points(), LABELS, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="need embeddings"):
        TripletMarginLoss()(three_points(), torch.tensor([0, 1]))


def test_all_triplets_lists_every_valid_triplet() -> None:
    assert all_triplets(LABELS).tolist() == [[0, 1, 2], [1, 0, 2]]
    triplets = all_triplets(torch.tensor([0, 1, 0, 1]))
    assert len(triplets) == 8  # 4 anchors x 1 positive x 2 negatives
    assert all((a != p) and (a % 2 == p % 2) and (a % 2 != n % 2) for a, p, n in triplets.tolist())
    assert len(all_triplets(torch.tensor([0, 1, 2]))) == 0  # no positives


def test_miners_pick_the_right_triplets() -> None:
    # 1-D embeddings: anchor 0 at 0, positive 1 at distance 2; negatives at 1 (hard),
    # 2.5 (semi-hard for margin 1: 2 < 2.5 <= 3), 2 (hard: a tie counts as hard) and 5 (easy).
    embeddings = torch.tensor([[0.0], [2.0], [1.0], [2.5], [2.0], [5.0]])
    labels = torch.tensor([0, 0, 1, 1, 1, 1])
    candidates = torch.tensor([[0, 1, n] for n in (2, 3, 4, 5)])

    def negatives(miner) -> list[int]:
        return miner(embeddings, labels, candidates)[:, 2].tolist()

    assert negatives(AllTriplets(1.0)) == [2, 3, 4, 5]
    assert negatives(HardTriplets(1.0)) == [2, 4]
    assert negatives(SemiHardTriplets(1.0)) == [3]
    assert negatives(MarginTriplets(1.0)) == [2, 3, 4]
    miner = make_miner("margin", 1.0, EuclideanDistance())
    mined = miner(embeddings, labels)  # every in-batch triplet, then the margin violators
    assert miner.num_triplets == len(mined) > 0
    d = torch.cdist(embeddings, embeddings)
    assert all(d[a, n] < d[a, p] + 1.0 for a, p, n in mined.tolist())
    # The loss uses only the mined triplets: the easy negative 5 contributes nothing.
    loss = TripletMarginLoss(1.0, miner=SemiHardTriplets(1.0))(embeddings, labels, candidates)
    assert loss.tolist() == pytest.approx([2.0 - 2.5 + 1.0])


def test_no_mined_triplet_reduces_to_zero_with_zero_gradient() -> None:
    embeddings = torch.tensor([[0.0], [0.1], [9.0]], requires_grad=True)
    losses = TripletMarginLoss(1.0, miner=HardTriplets(1.0))(embeddings, LABELS)
    assert losses.shape == (0,)
    reduced = MeanReducer()(losses)
    reduced.backward()
    assert reduced.item() == 0.0 and embeddings.grad.abs().sum() == 0


def test_triplet_sampler_draws_valid_seeded_triplets() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 1])
    images = torch.arange(10.0).view(10, 1)
    source = TripletBatches(images, labels, batch_size=4)
    assert len(source) == 3 and source.samples == 30
    batches = list(source.batches(torch.Generator().manual_seed(0)))
    anchors = []
    for batch_images, batch_labels, triplets in batches:
        count = len(triplets)
        assert triplets.tolist() == [[i, count + i, 2 * count + i] for i in range(count)]
        a, p, n = (batch_images[triplets[:, c], 0].long() for c in range(3))
        assert torch.equal(labels[a], labels[p]) and (a != p).all()
        assert (labels[a] != labels[n]).all()
        assert torch.equal(batch_labels, labels[batch_images[:, 0].long()])
        anchors += a.tolist()
    assert sorted(anchors) == list(range(10))  # every sample is an anchor once per epoch
    again = list(source.batches(torch.Generator().manual_seed(0)))
    assert all(torch.equal(x[0], y[0]) for x, y in zip(batches, again, strict=True))


def test_triplet_sampler_covers_every_positive_and_negative() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1])
    source = TripletBatches(torch.zeros(5, 1), labels, batch_size=5, shuffle=False)
    anchors = torch.zeros(3000, dtype=torch.long)  # anchor 0, many draws
    drawn = source.sample(anchors, torch.Generator().manual_seed(0))
    assert set(drawn[:, 1].tolist()) == {1, 2} and set(drawn[:, 2].tolist()) == {3, 4}
    assert abs((drawn[:, 1] == 1).float().mean().item() - 0.5) < 0.05


def test_triplet_sampler_rejects_classes_without_a_positive() -> None:
    with pytest.raises(ValueError, match="at least two classes with at least two samples"):
        TripletBatches(torch.zeros(3, 1), torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match="at least two classes"):
        TripletBatches(torch.zeros(3, 1), torch.tensor([0, 0, 0]))


class TinyExtractor(nn.Module):
    """Flatten and one linear layer: fast enough to train in a unit test."""

    out_features = 32

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(28 * 28, self.out_features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.layer(images.flatten(1)))


@pytest.mark.parametrize("mined", [False, True])
def test_trainer_learns_an_embedding_from_triplets(small_data, mined: bool) -> None:
    torch.manual_seed(0)
    model = EmbeddingNet(TinyExtractor(), 8, hidden=())
    loss = TripletMarginLoss(1.0, miner=MarginTriplets(1.0) if mined else None)
    trainer = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.05),
        loss_fn=loss,
        context=RunContext("cpu", progress=False),
    )
    images, labels = small_data.images, small_data.labels
    source = (
        TensorBatches(images, labels, batch_size=64)
        if mined
        else TripletBatches(images, labels, 64)
    )
    losses = trainer.fit(source, 4, torch.Generator().manual_seed(0))
    assert losses[-1] < 0.5 * losses[0]
    assert trainer.global_step == 4 * len(source)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(SemiHardTriplets, "semihard"), (HardTriplets, "hard"), (MarginTriplets, "all")],
)
def test_pml_conventions_match_pytorch_metric_learning(ours, theirs) -> None:
    """The 'pml conventions' reference row uses these parts; with the optional ``pml`` extra
    installed, loss and gradients equal pytorch-metric-learning's own."""
    pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning import distances, losses, miners, reducers

    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(48, 8, generator=generator, requires_grad=True)
    labels = torch.randint(0, 4, (48,), generator=generator)
    similarity = distances.CosineSimilarity()
    mined = miners.TripletMarginMiner(margin=0.2, distance=similarity, type_of_triplets=theirs)(
        embeddings, labels
    )
    reference = losses.TripletMarginLoss(
        margin=0.2, distance=similarity, reducer=reducers.ThresholdReducer(low=0)
    )(embeddings, labels, mined)
    loss = TripletMarginLoss(0.2, distance=CosineDistance(), miner=ours(0.2, CosineDistance()))
    ours_value = NonZeroMean()(loss(embeddings, labels))
    (expected_gradient,) = torch.autograd.grad(reference, embeddings)
    (gradient,) = torch.autograd.grad(ours_value, embeddings)
    assert ours_value.item() == pytest.approx(reference.item(), rel=1e-6)
    assert torch.allclose(gradient, expected_gradient, atol=1e-7)
