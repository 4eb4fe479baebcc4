"""Negative triplet Siamese networks: training schedules for TSN, TSN-N and TSN-P, and scoring.

A schedule is trained from scratch (``"TSN"``, ``"TSN-N"``, ``"TSN-P"``) or fine-tunes the
converged TSN network with a learning rate several orders of magnitude smaller
(``"TSN>TSN-N"``, ``"TSN>TSN-P"``, and ``"TSN>TSN"`` as the control), through the ordinary
:class:`~supervised.training.Trainer` with a :class:`~supervised.triplets.TripletMarginLoss`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch.utils.tensorboard import SummaryWriter

from negdl.checks import check_choice, check_int, check_number
from supervised.context import DEFAULT_CONTEXT, RunContext
from supervised.data.common import LabelledImages
from supervised.embeddings import EmbeddingNet, embed, embedding_scores, mnist_embedding_net
from supervised.reducers import NonZeroMean
from supervised.runtime import make_generator, seeded_build
from supervised.training import (
    BatchSource,
    LossReducer,
    MeanReducer,
    TensorBatches,
    Trained,
    Trainer,
    TrainerOptions,
    train_prefixes,
)
from supervised.triplets import (
    MINERS,
    TRIPLET_VARIANTS,
    CosineDistance,
    Distance,
    EuclideanDistance,
    TripletBatches,
    TripletMarginLoss,
    make_miner,
)

DISTANCES: dict[str, type[Distance]] = {"euclidean": EuclideanDistance, "cosine": CosineDistance}
REDUCERS: dict[str, Callable[[], LossReducer]] = {"mean": MeanReducer, "nonzero": NonZeroMean}
OPTIMIZERS = ("sgd", "adam")
SAMPLINGS = ("triplets", "batch")


@dataclass(frozen=True)
class SiameseConfig:
    """Hyperparameters of triplet training; defaults follow the source's MNIST setup (SGD lr
    0.01, momentum 0.5, batch 64) with sampled triplets and the Euclidean margin 1.

    :param embedding_size: dimensions of the embedding.
    :param margin: triplet margin, >= 0.
    :param distance: ``"euclidean"`` or ``"cosine"``.
    :param miner: keep only these triplets of a batch: ``"all"``, ``"hard"``, ``"semi-hard"``,
        ``"margin"``, or None (every sampled triplet).
    :param sampling: ``"triplets"``: one sampled (anchor, positive, negative) per training image;
        ``"batch"``: plain labelled batches, every valid in-batch triplet a candidate.
    :param reducer: ``"mean"`` over triplets or ``"nonzero"`` (mean over violated triplets).
    :param optimizer: ``"sgd"`` (with ``momentum``) or ``"adam"``.
    :param lr: learning rate of a from-scratch schedule.
    :param momentum: SGD momentum.
    :param batch_size: triplets (``"triplets"``) or images (``"batch"``) per step.
    :param epochs: epochs of a from-scratch schedule (and of the TSN run fine-tunings start from).
    :param finetune_epochs: epochs of a fine-tuning schedule.
    :param finetune_lr_factor: fine-tuning learning rate as a fraction of ``lr`` (the source
        used 3-4 orders of magnitude smaller).
    :param normalize: unit-norm embeddings.
    """

    embedding_size: int = 128
    margin: float = 1.0
    distance: str = "euclidean"
    miner: str | None = None
    sampling: str = "triplets"
    reducer: str = "mean"
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.5
    batch_size: int = 64
    epochs: int = 10
    finetune_epochs: int = 1
    finetune_lr_factor: float = 1e-3
    normalize: bool = False

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        for name, value, allowed in (
            ("distance", self.distance, tuple(DISTANCES)),
            ("miner", self.miner, (None, *MINERS)),
            ("sampling", self.sampling, SAMPLINGS),
            ("reducer", self.reducer, tuple(REDUCERS)),
            ("optimizer", self.optimizer, OPTIMIZERS),
        ):
            check_choice(name, value, allowed)
        check_number("lr", self.lr, 0, low_open=True)
        check_number("finetune_lr_factor", self.finetune_lr_factor, 0, 1, low_open=True)
        check_number("momentum", self.momentum, 0, 1, high_open=True)
        check_int("embedding_size", self.embedding_size, 1)
        check_int("batch_size", self.batch_size, 1)
        check_int("epochs", self.epochs, 0)
        check_int("finetune_epochs", self.finetune_epochs, 0)

    def loss(self, variant: str) -> TripletMarginLoss:
        """The triplet loss of ``variant`` with this config's distance and miner."""
        distance = DISTANCES[self.distance]()
        miner = None if self.miner is None else make_miner(self.miner, self.margin, distance)
        return TripletMarginLoss(self.margin, variant, distance, miner)


