"""Classification based on missing features (CBOMF): the training modes as short schedules.

A mode is a tuple of :class:`Phase` objects run one after another on the same model, each with
a fresh SGD over the parameters that still train. Modes that begin with the same phases share
them, and a frozen-extractor phase trains the head on features computed once. The models of K
seeds train together (one plain :class:`~supervised.training.Trainer`, or a stacked one).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

import torch
from torch.utils.tensorboard import SummaryWriter

from negdl.checks import check_bool, check_choice, check_int, check_number
from supervised.context import DEFAULT_CONTEXT, RunContext
from supervised.data.common import LabelledImages
from supervised.evaluation import _same_extractor, accuracy, check_test_sets
from supervised.models import NegatableClassifier
from supervised.runtime import derive_seed, make_generator, seeded_build
from supervised.stacked import StackedBatches, StackedTrainer, predict_stacked
from supervised.training import (
    LossReducer,
    Trained,
    Trainer,
    TrainerOptions,
    check_model_inputs,
    train_prefixes,
)

NEGATION_SCHEDULES = ("off", "on", "alternate")
ClassifierT = TypeVar("ClassifierT", bound=NegatableClassifier)


@dataclass(frozen=True)
class Phase:
    """One training phase of a CBOMF mode: before training, optionally negate the last conv's
    kernels, freeze the extractor and re-initialise the head.

    :param negation: ``"off"``, ``"on"`` or ``"alternate"`` (off and on per epoch, ending on).
    """

    epochs: int
    negation: str = "off"
    freeze_extractor: bool = False
    reset_head: bool = False
    negate_kernels: bool = False

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, 0)
        for name in ("freeze_extractor", "reset_head", "negate_kernels"):
            check_bool(name, getattr(self, name))
        check_choice("negation", self.negation, NEGATION_SCHEDULES)

    def negation_in_epoch(self, epoch: int) -> bool:
        """Whether negation is on in ``epoch`` (0-based); alternation ends with negation on."""
        if self.negation == "alternate":
            return (self.epochs - 1 - epoch) % 2 == 0
        return self.negation == "on"


@dataclass(frozen=True)
class CBOMFConfig:
    """Hyperparameters, defaulting to the source's; ``lr`` and ``momentum`` are SGD's.

    :param epochs: epochs of the first (or only) phase.
    :param second_epochs: epochs of the second phase of two-phase modes.
    :param cache_features: train frozen-extractor phases on cached features.
    :param reducer: reduces each batch's per-sample losses (the mean when None), e.g.
        :class:`~supervised.reducers.HardExampleMining` for OHEM.
    """

    lr: float = 0.01
    momentum: float = 0.5
    batch_size: int = 64
    epochs: int = 10
    second_epochs: int = 10
    cache_features: bool = True
    reducer: LossReducer | None = None

    def __post_init__(self) -> None:
        check_number("lr", self.lr, 0, low_open=True)
        check_number("momentum", self.momentum, 0, 1, high_open=True)
        check_int("batch_size", self.batch_size, 1)
        check_int("epochs", self.epochs, 0)
        check_int("second_epochs", self.second_epochs, 0)
        check_bool("cache_features", self.cache_features)
        if self.reducer is not None and not isinstance(self.reducer, LossReducer):
            raise ValueError(
                f"reducer must be a supervised.training.LossReducer or None, got {self.reducer!r}"
            )


def _two_phase(config: CBOMFConfig, **second: Any) -> tuple[Phase, ...]:
    return (Phase(config.epochs), Phase(config.second_epochs, freeze_extractor=True, **second))


#: Each mode's schedule, built from a config.
MODES: dict[str, Callable[[CBOMFConfig], tuple[Phase, ...]]] = {
    "SN": lambda c: (Phase(c.epochs),),
    "ONN": lambda c: (Phase(c.epochs, negation="on"),),
    "HN": lambda c: _two_phase(c, negation="on", reset_head=True),
    "NR": lambda c: _two_phase(c, negation="on"),
    "ALT": lambda c: _two_phase(c, negation="alternate", reset_head=True),
    "TP": lambda c: _two_phase(c, reset_head=True),
    "HN-K": lambda c: _two_phase(c, reset_head=True, negate_kernels=True),
    "NR-K": lambda c: _two_phase(c, negate_kernels=True),
}


def mode_phases(mode: str, config: CBOMFConfig) -> tuple[Phase, ...]:
    """The phases of a named mode (one of :data:`MODES`)."""
    return MODES[check_choice("CBOMF mode", mode, tuple(MODES))](config)


def fit_trainable(
    model: ClassifierT,
    data: LabelledImages,
    config: CBOMFConfig,
    epochs: int,
    generator: torch.Generator,
    context: RunContext = DEFAULT_CONTEXT,
    global_step: int = 0,
    description: str = "train",
) -> Trained[ClassifierT]:
    """Train the parameters of ``model`` that still require gradients with a fresh SGD, in
    place (on cached features while its extractor is frozen), its step counter continuing from
    ``global_step``; the result holds this one phase's epoch losses."""
    (losses,), step = _train(
        [model], data, config, epochs, [generator], context, global_step, None, description
    )
    return Trained(model, [losses], step)


