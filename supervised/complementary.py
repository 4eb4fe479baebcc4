"""Negative output learning: complementary labels, the loss ``-log(1 - p)``, and noisy-label training.

Negative learning (NL) tells the network a class the input does *not* belong to, a
complementary label drawn uniformly among the classes other than the given one, and pushes that
class's probability down with ``-log(1 - p_ybar)``. With noisy labels a complementary label is
still right with probability close to one, which is why NL resists label noise
(Kim et al., "NLNL: Negative Learning for Noisy Labels", ICCV 2019,
https://arxiv.org/abs/1908.07387).

The noisy-label methods (:data:`NOISE_METHODS`):

- ``"CE"``: ordinary cross-entropy on the given (noisy) labels;
- ``"NL"``: negative learning alone, fresh complementary labels every batch;
- ``"NL+SelNL"``: NL, then drop the samples whose mean probability for their given label
  (averaged over the last NL epochs) is below a threshold, ``1 / classes`` by default, and train
  positively (cross-entropy) on the rest. It continues the NL run, which is trained once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from negdl.checks import check_int
from supervised.data.common import LabelledImages
from supervised.evaluation import batched_forward
from supervised.models import NegatableClassifier
from supervised.runtime import derive_seed, make_generator
from supervised.training import (
    Batch,
    BatchSource,
    LossFn,
    Trainer,
    iterate_batches,
    per_sample_cross_entropy,
    prepare_inputs,
)

NOISE_METHODS = ("CE", "NL", "NL+SelNL")


def symmetric_label_noise(
    labels: torch.Tensor, rate: float, num_classes: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A copy of ``labels`` with exactly ``round(rate * N)`` of them, chosen at random, replaced
    by a class drawn uniformly among the *other* classes (symmetric noise, the true class
    excluded).

    :param labels: ``(N,)`` clean labels in ``[0, num_classes)``.
    :param rate: share of labels to corrupt, in ``[0, 1)``.
    :param num_classes: number of classes (at least 2).
    :param generator: CPU generator of the draws (reproducible when seeded).
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"noise rate must be in [0, 1), got {rate}")
    _check_labels(labels, num_classes)
    noisy = labels.clone()
    flipped = torch.randperm(len(labels), generator=generator)[: round(rate * len(labels))]
    flipped = flipped.to(labels.device)
    noisy[flipped] = complementary_labels(labels[flipped], num_classes, generator)
    return noisy


def complementary_labels(
    labels: torch.Tensor,
    num_classes: int,
    generator: torch.Generator | None = None,
    count: int = 1,
) -> torch.Tensor:
    """Classes the samples do not belong to, drawn uniformly among the classes other than
    ``labels`` (never equal to them); ``count`` distinct ones per sample.

    :param labels: ``(N,)`` labels in ``[0, num_classes)``.
    :param num_classes: number of classes.
    :param generator: CPU generator of the draws.
    :param count: complementary labels per sample, in ``[1, num_classes - 1]``.
    :returns: ``(N,)`` for ``count == 1``, else ``(N, count)``, on the labels' device.
    """
    _check_labels(labels, num_classes)
    if not 1 <= count <= num_classes - 1:
        raise ValueError(
            f"count must be in [1, {num_classes - 1}] (the wrong classes), got {count}"
        )
    keys = torch.rand(len(labels), num_classes, generator=generator).to(labels.device)
    keys.scatter_(1, labels[:, None], 2.0)  # the given class sorts last, never drawn
    drawn = keys.argsort(1)[:, :count]
    return drawn[:, 0] if count == 1 else drawn


def _check_labels(labels: torch.Tensor, num_classes: int) -> None:
    if num_classes < 2:
        raise ValueError(f"need at least 2 classes, got {num_classes}")
    if labels.ndim != 1 or (
        len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < num_classes
    ):
        raise ValueError(f"labels must be (N,) classes in [0, {num_classes}), got {labels}")


def negative_learning_loss(logits: torch.Tensor, complementary: torch.Tensor) -> torch.Tensor:
    """Per-sample ``-log(1 - p_ybar)`` summed over the complementary labels ``ybar``.

    Computed as ``logsumexp(logits without ybar) - logsumexp(logits)``, which stays finite when
    ``p_ybar`` is close to 1.

    :param logits: ``(N, C)`` class scores.
    :param complementary: ``(N,)`` or ``(N, K)`` classes each sample does not belong to.
    """
    if logits.ndim != 2 or len(logits) != len(complementary) or complementary.ndim not in (1, 2):
        raise ValueError(
            f"need logits (N, C) and complementary labels (N,) or (N, K), got "
            f"{tuple(logits.shape)} and {tuple(complementary.shape)}"
        )
    index = complementary[:, None] if complementary.ndim == 1 else complementary  # (N, K)
    logits = logits.float()
    excluded = logits[:, None, :].expand(-1, index.shape[1], -1)  # (N, K, C)
    excluded = excluded.scatter(2, index[:, :, None], float("-inf"))
    log_rest = torch.logsumexp(excluded, 2) - torch.logsumexp(logits, 1, keepdim=True)
    return -log_rest.sum(1)


class ComplementaryBatches(BatchSource):
    """Batches ``(images, complementary labels)`` with the complementary labels drawn afresh for
    every batch from the given labels (seeded by the epoch's generator).

    :param images: ``(N, ...)`` samples.
    :param labels: ``(N,)`` given labels (possibly noisy).
    :param num_classes: number of classes.
    :param batch_size: samples per batch.
    :param count: complementary labels per sample.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        num_classes: int,
        batch_size: int = 64,
        count: int = 1,
    ) -> None:
        if len(images) != len(labels) or len(labels) == 0:
            raise ValueError(f"need N > 0 images and N labels, got {len(images)} and {len(labels)}")
        check_int("batch_size", batch_size, 1)
        _check_labels(labels, num_classes)
        self.images, self.labels = images, labels
        self.num_classes, self.batch_size, self.count = num_classes, batch_size, count

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    @property
    def samples(self) -> int:
        return len(self.labels)

    def batches(self, generator: torch.Generator | None = None) -> Iterator[Batch]:
        for index in iterate_batches(len(self.labels), self.batch_size, True, generator):
            index = index.to(self.labels.device)
            labels = self.labels[index]
            yield (
                self.images[index],
                complementary_labels(labels, self.num_classes, generator, self.count),
            )

    def to(self, device: torch.device, channels_last: bool = True) -> ComplementaryBatches:
        return ComplementaryBatches(
            prepare_inputs(self.images, device, channels_last),
            self.labels.to(device),
            self.num_classes,
            self.batch_size,
            self.count,
        )


