"""Negative-aware training: out-of-distribution "negative samples" pushed to the uniform output.

The ordinary loss on real data stays unchanged; a batch of negatives joins every step and their
softmax output is pulled to the uniform distribution (cross-entropy or KL to uniform, weight
``lambda`` 0.5 by default), as Outlier Exposure does (Hendrycks et al., ICLR 2019,
https://arxiv.org/abs/1812.04606).

Negatives come from a named, swappable :class:`NegativeSource` (:data:`NEGATIVE_SOURCES`), none
needing a download: training images occluded beyond recognition, inverted images ``1 - x``,
uniform noise, and held-out classes (train on some classes, the rest are negatives).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from negdl.checks import check_choice, check_int, check_number
from supervised.context import DEFAULT_CONTEXT, RunContext
from supervised.data.common import LabelledImages
from supervised.evaluation import accuracy, batched_forward
from supervised.occlusions import Occlusion, Rectangles, check_occlusion
from supervised.ood import max_softmax, ood_metrics
from supervised.runtime import check_seed, make_generator
from supervised.training import (
    Batch,
    BatchSource,
    LossFn,
    TensorBatches,
    Trainer,
    evaluating,
    per_sample_cross_entropy,
    prepare_inputs,
)


def uniform_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy to the uniform distribution, ``-mean_c log softmax(z)_c``."""
    return -logits.float().log_softmax(1).mean(1)


def kl_to_uniform(logits: torch.Tensor) -> torch.Tensor:
    """Per-sample ``KL(uniform || softmax(z))``: the cross-entropy to uniform minus ``log C``
    (the same gradient, 0 at the uniform output)."""
    return uniform_cross_entropy(logits) - math.log(logits.shape[1])


UNIFORM_TARGETS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "ce": uniform_cross_entropy,
    "kl": kl_to_uniform,
}


class OutlierExposureLoss:
    """The ordinary loss (``base``) on real samples plus ``weight`` (0.5 as in Outlier Exposure)
    times the negatives' distance to uniform (``target``: ``"ce"`` or ``"kl"``).

    Called with the logits of a batch whose first ``len(targets)`` rows are real samples and the
    rest negatives (as :class:`NegativeBatches` yields). Returns one loss per real sample, its
    own plus the batch's mean negative term, so the batch mean is exactly
    ``mean(loss_real) + weight * mean(uniform_term(negatives))`` and a per-sample reducer such
    as hard-example mining ranks the real samples.
    """

    def __init__(
        self, weight: float = 0.5, target: str = "ce", base: LossFn = per_sample_cross_entropy
    ) -> None:
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        self.weight, self.base = float(weight), base
        self.target = check_choice("target", target, tuple(UNIFORM_TARGETS))

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        count = len(targets)
        if not 0 < count < len(logits):
            raise ValueError(
                f"need logits of the real samples followed by at least one negative, got "
                f"{len(logits)} logits for {count} targets"
            )
        negative_term = UNIFORM_TARGETS[self.target](logits[count:]).mean()
        return self.base(logits[:count], targets) + self.weight * negative_term


class NegativeBatches(TensorBatches):
    """Shuffled real batches, each followed by a batch of negatives drawn (with replacement) from
    a pool: yields ``(images, targets)`` with ``images`` the real samples, then the negatives.

    :param negatives: ``(M, ...)`` pool of negative samples, at least one.
    :param batch_size: real samples per batch.
    :param negative_batch_size: negatives per batch (``batch_size`` when None).
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        negatives: torch.Tensor,
        batch_size: int = 64,
        negative_batch_size: int | None = None,
    ) -> None:
        if len(negatives) == 0:
            raise ValueError(
                "the negative set is empty; choose a negative source that yields samples"
            )
        if negatives.shape[1:] != images.shape[1:]:
            raise ValueError(
                f"negatives {tuple(negatives.shape[1:])} must have the shape of the samples {tuple(images.shape[1:])}"
            )
        super().__init__(images, targets, batch_size=batch_size)
        negative_batch_size = batch_size if negative_batch_size is None else negative_batch_size
        self.negative_batch_size = check_int("negative_batch_size", negative_batch_size, 1)
        self.negatives = negatives

    @property
    def samples(self) -> int:
        return self.count + len(self) * self.negative_batch_size

    def batches(self, generator: torch.Generator | None = None) -> Iterator[Batch]:
        for images, targets in super().batches(generator):
            drawn = torch.randint(
                len(self.negatives), (self.negative_batch_size,), generator=generator
            )
            yield torch.cat([images, self.negatives[drawn.to(images.device)]]), targets

    def to(self, device: torch.device, channels_last: bool = True) -> NegativeBatches:
        moved = super().to(device, channels_last)
        moved.negatives = prepare_inputs(self.negatives, device, channels_last)
        return moved


class NegativeSource(ABC):
    """Where negatives come from: splits a labelled set into the in-distribution samples and the
    negative images derived from it."""

    @abstractmethod
    def split(
        self, data: LabelledImages, generator: torch.Generator | None = None
    ) -> tuple[LabelledImages, torch.Tensor]:
        """``(in-distribution samples, negative images)`` of ``data``; an empty negative set is
        an error."""

    def __repr__(self) -> str:
        return type(self).__name__ + "()"


class TransformedNegatives(NegativeSource):
    """Every sample stays in-distribution; the negatives are a transformed copy of the images."""

    @abstractmethod
    def transform(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Negative images made from ``images``."""

    def split(
        self, data: LabelledImages, generator: torch.Generator | None = None
    ) -> tuple[LabelledImages, torch.Tensor]:
        if len(data) == 0:
            raise ValueError("the negative set is empty: the data has no samples to transform")
        return data, self.transform(data.images, generator)