def _train(
    models: Sequence[NegatableClassifier],
    data: LabelledImages,
    config: CBOMFConfig,
    epochs: int,
    generators: Sequence[torch.Generator],
    context: RunContext,
    global_step: int,
    before_epoch: Callable[[int], None] | None,
    description: str,
) -> tuple[list[list[float]], int]:
    """:func:`fit_trainable` for models trained together, each shuffled by its own generator:
    the plain trainer for one model, the stacked one for several. Returns each model's epoch
    losses and the step counter after training."""
    cached = models[0].extractor_frozen and config.cache_features
    # A captured step is replayed as long as the models' negation switch stays the same.
    options = TrainerOptions(global_step, capture_key=lambda: getattr(models[0], "negate", False))
    settings: dict[str, Any] = dict(
        reducer=config.reducer, batch_size=config.batch_size, context=context, options=options
    )
    sgd = functools.partial(torch.optim.SGD, lr=config.lr, momentum=config.momentum)
    if len(models) == 1:
        forward = models[0].classify if cached else None
        parameters = models[0].trainable_parameters()
        trainer = Trainer(models[0], sgd(parameters), forward=forward, **settings)
    else:
        method = "classify" if cached else "forward"
        trainer = StackedTrainer(models, sgd, method=method, **settings)
    inputs = data.images
    if cached:  # after the trainer moved the models to its device and memory format
        inputs = predict_stacked(models, inputs, "features", device=trainer.device)
    if isinstance(trainer, StackedTrainer):
        batches = StackedBatches(
            inputs,
            data.labels,
            models=len(models),
            per_model=(bool(cached), False),
            batch_size=config.batch_size,
        )
        losses = trainer.fit(batches, epochs, generators, before_epoch, description)
    else:
        tensors = (inputs[0] if cached else inputs, data.labels)
        losses = [trainer.fit(tensors, epochs, generators[0], before_epoch, description)]
    return losses, trainer.global_step