@torch.no_grad()
def label_probability(
    model: nn.Module, data: LabelledImages, device: torch.device | str | None = None
) -> torch.Tensor:
    """Each sample's softmax probability ``(N,)`` for its (given) label, in eval mode."""
    was_training = model.training
    model.eval()
    try:
        logits = batched_forward(model, data.images, device=device)
    finally:
        model.train(was_training)
    return logits.softmax(1).gather(1, data.labels.to(logits.device)[:, None])[:, 0]


@dataclass(frozen=True)
class NoisyLabelConfig:
    """Hyperparameters of the noisy-label methods (SGD with momentum throughout).

    :param lr: learning rate of cross-entropy training (``"CE"`` and the positive phase).
    :param nl_lr: learning rate of negative learning (its gradients are smaller).
    :param momentum: SGD momentum.
    :param batch_size: samples per step.
    :param epochs: epochs of ``"CE"``.
    :param nl_epochs: epochs of negative learning.
    :param selected_epochs: epochs of positive training on the selected samples.
    :param confidence_epochs: the selection averages each sample's given-label probability
        over the end of this many last NL epochs.
    :param threshold: keep samples whose mean probability reaches it; ``1 / classes`` if None.
    :param complementary: complementary labels per sample and step (NLNL uses 1; more give NL
        more signal per step, each label as likely to be right).
    """

    lr: float = 0.01
    nl_lr: float = 0.1
    momentum: float = 0.5
    batch_size: int = 64
    epochs: int = 10
    nl_epochs: int = 10
    selected_epochs: int = 5
    confidence_epochs: int = 3
    threshold: float | None = None
    complementary: int = 1

    def __post_init__(self) -> None:
        if min(self.lr, self.nl_lr) <= 0 or not 0 <= self.momentum < 1 or self.batch_size <= 0:
            raise ValueError(f"need lr, nl_lr > 0, 0 <= momentum < 1, batch_size > 0, got {self}")
        if min(self.epochs, self.nl_epochs, self.selected_epochs) < 0:
            raise ValueError(f"epochs must be >= 0, got {self}")
        if self.confidence_epochs < 1:
            raise ValueError(f"confidence_epochs must be >= 1, got {self.confidence_epochs}")
        if self.complementary < 1:
            raise ValueError(f"complementary must be >= 1, got {self.complementary}")
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")


@dataclass
class NoisyTrained:
    """A model trained by one noisy-label method; ``selected`` marks the samples kept by the
    selection (None for methods without one)."""

    model: NegatableClassifier
    losses: list[list[float]]
    global_step: int
    selected: torch.Tensor | None = None