def one_quarter_occlusions(size: int = 28) -> list[Occlusion]:
    """Four occlusions of a ``size`` x ``size`` image, each blanking three of its four quarters."""
    half = size // 2
    quarters = [
        (0, 0, half, half),
        (0, half, half, size - half),
        (half, 0, size - half, half),
        (half, half, size - half, size - half),
    ]
    return [Rectangles([box for box in quarters if box is not kept]) for kept in quarters]


class OccludedNegatives(TransformedNegatives):
    """Training images occluded beyond recognition: each image gets one of ``occlusions`` at
    random (by default three quarters blanked, one quarter left)."""

    def __init__(self, occlusions: Sequence[Occlusion] | None = None) -> None:
        if isinstance(occlusions, (str, Occlusion)) or not (
            occlusions is None or isinstance(occlusions, Sequence)
        ):
            raise TypeError(
                f"occlusions must be a sequence of Occlusion objects, got {occlusions!r}"
            )
        self.occlusions = list(occlusions) if occlusions is not None else one_quarter_occlusions()
        if not self.occlusions:
            raise ValueError("OccludedNegatives needs at least one occlusion")
        for index, occlusion in enumerate(self.occlusions):
            check_occlusion(f"occlusions[{index}]", occlusion)

    def transform(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        choice = torch.randint(len(self.occlusions), (len(images),), generator=generator)
        occluded = images.clone()
        for index, occlusion in enumerate(self.occlusions):
            chosen = (choice == index).to(images.device)
            if chosen.any():
                occluded[chosen] = occlusion(images[chosen])
        return occluded


class InvertedNegatives(TransformedNegatives):
    """Inverted images ``1 - x`` (pixels in ``[0, 1]``)."""

    def transform(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return 1.0 - images


class NoiseNegatives(TransformedNegatives):
    """Images of uniform noise in ``[0, 1]``, one per sample, seeded by the generator."""

    def transform(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return torch.rand(images.shape, generator=generator).to(images.device)


class HeldOutClasses(NegativeSource):
    """Samples of the held-out ``classes`` are the negatives; the rest is the in-distribution
    set, relabelled ``0 .. K-1`` in class order (0-4 keep their labels when 5-9 are held out)."""

    def __init__(self, classes: Sequence[int] = (5, 6, 7, 8, 9)) -> None:
        if not classes:
            raise ValueError("hold out at least one class")
        self.classes = tuple(sorted({int(c) for c in classes}))

    def split(
        self, data: LabelledImages, generator: torch.Generator | None = None
    ) -> tuple[LabelledImages, torch.Tensor]:
        held_out = torch.tensor(self.classes, device=data.labels.device)
        if held_out.max() >= data.num_classes or held_out.min() < 0:
            raise ValueError(
                f"held-out classes {self.classes} are not all in [0, {data.num_classes})"
            )
        negative = torch.isin(data.labels, held_out)
        if not negative.any():
            raise ValueError(
                f"the negative set is empty: no sample of the held-out classes {self.classes}"
            )
        if negative.all():
            raise ValueError(
                f"every sample is of a held-out class {self.classes}: the split has no sample of "
                "the other classes (a train or test subset too small to hold one?)"
            )
        kept = [c for c in range(data.num_classes) if c not in self.classes]
        relabel = torch.full((data.num_classes,), -1, dtype=torch.long, device=data.labels.device)
        relabel[kept] = torch.arange(len(kept), device=data.labels.device)
        inliers = data.subset(~negative)
        inliers = LabelledImages(
            inliers.images, relabel[inliers.labels], tuple(data.classes[c] for c in kept)
        )
        return inliers, data.images[negative]

    def __repr__(self) -> str:
        return f"HeldOutClasses({self.classes})"


#: Negative sources by name.
NEGATIVE_SOURCES: dict[str, Callable[[], NegativeSource]] = {
    "occluded": OccludedNegatives,
    "inverted": InvertedNegatives,
    "noise": NoiseNegatives,
    "held-out": HeldOutClasses,
}


def make_negative_source(name: str) -> NegativeSource:
    """A negative source by name: one of :data:`NEGATIVE_SOURCES`."""
    return NEGATIVE_SOURCES[check_choice("negative source", name, tuple(NEGATIVE_SOURCES))]()


@dataclass(frozen=True)
class NegativeAwareConfig:
    """Hyperparameters (the source's MNIST SGD settings by default).

    :param lr: SGD learning rate.
    :param momentum: SGD momentum.
    :param batch_size: real samples per step.
    :param negative_batch_size: negatives per step (``batch_size`` when None).
    :param epochs: passes over the real samples.
    :param weight: ``lambda``, the weight of the negative term.
    :param target: ``"ce"`` or ``"kl"`` to uniform.
    """

    lr: float = 0.01
    momentum: float = 0.5
    batch_size: int = 64
    negative_batch_size: int | None = None
    epochs: int = 10
    weight: float = 0.5
    target: str = "ce"

    def __post_init__(self) -> None:
        check_number("lr", self.lr, 0, low_open=True)
        check_number("momentum", self.momentum, 0, 1, high_open=True)
        check_int("batch_size", self.batch_size, 1)
        check_int("epochs", self.epochs, 0)
        OutlierExposureLoss(self.weight, self.target)  # validates weight and target


def train_classifier(
    model: nn.Module,
    inliers: LabelledImages,
    negatives: torch.Tensor | None,
    config: NegativeAwareConfig = NegativeAwareConfig(),
    seed: int = 0,
    context: RunContext = DEFAULT_CONTEXT,
    description: str = "train",
) -> list[float]:
    """Train ``model`` (one output per in-distribution class) in place: ordinary cross-entropy
    without ``negatives`` (the baseline), negative-aware with them; returns the epoch losses.
    ``seed`` seeds the shuffling and the negative draws."""
    check_seed("seed", seed)
    loss_fn: LossFn = per_sample_cross_entropy
    tensors = (inliers.images, inliers.labels)
    data: BatchSource | tuple[torch.Tensor, ...] = tensors
    if negatives is not None:
        loss_fn = OutlierExposureLoss(config.weight, config.target)
        data = NegativeBatches(*tensors, negatives, config.batch_size, config.negative_batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    trainer = Trainer(model, optimizer, loss_fn, batch_size=config.batch_size, context=context)
    return trainer.fit(
        data, config.epochs, make_generator(seed, "negative-aware"), description=description
    )


@torch.no_grad()
def negative_report(
    model: nn.Module,
    test: LabelledImages,
    negatives: dict[str, torch.Tensor],
    device: torch.device | str | None = None,
) -> dict[str, dict[str, float]]:
    """Clean test accuracy (%) and, per named negative test set, NCR_t, FPR95, AUROC and AUPR of
    the max-softmax confidence.

    :returns: ``{"clean": {"accuracy": ...}, <negative name>: {"NCR_0.4": ..., ...}}``.
    """
    with evaluating(model):
        logits = batched_forward(model, test.images, device=device)
        in_confidence = max_softmax(logits)
        report = {"clean": {"accuracy": accuracy(logits, test.labels)}}
        for name, images in negatives.items():
            negative_logits = batched_forward(model, images, device=device)
            report[name] = ood_metrics(in_confidence, max_softmax(negative_logits))
    return report


def negative_test_sets(
    test: LabelledImages, sources: dict[str, NegativeSource], seed: int = 0
) -> tuple[dict[str, LabelledImages], dict[str, torch.Tensor]]:
    """Held-out negatives of each kind from the test split, with the in-distribution test set
    each source leaves (held-out classes leave a smaller one).

    :returns: ``(in-distribution test set per source, negative images per source)``.
    """
    check_seed("seed", seed)
    inliers, negatives = {}, {}
    for name, source in sources.items():
        inliers[name], negatives[name] = source.split(
            test, make_generator(seed, "test-negatives", name)
        )
    return inliers, negatives