def run_phase(
    models: Sequence[NegatableClassifier],
    schedule: tuple[Phase, ...],
    data: LabelledImages,
    config: CBOMFConfig,
    seeds: Sequence[int],
    context: RunContext = DEFAULT_CONTEXT,
    global_step: int = 0,
    description: str = "phase",
) -> tuple[list[list[float]], int]:
    """Run the last phase of ``schedule`` on each model (one per seed, trained together), in
    place; returns every model's epoch losses and the new global step.

    A model's shuffling and head reset are streams named by its seed and the ``schedule`` up to
    this phase, so a phase's randomness does not depend on which other phases or models run. A
    frozen extractor is checked bit for bit after the phase.
    """
    if len(models) != len(seeds) or not schedule:
        raise ValueError(
            f"need one seed per model and a phase to run, got {len(models)} models, "
            f"{len(seeds)} seeds and {len(schedule)} phases"
        )
    phase, frozen_states = schedule[-1], []
    for model, seed in zip(models, seeds, strict=True):
        if phase.negate_kernels:
            model.negate_kernels()
        if phase.freeze_extractor:
            model.freeze_extractor()
        if phase.reset_head:
            model.reset_head(derive_seed(seed, "reset", schedule))
        if phase.negation != "off":
            model.set_negation(True)  # fails early when the model has no negation
        state = model.extractor.state_dict() if phase.freeze_extractor else {}
        frozen_states.append({name: value.clone() for name, value in state.items()})

    def set_negation(epoch: int) -> None:
        for model in models:
            model.set_negation(phase.negation_in_epoch(epoch))

    generators = [make_generator(seed, "shuffle", schedule) for seed in seeds]
    losses, step = _train(
        models,
        data,
        config,
        phase.epochs,
        generators,
        context,
        global_step,
        set_negation,
        description,
    )
    set_negation(phase.epochs - 1)  # the final state, also after no epochs
    for model, frozen in zip(models, frozen_states, strict=True):
        state = model.extractor.state_dict()
        changed = [name for name, value in frozen.items() if not torch.equal(value, state[name])]
        if changed:
            raise RuntimeError(f"the frozen extractor changed during training: {changed}")
    return losses, step


def train_modes(
    modes: Sequence[str],
    model_factory: Callable[[], NegatableClassifier],
    data: LabelledImages,
    config: CBOMFConfig = CBOMFConfig(),
    seeds: Sequence[int] = (0,),
    context: RunContext = DEFAULT_CONTEXT,
    writer_for: Callable[[int, str], SummaryWriter | None] | None = None,
) -> dict[int, dict[str, Trained[NegatableClassifier]]]:
    """Train each mode (from :data:`MODES`) from each seed, sharing common leading phases
    between modes; returns ``{seed: {mode: Trained}}``.

    Every phase trains the seeds' models together. Randomness comes from streams named by the
    seed, so a mode's result does not depend on which other modes or seeds are trained. A shared
    phase logs to the writers of every mode that shares it, so every mode's curves start at 0.

    :param context: device and progress bars (its writers are unused: see ``writer_for``).
    :param writer_for: TensorBoard writer for a seed and mode name.
    """
    # Refuse arguments that would fail deep inside training (or, like a plain string of modes,
    # silently do something else).
    if isinstance(modes, str) or not modes:
        raise ValueError(
            f"modes must be a non-empty list of mode names, e.g. ['SN'], got {modes!r}"
        )
    if not isinstance(config, CBOMFConfig):
        raise ValueError(f"config must be a CBOMFConfig, got {type(config).__name__}")
    schedules = {mode: mode_phases(mode, config) for mode in modes}
    if not callable(model_factory):
        raise ValueError(f"model_factory must be callable, got {type(model_factory).__name__}")
    if not isinstance(data, LabelledImages):
        raise ValueError(f"data must be LabelledImages, got {type(data).__name__}")
    if isinstance(seeds, (str, int)) or not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"need distinct seeds, got {seeds!r}")
    for seed in seeds:
        check_int("seed", seed, 0)
    initial = [seeded_build(model_factory, seed, "init") for seed in seeds]
    for model in initial:
        if not isinstance(model, NegatableClassifier):
            raise TypeError(
                "model_factory must build a supervised.models.NegatableClassifier (extractor, head "
                f"and negation, e.g. mnist_net), got {type(model).__name__}"
            )
        check_model_inputs(model, data.images, data.labels)

    def train(mode: str, schedule: tuple, parents: list[Trained]) -> list[Trained]:
        shared = [m for m, phases in schedules.items() if phases[: len(schedule)] == schedule]
        writers = (
            [_Writers([writer_for(s, m) for m in shared]) for s in seeds] if writer_for else []
        )
        models = [parent.model.clone() for parent in parents]
        # One stand-in writer per seed: add_scalar goes to each sharing mode's writer.
        phase_context = replace(context, writers=cast(list[SummaryWriter | None], writers))
        start, description = parents[0].global_step, f"{mode} phase {len(schedule)}"
        losses, step = run_phase(
            models, schedule, data, config, seeds, phase_context, start, description
        )
        return [
            Trained(model, [*parent.losses, model_losses], step)
            for model, parent, model_losses in zip(models, parents, losses, strict=True)
        ]

    trained = train_prefixes(schedules, [Trained(model, [], 0) for model in initial], train)
    return {
        seed: {mode: trained[mode][index] for mode in modes} for index, seed in enumerate(seeds)
    }


