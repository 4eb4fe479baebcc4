"""Triplets for negative triplet Siamese networks: distances, a seeded sampler, miners and the loss.

Small parts that compose through constructor arguments (pytorch-metric-learning's layout):

- a **distance** (:class:`EuclideanDistance`, :class:`CosineDistance`) between embeddings;
- a **triplet source**: :class:`TripletBatches` samples (anchor, positive, negative) triplets,
  or a plain labelled batch lets the loss form every valid triplet inside it;
- a **miner** (:data:`MINERS`: all, hard, semi-hard, margin) keeps the candidate triplets it
  finds useful from their distances;
- the **loss**, :class:`TripletMarginLoss`: the triplet margin objective written as a margin
  ranking loss on the two distances, with the variant choosing which distance learns
  (:data:`TRIPLET_VARIANTS`: TSN both, TSN-N only the negative one, TSN-P only the positive);
- the **reducer** (a :class:`~supervised.training.LossReducer`) turns the per-triplet losses into
  the back-propagated scalar.

A triplet batch is ``(images, labels, triplets)``: the distinct images of the batch, their
labels, and ``(T, 3)`` indices into them (anchor, positive, negative). The
:class:`~supervised.training.Trainer` embeds ``images`` in one pass and calls the loss with the
embeddings and the rest of the batch, so no special training loop is needed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

import torch
from torch.nn import functional as F

from negdl.checks import check_int
from supervised.training import Batch, BatchSource, iterate_batches, prepare_inputs


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
    matrix = distance.pairwise(embeddings, embeddings)
    anchors, positives, negatives = triplets.unbind(1)
    return matrix[anchors, positives], matrix[anchors, negatives]


def _check_triplets(triplets: torch.Tensor) -> None:
    if triplets.ndim != 2 or triplets.shape[1] != 3:
        raise ValueError(f"triplets must be (T, 3) indices, got shape {tuple(triplets.shape)}")


class TripletMiner(ABC):
    """Keeps the candidate triplets that a rule finds useful, judged on their distances.

    :param margin: the margin of the rule (the loss's margin, usually); must be >= 0.
    :param distance: how to measure the anchor-positive and anchor-negative distances.
    """

    def __init__(self, margin: float = 1.0, distance: Distance | None = None) -> None:
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.margin = float(margin)
        self.distance = distance if distance is not None else EuclideanDistance()
        #: Triplets kept by the last call (pytorch-metric-learning's ``num_triplets``).
        self.num_triplets = 0

    @abstractmethod
    def keep(
        self, positive_distance: torch.Tensor, negative_distance: torch.Tensor
    ) -> torch.Tensor:
        """Boolean mask ``(T,)`` of the triplets to keep."""

    @torch.no_grad()
    def __call__(
        self, embeddings: torch.Tensor, labels: torch.Tensor, triplets: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The kept triplets ``(K, 3)`` among ``triplets`` (every valid triplet of the batch when None)."""
        candidates = all_triplets(labels) if triplets is None else triplets
        _check_triplets(candidates)
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

    def keep(
        self, positive_distance: torch.Tensor, negative_distance: torch.Tensor
    ) -> torch.Tensor:
        return torch.ones_like(positive_distance, dtype=torch.bool)


class HardTriplets(TripletMiner):
    """Keep triplets whose negative is at most as far as the positive: ``d_an <= d_ap``."""

    def keep(
        self, positive_distance: torch.Tensor, negative_distance: torch.Tensor
    ) -> torch.Tensor:
        return negative_distance <= positive_distance


class SemiHardTriplets(TripletMiner):
    """Keep triplets whose negative is farther than the positive but inside the margin:
    ``d_ap < d_an <= d_ap + margin`` (FaceNet's semi-hard negatives)."""

    def keep(
        self, positive_distance: torch.Tensor, negative_distance: torch.Tensor
    ) -> torch.Tensor:
        return (negative_distance > positive_distance) & (
            negative_distance <= positive_distance + self.margin
        )


class MarginTriplets(TripletMiner):
    """Keep every triplet that violates the margin: ``d_an < d_ap + margin`` (hard and
    semi-hard together; the only ones with a non-zero loss)."""

    def keep(
        self, positive_distance: torch.Tensor, negative_distance: torch.Tensor
    ) -> torch.Tensor:
        return negative_distance < positive_distance + self.margin


#: Miners by name.
MINERS: dict[str, type[TripletMiner]] = {
    "all": AllTriplets,
    "hard": HardTriplets,
    "semi-hard": SemiHardTriplets,
    "margin": MarginTriplets,
}


def make_miner(name: str, margin: float = 1.0, distance: Distance | None = None) -> TripletMiner:
    """A miner by name: one of :data:`MINERS`."""
    if name not in MINERS:
        raise ValueError(f"unknown miner {name!r}; choose one of {list(MINERS)}")
    return MINERS[name](margin, distance)


#: Which distance learns in each variant: TSN both, TSN-N only the negative (the positive
#: distance is detached), TSN-P only the positive (the negative distance is detached).
TRIPLET_VARIANTS = {"TSN": "both", "TSN-N": "negative", "TSN-P": "positive"}


class TripletMarginLoss:
    """The triplet margin objective as a margin ranking loss on the two distances.

    Per triplet ``max(0, d_ap - d_an + margin)``, i.e. ``margin_ranking_loss(d_an, d_ap, 1)``:
    the negative distance should exceed the positive one by the margin. One loss per triplet;
    the trainer's reducer reduces them (a batch without triplets gives no losses, which
    reduce to 0).

    :param margin: required gap between the two distances, >= 0.
    :param variant: ``"TSN"`` (both distances learn), ``"TSN-N"`` (the positive distance is
        detached: only the negative side is pushed) or ``"TSN-P"`` (only the positive side).
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
        if variant not in TRIPLET_VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose one of {list(TRIPLET_VARIANTS)}")
        self.margin, self.variant = float(margin), variant
        self.distance = distance if distance is not None else EuclideanDistance()
        self.miner = miner

    def ranking_losses(
        self, positive_distance: torch.Tensor, negative_distance: torch.Tensor
    ) -> torch.Tensor:
        """Per-triplet losses from the two distances, detaching the side that must not learn."""
        learns = TRIPLET_VARIANTS[self.variant]
        if learns == "negative":
            positive_distance = positive_distance.detach()
        elif learns == "positive":
            negative_distance = negative_distance.detach()
        target = torch.ones_like(positive_distance)
        return F.margin_ranking_loss(
            negative_distance, positive_distance, target, margin=self.margin, reduction="none"
        )

    def __call__(
        self, embeddings: torch.Tensor, labels: torch.Tensor, triplets: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-triplet losses ``(T,)`` of a batch.

        :param embeddings: ``(N, D)`` embeddings of the batch's images.
        :param labels: ``(N,)`` their classes.
        :param triplets: ``(T, 3)`` index triplets into the batch (from :class:`TripletBatches`);
            every valid triplet of the batch when None. The miner, if any, filters them.
        """
        if embeddings.ndim != 2 or len(embeddings) != len(labels):
            raise ValueError(
                f"need embeddings (N, D) and N labels, got {tuple(embeddings.shape)} and {tuple(labels.shape)}"
            )
        if self.miner is not None:
            triplets = self.miner(embeddings, labels, triplets)
        elif triplets is None:
            triplets = all_triplets(labels)
        _check_triplets(triplets)
        positive, negative = triplet_distances(embeddings.float(), triplets, self.distance)
        return self.ranking_losses(positive, negative)

    def __repr__(self) -> str:
        return (
            f"TripletMarginLoss(margin={self.margin}, variant={self.variant!r}, "
            f"distance={self.distance}, miner={self.miner})"
        )


class TripletBatches(BatchSource):
    """Seeded (anchor, positive, negative) triplets: every image is an anchor once per epoch,
    with a positive drawn uniformly from the other images of its class and a negative drawn
    uniformly from the images of the other classes.

    Yields ``(images, labels, triplets)``: the batch's anchors, positives and negatives
    concatenated ``(3B, ...)``, their labels, and the ``(B, 3)`` indices of each triplet.

    :param images: ``(N, ...)`` samples.
    :param labels: ``(N,)`` classes; every class needs two samples and there must be two classes.
    :param batch_size: triplets per batch.
    :param shuffle: a fresh anchor order every epoch (positives and negatives are drawn anew
        each epoch either way).
    """

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 64, shuffle: bool = True
    ) -> None:
        if len(images) != len(labels) or labels.ndim != 1:
            raise ValueError(
                f"need N images and N labels, got {tuple(images.shape)} and {tuple(labels.shape)}"
            )
        check_int("batch_size", batch_size, 1)
        classes, counts = torch.unique(labels, return_counts=True)
        if len(classes) < 2 or counts.min() < 2:
            raise ValueError(
                "triplets need at least two classes with at least two samples each, got class "
                f"counts {dict(zip(classes.tolist(), counts.tolist(), strict=True))}"
            )
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle = batch_size, shuffle
        # Index tables on the CPU, where the triplets are drawn: samples sorted by class, and
        # per sample its class's first sorted position, class size and its own sorted position.
        cpu_labels = labels.cpu()
        self._by_class = torch.argsort(cpu_labels, stable=True)
        class_index = torch.searchsorted(classes.cpu(), cpu_labels)
        self._start = (torch.cumsum(counts, 0) - counts).cpu()[class_index]
        self._count = counts.cpu()[class_index]
        self._rank = torch.empty_like(self._by_class)
        self._rank[self._by_class] = torch.arange(len(labels))

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    @property
    def samples(self) -> int:
        return 3 * len(self.labels)

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
        place = (torch.rand(len(anchors), generator=generator) * (len(self.labels) - count)).long()
        place += count * (place >= start)
        negative = self._by_class[place]
        return torch.stack([anchors, positive, negative], 1)

    def batches(self, generator: torch.Generator | None = None) -> Iterator[Batch]:
        device = self.labels.device
        for anchors in iterate_batches(len(self.labels), self.batch_size, self.shuffle, generator):
            # Anchors first, then positives, then negatives: triplet i is (i, B + i, 2B + i).
            index = self.sample(anchors, generator).T.reshape(-1).to(device)
            count = len(anchors)
            triplets = torch.arange(3 * count, device=device).view(3, count).T
            yield self.images[index], self.labels[index], triplets

    def to(self, device: torch.device, channels_last: bool = True) -> TripletBatches:
        return TripletBatches(
            prepare_inputs(self.images, device, channels_last),
            self.labels.to(device),
            self.batch_size,
            self.shuffle,
        )
