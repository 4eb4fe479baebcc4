"""Triplets for negative triplet Siamese networks: distances, a seeded sampler, miners and the loss.

Parts that compose through constructor arguments, as in pytorch-metric-learning: a
**distance**, a **triplet source** (:class:`TripletBatches`, or a plain labelled batch whose
every valid triplet is a candidate), a **miner** (:data:`MINERS`), the **loss**
(:class:`TripletMarginLoss`, its variant choosing which distance learns) and the trainer's
**reducer**. A triplet batch is ``(images, labels, triplets)`` with ``(T, 3)`` indices into the
images, so the :class:`~supervised.training.Trainer` embeds them in one pass: no special loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

import torch
from torch.nn import functional as F

from negdl.checks import check_choice
from supervised.training import Batch, TensorBatches, iterate_batches


class Distance(ABC):
    """A distance between embeddings: larger means less alike."""

    @abstractmethod
    def pairwise(self, queries: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        """All distances ``(Q, D), (R, D) -> (Q, R)``."""

    def __repr__(self) -> str:
        return type(self).__name__ + "()"


class EuclideanDistance(Distance):
    """The L2 distance (``torch.cdist``, whose gradient at distance 0 is 0, not NaN)."""

    def pairwise(self, queries: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        return torch.cdist(queries, references)


class CosineDistance(Distance):
    """``1 - cosine similarity``; with it the triplet loss equals pytorch-metric-learning's
    ``TripletMarginLoss(distance=CosineSimilarity())``, since ``d_ap - d_an = s_an - s_ap``."""

    def pairwise(self, queries: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        return 1.0 - F.normalize(queries, dim=-1) @ F.normalize(references, dim=-1).T


def all_triplets(labels: torch.Tensor) -> torch.Tensor:
    """Every valid triplet of a labelled batch as ``(T, 3)`` indices (anchor, positive, negative):
    positive of the anchor's class but not the anchor itself, negative of another class."""
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return torch.nonzero(positive[:, :, None] & ~same[:, None, :])