class _Writers:
    """Stands in for several writers: ``add_scalar`` goes to each."""

    def __init__(self, writers: list[SummaryWriter | None]) -> None:
        self.writers = [writer for writer in writers if writer is not None]

    def add_scalar(self, *args: Any, **kwargs: Any) -> None:
        for writer in self.writers:
            writer.add_scalar(*args, **kwargs)


def train_mode(
    mode: str,
    model_factory: Callable[[], NegatableClassifier],
    data: LabelledImages,
    **kwargs: object,
) -> Trained[NegatableClassifier]:
    """Train a single mode from one seed; keyword arguments as in :func:`train_modes`
    (``seeds`` one seed)."""
    (trained,) = train_modes([mode], model_factory, data, **kwargs).values()  # type: ignore[arg-type]
    return trained[mode]


def evaluate_modes(
    trained: dict[int, dict[str, Trained[NegatableClassifier]]],
    test_sets: dict[str, LabelledImages],
    context: RunContext = DEFAULT_CONTEXT,
    writer_for: Callable[[int, str], SummaryWriter | None] | None = None,
    batch_size: int = 1000,
) -> dict[int, dict[str, dict[str, float]]]:
    """Accuracy (%) ``{seed: {mode: {test set: accuracy}}}`` of :func:`train_modes`' result,
    logged as ``eval/<set>/accuracy`` at each mode's last step through ``writer_for(seed, mode)``.

    The seeds' models of a mode are evaluated in one stacked pass; modes whose extractors are
    identical for every seed (SN, HN, NR, ALT, TP) share one extractor pass.
    """
    seeds = list(trained)
    modes = list(trained[seeds[0]]) if seeds else []
    if not modes or any(list(trained[seed]) != modes for seed in seeds):
        raise ValueError("need at least one seed, every seed with the same trained modes")
    check_test_sets(test_sets)
    for name, data in test_sets.items():  # test sets the trained models cannot take
        try:
            check_model_inputs(trained[seeds[0]][modes[0]].model, data.images, data.labels)
        except (TypeError, ValueError) as error:
            raise type(error)(f"test set {name!r}: {error}") from None

    def same_extractors(a: str, b: str) -> bool:
        extractors = [(trained[s][a].model.extractor, trained[s][b].model.extractor) for s in seeds]
        return all(_same_extractor(x, y) for x, y in extractors)

    groups: dict[str, list[str]] = {}  # first mode: the modes with its extractors, every seed
    for mode in modes:
        first = next((f for f in groups if same_extractors(f, mode)), mode)
        groups.setdefault(first, []).append(mode)
    results: dict[int, dict[str, dict[str, float]]] = {
        seed: {mode: {} for mode in modes} for seed in seeds
    }
    predict = functools.partial(predict_stacked, batch_size=batch_size, device=context.device)
    for first, group in groups.items():
        extractors = [trained[seed][first].model for seed in seeds]
        for set_name, data in test_sets.items():
            features = predict(extractors, data.images, "features")
            for mode in group:
                models = [trained[seed][mode].model for seed in seeds]
                logits = predict(models, features, "classify", per_model=True)
                for seed, seed_logits in zip(seeds, logits, strict=True):
                    results[seed][mode][set_name] = accuracy(seed_logits, data.labels)
    for seed, mode in itertools.product(seeds, modes):
        writer = writer_for(seed, mode) if writer_for is not None else None
        step = trained[seed][mode].global_step
        for set_name, value in results[seed][mode].items():
            if writer is not None:
                writer.add_scalar(f"eval/{set_name}/accuracy", value, step)
    return results
