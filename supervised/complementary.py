"""Negative output learning: complementary labels, the loss ``-log(1 - p)``, and noisy-label training.

Negative learning (NL) pushes down the probability of a complementary label, a class drawn
uniformly among those other than the given one, with ``-log(1 - p_ybar)``; with noisy labels it
is still right with probability close to one, which is why NL resists label noise (Kim et al.,
"NLNL: Negative Learning for Noisy Labels", ICCV 2019, https://arxiv.org/abs/1908.07387).

The noisy-label methods (:data:`NOISE_METHODS`, Kim et al., section 3) chain stages: ``"CE"``;
``"NL"`` on every sample; ``"SelNL"`` (NL, then NL only on ``p_y > 1 / c``); ``"NLNL"`` (NL,
SelNL, then cross-entropy only on ``p_y > gamma``: SelPL); this library's shortcut
``"NL+SelCE"`` (NL, then cross-entropy on ``p_y >= 1 / c`` or ``threshold``, selected once).
The confidence ``p_y`` is the given-label probability averaged over the last
``confidence_epochs`` epochs (:class:`ConfidenceHistory`); both selective stages reselect every
epoch, as the official code does (github.com/ydkim1293/NLNL-Negative-Learning-for-Noisy-Labels,
``main_NL.py``/``main_PL.py``). Differences from that code, kept deliberately: ``p_y`` is
measured in eval mode after each epoch (the code records the training-mode outputs of augmented
batches over 10 epochs); every stage starts a fresh SGD (the code carries one optimizer over, at
lr 0.02); SelPL uses ``lr``, not NL's; no inverse class-frequency weights (symmetric noise keeps
the classes balanced); selection uses the paper's strict ``>`` where the code keeps ``>=``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from negdl.checks import check_int, check_number
from supervised.context import RunContext
from supervised.data.common import LabelledImages
from supervised.evaluation import batched_forward
from supervised.models import NegatableClassifier
from supervised.runtime import check_seed, make_generator, seeded_build
from supervised.training import (
    Batch,
    BatchSource,
    TensorBatches,
    Trained,
    Trainer,
    TrainerOptions,
    evaluating,
    per_sample_cross_entropy,
    train_prefixes,
)

#: Each noisy-label method's stages, each continuing the model of the one before.
NOISE_SCHEDULES: dict[str, tuple[str, ...]] = {
    "CE": ("CE",),
    "NL": ("NL",),
    "SelNL": ("NL", "SelNL"),
    "NLNL": ("NL", "SelNL", "SelPL"),
    "NL+SelCE": ("NL", "SelCE"),
}
NOISE_METHODS = tuple(NOISE_SCHEDULES)


def symmetric_label_noise(
    labels: torch.Tensor, rate: float, num_classes: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A copy of ``labels`` with exactly ``round(rate * N)`` of them, chosen at random by the CPU
    ``generator``, replaced by a class drawn uniformly among the *other* classes (symmetric
    noise); ``rate`` in ``[0, 1)``."""
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
    """Classes the samples do not belong to, drawn by the CPU ``generator`` uniformly among the
    classes other than ``labels``: ``(N,)`` for ``count == 1``, else ``count`` distinct ones
    per sample ``(N, count)``, on the labels' device."""
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
    """Per-sample ``-log(1 - p_ybar)`` of ``(N, C)`` logits, summed over the complementary labels
    ``(N,)`` or ``(N, K)``; computed as ``logsumexp(logits without ybar) - logsumexp(logits)``,
    which stays finite when ``p_ybar`` is close to 1."""
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


class ComplementaryBatches(TensorBatches):
    """Shuffled batches ``(images, complementary labels)``, the complementary labels drawn afresh
    for every batch from the given labels by the epoch's generator.

    :param labels: ``(N,)`` given labels (possibly noisy).
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
        super().__init__(images, labels, batch_size=batch_size)
        _check_labels(labels, num_classes)
        self.num_classes, self.per_sample = num_classes, count

    def batches(self, generator: torch.Generator | None = None) -> Iterator[Batch]:
        for images, labels in super().batches(generator):
            yield images, complementary_labels(labels, self.num_classes, generator, self.per_sample)


@torch.no_grad()
def label_probability(
    model: nn.Module, data: LabelledImages, device: torch.device | str | None = None
) -> torch.Tensor:
    """Each sample's softmax probability ``(N,)`` for its (given) label, in eval mode."""
    with evaluating(model):
        logits = batched_forward(model, data.images, device=device)
    return logits.softmax(1).gather(1, data.labels.to(logits.device)[:, None])[:, 0]