def triplet_distances(
    embeddings: torch.Tensor, triplets: torch.Tensor, distance: Distance
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor-positive and anchor-negative distances ``(T,), (T,)`` of index triplets.

    Read from the batch's distance matrix, so a batch with a million in-batch triplets costs
    one ``N x N`` matrix, not a million embedding copies.
    """
    if triplets.ndim != 2 or triplets.shape[1] != 3:
        raise ValueError(f"triplets must be (T, 3) indices, got shape {tuple(triplets.shape)}")
    matrix = distance.pairwise(embeddings, embeddings)
    anchors, positives, negatives = triplets.unbind(1)
    return matrix[anchors, positives], matrix[anchors, negatives]


class TripletMiner(ABC):
    """Keeps the candidate triplets that a rule finds useful, judged on their distances
    (Euclidean by default) and ``margin`` (>= 0, usually the loss's)."""

    def __init__(self, margin: float = 1.0, distance: Distance | None = None) -> None:
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.margin = float(margin)
        self.distance = distance if distance is not None else EuclideanDistance()
        #: Triplets kept by the last call (pytorch-metric-learning's ``num_triplets``).
        self.num_triplets = 0

    @abstractmethod
    def keep(self, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        """Boolean mask ``(T,)`` of the triplets to keep."""

    @torch.no_grad()
    def __call__(
        self, embeddings: torch.Tensor, labels: torch.Tensor, triplets: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The kept triplets ``(K, 3)`` among ``triplets`` (every valid triplet of the batch when None)."""
        candidates = all_triplets(labels) if triplets is None else triplets
        positive, negative = triplet_distances(
            embeddings.detach().float(), candidates, self.distance
        )
        kept = candidates[self.keep(positive, negative)]
        self.num_triplets = len(kept)
        return kept

    def __repr__(self) -> str:
        return f"{type(self).__name__}(margin={self.margin}, distance={self.distance})"


class AllTriplets(TripletMiner):
    """Keep every candidate."""

    def keep(self, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(positive, dtype=torch.bool)


class HardTriplets(TripletMiner):
    """Keep triplets whose negative is at most as far as the positive: ``d_an <= d_ap``."""

    def keep(self, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        return negative <= positive


class SemiHardTriplets(TripletMiner):
    """Keep triplets whose negative is farther than the positive but inside the margin:
    ``d_ap < d_an <= d_ap + margin`` (FaceNet's semi-hard negatives)."""

    def keep(self, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        return (negative > positive) & (negative <= positive + self.margin)


class MarginTriplets(TripletMiner):
    """Keep every triplet that violates the margin: ``d_an < d_ap + margin`` (hard and
    semi-hard together; the only ones with a non-zero loss)."""

    def keep(self, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        return negative < positive + self.margin


#: Miners by name.
MINERS: dict[str, type[TripletMiner]] = {
    "all": AllTriplets,
    "hard": HardTriplets,
    "semi-hard": SemiHardTriplets,
    "margin": MarginTriplets,
}


def make_miner(name: str, margin: float = 1.0, distance: Distance | None = None) -> TripletMiner:
    """A miner by name: one of :data:`MINERS`."""
    return MINERS[check_choice("miner", name, tuple(MINERS))](margin, distance)


#: Which distance learns in each variant: TSN both, TSN-N only the negative (the positive
#: distance is detached), TSN-P only the positive (the negative distance is detached).
TRIPLET_VARIANTS = {"TSN": "both", "TSN-N": "negative", "TSN-P": "positive"}


class TripletMarginLoss:
    """Per triplet ``max(0, d_ap - d_an + margin)``, i.e. ``margin_ranking_loss(d_an, d_ap, 1)``,
    the trainer's reducer reducing them (no triplets reduce to 0).

    :param variant: one of :data:`TRIPLET_VARIANTS`.
    :param distance: the distance between embeddings; Euclidean by default.
    :param miner: keeps the useful candidate triplets; every candidate when None.
    """

    def __init__(
        self,
        margin: float = 1.0,
        variant: str = "TSN",
        distance: Distance | None = None,
        miner: TripletMiner | None = None,
    ) -> None:
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.margin = float(margin)
        self.variant = check_choice("variant", variant, tuple(TRIPLET_VARIANTS))
        self.distance = distance if distance is not None else EuclideanDistance()
        self.miner = miner

    def ranking_losses(self, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        """Per-triplet losses from the two distances, detaching the side that must not learn."""
        learns = TRIPLET_VARIANTS[self.variant]
        if learns == "negative":
            positive = positive.detach()
        elif learns == "positive":
            negative = negative.detach()
        target = torch.ones_like(positive)
        return F.margin_ranking_loss(
            negative, positive, target, margin=self.margin, reduction="none"
        )

    def __call__(
        self, embeddings: torch.Tensor, labels: torch.Tensor, triplets: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-triplet losses ``(T,)`` of ``(N, D)`` embeddings with ``(N,)`` labels, for the
        ``(T, 3)`` index triplets (every valid one when None) that the miner, if any, keeps."""
        if embeddings.ndim != 2 or len(embeddings) != len(labels):
            raise ValueError(
                f"need embeddings (N, D) and N labels, got {tuple(embeddings.shape)} and {tuple(labels.shape)}"
            )
        if self.miner is not None:
            triplets = self.miner(embeddings, labels, triplets)
        elif triplets is None:
            triplets = all_triplets(labels)
        positive, negative = triplet_distances(embeddings.float(), triplets, self.distance)
        return self.ranking_losses(positive, negative)

    def __repr__(self) -> str:
        return (
            f"TripletMarginLoss(margin={self.margin}, variant={self.variant!r}, "
            f"distance={self.distance}, miner={self.miner})"
        )


class TripletBatches(TensorBatches):
    """Seeded (anchor, positive, negative) triplets: every image is an anchor once per epoch,
    with a positive drawn uniformly from the other images of its class and a negative drawn
    uniformly from the images of the other classes (at least two classes of two samples).

    Yields ``(images, labels, triplets)``: the batch's anchors, positives and negatives
    concatenated ``(3B, ...)``, their labels, and the ``(B, 3)`` indices of each triplet.
    """

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 64, shuffle: bool = True
    ) -> None:
        if len(images) != len(labels) or labels.ndim != 1:
            raise ValueError(
                f"need N images and N labels, got {tuple(images.shape)} and {tuple(labels.shape)}"
            )
        super().__init__(images, labels, batch_size=batch_size, shuffle=shuffle)
        classes, counts = torch.unique(labels, return_counts=True)
        if len(classes) < 2 or counts.min() < 2:
            raise ValueError(
                "triplets need at least two classes with at least two samples each, got class "
                f"counts {dict(zip(classes.tolist(), counts.tolist(), strict=True))}"
            )
        # Index tables on the CPU, where the triplets are drawn: samples sorted by class, and
        # per sample its class's first sorted position, class size and its own sorted position.
        cpu_labels = labels.cpu()
        self._by_class = torch.argsort(cpu_labels, stable=True)
        class_index = torch.searchsorted(classes.cpu(), cpu_labels)
        self._start = (torch.cumsum(counts, 0) - counts).cpu()[class_index]
        self._count = counts.cpu()[class_index]
        self._rank = torch.empty_like(self._by_class)
        self._rank[self._by_class] = torch.arange(len(labels))

    @property
    def samples(self) -> int:
        return 3 * self.count

    def sample(
        self, anchors: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``(B, 3)`` dataset indices on the CPU: the given anchors, a positive and a negative
        for each, drawn from the CPU ``generator`` so they are the same on every device."""
        anchors = anchors.cpu()
        start, count = self._start[anchors], self._count[anchors]
        # Positive: one of the count - 1 other places of the class; skip the anchor's own place.
        offset = (torch.rand(len(anchors), generator=generator) * (count - 1)).long()
        offset += offset >= self._rank[anchors] - start
        positive = self._by_class[start + offset]
        # Negative: one of the N - count places outside the class's block of sorted positions.
        place = (torch.rand(len(anchors), generator=generator) * (self.count - count)).long()
        place += count * (place >= start)
        negative = self._by_class[place]
        return torch.stack([anchors, positive, negative], 1)

    def batches(self, generator: torch.Generator | None = None) -> Iterator[Batch]:
        images, labels = self.tensors
        for anchors in iterate_batches(self.count, self.batch_size, self.shuffle, generator):
            # Anchors first, then positives, then negatives: triplet i is (i, B + i, 2B + i).
            index = self.sample(anchors, generator).T.reshape(-1).to(labels.device)
            count = len(anchors)
            triplets = torch.arange(3 * count, device=labels.device).view(3, count).T
            yield images[index], labels[index], triplets