#: pytorch-metric-learning's MNIST TripletMarginLoss example, in this library's parts: cosine
#: distance, margin 0.2, semi-hard mining over every in-batch triplet of 256 images, the mean
#: over non-zero losses, Adam lr 0.01, one epoch.
PML_CONVENTIONS = SiameseConfig(
    margin=0.2,
    distance="cosine",
    miner="semi-hard",
    sampling="batch",
    reducer="nonzero",
    optimizer="adam",
    lr=0.01,
    batch_size=256,
    epochs=1,
)


def schedule_variants(name: str) -> tuple[str, ...]:
    """The variants trained one after another by a schedule: ``"TSN-N"`` -> ``("TSN-N",)``,
    ``"TSN>TSN-N"`` -> ``("TSN", "TSN-N")`` (the second being the fine-tuning)."""
    variants = tuple(name.split(">"))
    if variants[-1] not in TRIPLET_VARIANTS or variants[:-1] not in ((), ("TSN",)):
        raise ValueError(
            f"unknown schedule {name!r}; use a variant {list(TRIPLET_VARIANTS)} from scratch, "
            "or 'TSN>' followed by a variant to fine-tune the converged TSN network"
        )
    return variants


def train_schedules(
    schedules: Sequence[str],
    data: LabelledImages,
    config: SiameseConfig = SiameseConfig(),
    seed: int = 0,
    context: RunContext = DEFAULT_CONTEXT,
    writer_for: Callable[[str], SummaryWriter | None] | None = None,
    model_factory: Callable[[], EmbeddingNet] | None = None,
) -> dict[str, Trained[EmbeddingNet]]:
    """Train each schedule (e.g. ``"TSN"``, ``"TSN>TSN-P"``: :func:`schedule_variants`) from the
    same seeded initialisation; fine-tunings share one TSN run.

    :param context: device and progress bars (its writers are unused: see ``writer_for``).
    :param writer_for: TensorBoard writer for a schedule name.
    :param model_factory: builds the network; :func:`mnist_embedding_net` by default.
    """
    if model_factory is None:

        def model_factory() -> EmbeddingNet:
            return mnist_embedding_net(config.embedding_size, normalize=config.normalize)

    variants = {name: schedule_variants(name) for name in schedules}
    initial = seeded_build(model_factory, seed, "init")

    def train(name: str, prefix: tuple, parent: Trained[EmbeddingNet]) -> Trained[EmbeddingNet]:
        # One variant trains from scratch; a later one fine-tunes at lr x finetune_lr_factor.
        model, finetune = parent.model.clone(), len(prefix) > 1
        lr = config.lr * (config.finetune_lr_factor if finetune else 1.0)
        optimizer = (
            torch.optim.Adam(model.parameters(), lr=lr)
            if config.optimizer == "adam"
            else torch.optim.SGD(model.parameters(), lr=lr, momentum=config.momentum)
        )
        trainer = Trainer(
            model,
            optimizer,
            loss_fn=config.loss(str(prefix[-1])),
            reducer=REDUCERS[config.reducer](),
            batch_size=config.batch_size,
            context=replace(context, writers=(writer_for(name) if writer_for else None,)),
            options=TrainerOptions(global_step=parent.global_step),
        )
        source: BatchSource = (
            TripletBatches(data.images, data.labels, config.batch_size)
            if config.sampling == "triplets"
            else TensorBatches(data.images, data.labels, batch_size=config.batch_size)
        )
        losses = trainer.fit(
            source,
            config.finetune_epochs if finetune else config.epochs,
            make_generator(seed, "triplets", prefix),
            description=f"{name} {'fine-tune' if finetune else 'scratch'}",
        )
        return Trained(model, [*parent.losses, losses], trainer.global_step)

    return train_prefixes(variants, Trained(initial, [], 0), train)


def score_embedding(
    model: EmbeddingNet,
    references: LabelledImages,
    queries: LabelledImages,
    config: SiameseConfig = SiameseConfig(),
    k: int = 5,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Prototype accuracy, k-NN accuracy and precision@1 (%) of test ``queries`` against
    training ``references``, measured with the config's distance; NaN if the model diverged."""
    query, reference = (embed(model, data.images, device=device) for data in (queries, references))
    return embedding_scores(
        query,
        queries.labels.to(query.device),
        reference,
        references.labels.to(reference.device),
        k,
        DISTANCES[config.distance](),
    )