def selnl_selection(confidence: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The samples selective negative learning trains on (a boolean mask): ``p_y > 1 / c`` for
    the ``(N,)`` given-label probabilities ``confidence``."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
    return _above(confidence, 1.0 / num_classes)


def selpl_selection(confidence: torch.Tensor, gamma: float = 0.5) -> torch.Tensor:
    """The samples selective positive learning trains on (a boolean mask): ``p_y > gamma``,
    ``gamma`` in ``(0, 1)`` (0.5 in NLNL)."""
    if not 0.0 < gamma < 1.0:
        raise ValueError(f"gamma must be in (0, 1), got {gamma}")
    return _above(confidence, gamma)


def _above(confidence: torch.Tensor, threshold: float) -> torch.Tensor:
    if not isinstance(confidence, torch.Tensor) or confidence.ndim != 1:
        shape = tuple(getattr(confidence, "shape", ()))
        raise ValueError(
            f"confidence must be an (N,) tensor, got {type(confidence).__name__} of shape {shape}"
        )
    if not (confidence.is_floating_point() and bool(((confidence >= 0) & (confidence <= 1)).all())):
        raise ValueError("confidence must hold probabilities in [0, 1] (a float tensor)")
    return confidence > threshold


class ConfidenceHistory:
    """Each sample's given-label probability averaged over the last ``window`` recordings (NLNL's
    code: 10 epochs): the confidence ``p_y`` NLNL selects by."""

    def __init__(self, window: int) -> None:
        self.window = check_int("window", window, 1)
        self.recorded: list[torch.Tensor] = []

    def record(self, probabilities: torch.Tensor) -> None:
        """Add one recording ``(N,)``, dropping the oldest beyond the window."""
        if self.recorded and probabilities.shape != self.recorded[0].shape:
            raise ValueError(
                f"every recording must have shape {tuple(self.recorded[0].shape)}, got "
                f"{tuple(probabilities.shape)}"
            )
        self.recorded = [*self.recorded, probabilities][-self.window :]

    def mean(self) -> torch.Tensor:
        if not self.recorded:
            raise RuntimeError("no probabilities recorded yet")
        return torch.stack(self.recorded).mean(0)


@dataclass(frozen=True)
class NoisyLabelConfig:
    """Hyperparameters of the noisy-label methods (SGD with momentum throughout).

    :param lr: learning rate of cross-entropy training (``"CE"``, SelPL and ``"NL+SelCE"``).
    :param nl_lr: learning rate of NL and SelNL (their gradients are smaller).
    :param momentum: SGD momentum.
    :param batch_size: samples per step.
    :param epochs: epochs of ``"CE"``.
    :param nl_epochs: epochs of negative learning on every sample.
    :param selnl_epochs: epochs of selective NL, after NL.
    :param selpl_epochs: epochs of selective positive learning, after SelNL.
    :param selected_epochs: epochs of cross-entropy of ``"NL+SelCE"``, after NL.
    :param confidence_epochs: the confidence averages each sample's given-label probability
        over the end of this many last epochs.
    :param gamma: SelPL keeps the samples with confidence above it (NLNL: 0.5).
    :param threshold: ``"NL+SelCE"`` keeps the samples whose confidence reaches it;
        ``1 / classes`` if None.
    :param complementary: complementary labels per sample and step (NLNL uses 1; more give NL
        more signal per step, each label as likely to be right).
    """

    lr: float = 0.01
    nl_lr: float = 0.1
    momentum: float = 0.5
    batch_size: int = 64
    epochs: int = 10
    nl_epochs: int = 10
    selnl_epochs: int = 5
    selpl_epochs: int = 5
    selected_epochs: int = 5
    confidence_epochs: int = 3
    gamma: float = 0.5
    threshold: float | None = None
    complementary: int = 1

    def __post_init__(self) -> None:
        for name in ("lr", "nl_lr"):
            check_number(name, getattr(self, name), 0, low_open=True)
        check_number("momentum", self.momentum, 0, 1, high_open=True)
        for name in ("batch_size", "confidence_epochs", "complementary"):
            check_int(name, getattr(self, name), 1)
        for name in ("epochs", "nl_epochs", "selnl_epochs", "selpl_epochs", "selected_epochs"):
            check_int(name, getattr(self, name), 0)
        for name in ("gamma", "threshold"):
            if getattr(self, name) is not None:
                check_number(name, getattr(self, name), 0, 1, low_open=True, high_open=True)


@dataclass
class NoisyTrained(Trained[NegatableClassifier]):
    """A model trained by one noisy-label method.

    ``selected`` marks the samples its last stage trained on in its last epoch (None for
    ``"CE"`` and ``"NL"``, which train on every sample); ``history`` holds the confidence the
    next stage selects by.
    """

    selected: torch.Tensor | None = None
    history: ConfidenceHistory | None = None


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
    same seeded initialisation. A stage's run is trained once and continued by the methods that
    build on it: ``"NLNL"`` also yields ``"SelNL"`` and ``"NL"``.

    Every stage starts a fresh SGD: NL and SelNL at ``nl_lr`` with complementary labels, the
    others cross-entropy at ``lr``. SelNL and SelPL select their samples again every epoch from
    the confidence so far and record it again after the epoch; ``"NL+SelCE"`` selects once.

    :param methods: names from :data:`NOISE_METHODS`.
    :param seed: seed of the initialisation, shuffling and complementary labels.
    :param writer_for: TensorBoard writer for a method name.
    """
    check_seed("seed", seed)
    unknown = [method for method in methods if method not in NOISE_METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(NOISE_METHODS)}")
    if not isinstance(config, NoisyLabelConfig):
        raise TypeError(f"config must be a NoisyLabelConfig, got {type(config).__name__}")
    initial = seeded_build(model_factory, seed, "init")
    method_of = {stages: method for method, stages in NOISE_SCHEDULES.items()}

    def train(_: str, stages: tuple, previous: NoisyTrained) -> NoisyTrained:
        stage, model = stages[-1], previous.model.clone()
        negative, reselect = stage in ("NL", "SelNL"), stage in ("SelNL", "SelPL")
        epochs = dict(
            CE=config.epochs,
            NL=config.nl_epochs,
            SelNL=config.selnl_epochs,
            SelPL=config.selpl_epochs,
            SelCE=config.selected_epochs,
        )[stage]
        writer = writer_for(method_of[stages]) if writer_for is not None else None
        lr = config.nl_lr if negative else config.lr
        trainer = Trainer(
            model,
            torch.optim.SGD(model.parameters(), lr=lr, momentum=config.momentum),
            loss_fn=negative_learning_loss if negative else per_sample_cross_entropy,
            batch_size=config.batch_size,
            context=RunContext(device, (writer,), progress),
            options=TrainerOptions(global_step=previous.global_step),
        )
        history = ConfidenceHistory(config.confidence_epochs)
        if stage.startswith("Sel"):
            assert previous.history is not None  # NL and SelNL, which come first, record one
            history.recorded = list(previous.history.recorded)
        selected = previous.selected
        if stage == "SelCE":
            threshold = config.threshold if config.threshold is not None else 1 / data.num_classes
            selected = history.mean() >= threshold
        generator, losses = make_generator(seed, stage), []
        for epoch in range(epochs):
            if reselect and negative:
                selected = selnl_selection(history.mean(), data.num_classes)
            elif reselect:
                selected = selpl_selection(history.mean(), config.gamma)
            if selected is not None and not selected.any():
                raise RuntimeError(
                    f"{stage} selected no sample in epoch {epoch + 1}: no confidence passes the "
                    "threshold; train NL longer (or lower the threshold)"
                )
            kept = data if selected is None else data.subset(selected.to(data.device))
            tensors = (kept.images, kept.labels)
            source: BatchSource | tuple[torch.Tensor, ...] = tensors
            if negative:
                source = ComplementaryBatches(
                    *tensors, kept.num_classes, config.batch_size, config.complementary
                )
            losses += trainer.fit(source, 1, generator, description=f"{stage} epoch {epoch + 1}")
            if reselect or (stage == "NL" and epoch >= epochs - config.confidence_epochs):
                history.record(label_probability(model, data, trainer.device))
        if stage == "NL" and not history.recorded:  # no NL epoch: judge the untrained model
            history.record(label_probability(model, data, trainer.device))
        kept_history = history if stage in ("NL", "SelNL", "SelPL") else previous.history
        return NoisyTrained(
            model, [*previous.losses, losses], trainer.global_step, selected, kept_history
        )

    schedules = {method: NOISE_SCHEDULES[method] for method in methods}
    return train_prefixes(schedules, NoisyTrained(initial, [], 0), train)