def train_noisy(
    methods: Sequence[str],
    model_factory: Callable[[], NegatableClassifier],
    data: LabelledImages,
    config: NoisyLabelConfig = NoisyLabelConfig(),
    seed: int = 0,
    device: torch.device | str | None = None,
    writer_for: Callable[[str], SummaryWriter | None] | None = None,
    progress: bool = True,
) -> dict[str, NoisyTrained]:
    """Train each method on ``data`` (whose labels are the given, possibly noisy, ones) from the
    same seeded initialisation; ``"NL+SelNL"`` continues the ``"NL"`` run.

    :param methods: names from :data:`NOISE_METHODS`.
    :param model_factory: builds a fresh classifier.
    :param data: training images with their given labels.
    :param config: hyperparameters.
    :param seed: seed of the initialisation, shuffling and complementary labels.
    :param device: where to train.
    :param writer_for: TensorBoard writer for a method name.
    :param progress: show progress bars.
    """
    unknown = [method for method in methods if method not in NOISE_METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(NOISE_METHODS)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init"))
        initial = model_factory()

    def trainer(
        model: nn.Module, lr: float, loss_fn: LossFn, step: int, writer: SummaryWriter | None
    ) -> Trainer:
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=config.momentum)
        return Trainer(
            model,
            optimizer,
            loss_fn=loss_fn,
            batch_size=config.batch_size,
            device=device,
            writer=writer,
            progress=progress,
            global_step=step,
        )

    results: dict[str, NoisyTrained] = {}
    for method in methods:
        writer = writer_for(method) if writer_for is not None else None
        if method == "CE":
            model = initial.clone()
            fit = trainer(model, config.lr, per_sample_cross_entropy, 0, writer)
            losses = fit.fit((data.images, data.labels), config.epochs, make_generator(seed, "CE"))
            results[method] = NoisyTrained(model, [losses], fit.global_step)
            continue
        if "NL" not in results:
            results["NL"] = _negative_learning(
                initial.clone(),
                data,
                config,
                seed,
                trainer,
                writer_for("NL") if writer_for else None,
            )
        if method == "NL+SelNL":
            results[method] = _selective_positive(
                results["NL"], data, config, seed, trainer, writer
            )
    return {method: results[method] for method in methods}


#: Builds the SGD trainer of one phase: (model, lr, loss_fn, global_step, writer) -> Trainer.
TrainerFactory = Callable[[nn.Module, float, LossFn, int, "SummaryWriter | None"], Trainer]


def _negative_learning(
    model: NegatableClassifier,
    data: LabelledImages,
    config: NoisyLabelConfig,
    seed: int,
    trainer: TrainerFactory,
    writer: SummaryWriter | None,
) -> NoisyTrained:
    """NL epochs; the mean given-label probability over the last epochs decides the selection."""
    fit = trainer(model, config.nl_lr, negative_learning_loss, 0, writer)
    source = ComplementaryBatches(
        data.images, data.labels, data.num_classes, config.batch_size, config.complementary
    )
    generator = make_generator(seed, "NL")
    losses: list[float] = []
    probabilities = []
    for epoch in range(config.nl_epochs):
        losses += fit.fit(source, 1, generator, description=f"NL epoch {epoch + 1}")
        if epoch >= config.nl_epochs - config.confidence_epochs:
            probabilities.append(label_probability(model, data, fit.device))
    if not probabilities:  # no NL epoch: judge the untrained model
        probabilities.append(label_probability(model, data, fit.device))
    threshold = config.threshold if config.threshold is not None else 1.0 / data.num_classes
    selected = torch.stack(probabilities).mean(0) >= threshold
    return NoisyTrained(model, [losses], fit.global_step, selected)


def _selective_positive(
    nl: NoisyTrained,
    data: LabelledImages,
    config: NoisyLabelConfig,
    seed: int,
    trainer: TrainerFactory,
    writer: SummaryWriter | None,
) -> NoisyTrained:
    """Cross-entropy on the samples the NL run selected, continuing from the NL model."""
    if not nl.selected.any():
        raise RuntimeError(
            "the selection kept no sample: every given-label probability is below the threshold; "
            "train NL longer or lower the threshold"
        )
    model = nl.model.clone()
    kept = data.subset(nl.selected.to(data.device))
    fit = trainer(model, config.lr, per_sample_cross_entropy, nl.global_step, writer)
    losses = fit.fit(
        (kept.images, kept.labels), config.selected_epochs, make_generator(seed, "SelNL")
    )
    return NoisyTrained(model, [*nl.losses, losses], fit.global_step, nl.selected)
