"""Classification based on missing features (CBOMF): the training modes as short schedules.

A mode is a tuple of :class:`Phase` objects, run one after another on the same model. Each
phase optionally negates the last conv's kernels, freezes the extractor, re-initialises the
head, then trains with negation off, on, or alternating per epoch. Every phase starts a fresh
SGD over the parameters that still train. Modes that begin with the same phases share them:
:func:`train_modes` trains the common prefix once (the SN network is phase 1 of HN, NR, ALT,
TP and the kernel modes).

While the extractor is frozen (and in eval mode) its features are a fixed function of the
input, so by default a frozen phase computes them once and trains the head on the cached
features; this is the same computation as the straightforward path, much cheaper.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.utils.tensorboard import SummaryWriter

from negdl.checks import check_bool, check_int, check_number
from supervised.data.common import LabelledImages
from supervised.evaluation import evaluate_models, extract_features
from supervised.models import NegatableClassifier
from supervised.runtime import derive_seed, make_generator
from supervised.training import LossReducer, Trainer

NEGATION_SCHEDULES = ("off", "on", "alternate")


@dataclass(frozen=True)
class Phase:
    """One training phase of a CBOMF mode.

    :param epochs: passes over the training set.
    :param negation: ``"off"``, ``"on"`` or ``"alternate"`` (off and on per epoch, ending on).
    :param freeze_extractor: freeze every extractor parameter before training.
    :param reset_head: re-initialise the head before training.
    :param negate_kernels: negate the last conv's weights and bias before training.
    """

    epochs: int
    negation: str = "off"
    freeze_extractor: bool = False
    reset_head: bool = False
    negate_kernels: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ValueError(f"a phase needs epochs >= 0, got {self.epochs}")
        if self.negation not in NEGATION_SCHEDULES:
            raise ValueError(f"negation must be one of {NEGATION_SCHEDULES}, got {self.negation!r}")

    def negation_in_epoch(self, epoch: int) -> bool:
        """Whether negation is on in ``epoch`` (0-based); alternation ends with negation on."""
        if self.negation == "alternate":
            return (self.epochs - 1 - epoch) % 2 == 0
        return self.negation == "on"


@dataclass(frozen=True)
class CBOMFConfig:
    """Hyperparameters, defaulting to the source's.

    :param lr: SGD learning rate.
    :param momentum: SGD momentum.
    :param batch_size: training batch size.
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


def _two_phase(config: CBOMFConfig, **second: object) -> tuple[Phase, ...]:
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
    if mode not in MODES:
        raise ValueError(f"unknown CBOMF mode {mode!r}; choose from {list(MODES)}")
    return MODES[mode](config)


def fit_trainable(
    model: NegatableClassifier,
    data: LabelledImages,
    config: CBOMFConfig,
    epochs: int,
    generator: torch.Generator,
    device: torch.device | str | None = None,
    writer: SummaryWriter | None = None,
    progress: bool = True,
    global_step: int = 0,
    description: str = "train",
    before_epoch: Callable[[int], None] | None = None,
) -> tuple[list[float], int]:
    """Train the parameters of ``model`` that still require gradients with a fresh SGD.

    With a frozen extractor (and ``config.cache_features``) the head trains on features
    computed once; the result is the same as running the extractor every batch.

    :param model: a :class:`NegatableClassifier` (or a synergy model); trained in place.
    :param data: training split.
    :param config: learning rate, momentum, batch size, feature caching.
    :param epochs: passes over ``data``.
    :param generator: seeded shuffling.
    :param device: where to train.
    :param writer: TensorBoard writer.
    :param progress: show a progress bar.
    :param global_step: where the step counter (and the TensorBoard curve) continues.
    :param description: progress-bar label.
    :param before_epoch: called with the epoch index before each epoch.
    :returns: the epoch losses and the step counter after training.
    """
    optimizer = torch.optim.SGD(
        list(model.trainable_parameters()), lr=config.lr, momentum=config.momentum
    )
    cached = model.extractor_frozen and config.cache_features
    trainer = Trainer(
        model,
        optimizer,
        forward=model.classify if cached else None,
        reducer=config.reducer,
        batch_size=config.batch_size,
        device=device,
        writer=writer,
        progress=progress,
        global_step=global_step,
    )
    inputs = extract_features(model, data.images, trainer.device) if cached else data.images
    losses = trainer.fit((inputs, data.labels), epochs, generator, before_epoch, description)
    return losses, trainer.global_step


def run_phase(
    model: NegatableClassifier,
    phase: Phase,
    data: LabelledImages,
    config: CBOMFConfig,
    generator: torch.Generator,
    reset_seed: int,
    device: torch.device | str | None = None,
    writer: SummaryWriter | None = None,
    progress: bool = True,
    global_step: int = 0,
    description: str = "phase",
) -> tuple[list[float], int]:
    """Run one phase on ``model`` in place; returns the epoch losses and the new global step.

    A frozen extractor is checked bit for bit after the phase; any change is an error.
    """
    if phase.negate_kernels:
        model.negate_kernels()
    if phase.freeze_extractor:
        model.freeze_extractor()
    if phase.reset_head:
        model.reset_head(reset_seed)
    if phase.negation != "off":
        model.set_negation(True)  # fails early when the model has no negation
    frozen_state = (
        {name: value.clone() for name, value in model.extractor.state_dict().items()}
        if phase.freeze_extractor
        else None
    )
    losses, step = fit_trainable(
        model,
        data,
        config,
        phase.epochs,
        generator,
        device,
        writer,
        progress,
        global_step,
        description,
        before_epoch=lambda epoch: model.set_negation(phase.negation_in_epoch(epoch)),
    )
    # Leave the model in the phase's final state (also when it ran no epochs).
    model.set_negation(phase.negation_in_epoch(phase.epochs - 1))
    if frozen_state is not None:
        changed = [
            name
            for name, value in model.extractor.state_dict().items()
            if not torch.equal(value, frozen_state[name])
        ]
        if changed:
            raise RuntimeError(f"the frozen extractor changed during training: {changed}")
    return losses, step


@dataclass
class TrainedMode:
    """A model trained in one mode, with its per-phase epoch losses."""

    model: NegatableClassifier
    losses: list[list[float]]
    global_step: int


def train_modes(
    modes: Sequence[str],
    model_factory: Callable[[], NegatableClassifier],
    data: LabelledImages,
    config: CBOMFConfig = CBOMFConfig(),
    seed: int = 0,
    device: torch.device | str | None = None,
    writer_for: Callable[[str], SummaryWriter | None] | None = None,
    progress: bool = True,
) -> dict[str, TrainedMode]:
    """Train each mode from the same seed, sharing common leading phases between modes.

    Randomness comes from named streams (model init, each phase's shuffling, each head reset)
    derived from ``seed``, so a mode's result does not depend on which other modes are trained.

    :param modes: names from :data:`MODES`.
    :param model_factory: builds a fresh model (its initialisation is seeded here).
    :param data: training split.
    :param config: hyperparameters.
    :param seed: seed of every random stream.
    :param device: where to train.
    :param writer_for: TensorBoard writer for a mode name; a phase trained once and shared by
        several modes shows in every one of their writers (its scalars are copied to the later
        ones), so each mode's curves start at step 0.
    :param progress: show progress bars.
    """
    for mode in modes:
        mode_phases(mode, config)  # validate every name before training anything
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init"))
        initial = model_factory()
    done: dict[tuple[Phase, ...], TrainedMode] = {(): TrainedMode(initial, [], 0)}
    logged: dict[tuple[Phase, ...], _ScalarRecorder] = {}
    results = {}
    for mode in modes:
        phases = mode_phases(mode, config)
        writer = writer_for(mode) if writer_for is not None else None
        for depth in range(1, len(phases) + 1):
            prefix = phases[:depth]
            if prefix in done:
                if writer is not None and prefix in logged:
                    logged[prefix].replay(writer)
                continue
            parent = done[prefix[:-1]]
            model = parent.model.clone()
            if writer_for is not None:
                logged[prefix] = _ScalarRecorder(writer)
            losses, step = run_phase(
                model,
                prefix[-1],
                data,
                config,
                generator=make_generator(seed, "shuffle", prefix),
                reset_seed=derive_seed(seed, "reset", prefix),
                device=device,
                writer=logged.get(prefix),
                progress=progress,
                global_step=parent.global_step,
                description=f"{mode} phase {depth}",
            )
            done[prefix] = TrainedMode(model, [*parent.losses, losses], step)
        results[mode] = done[phases]
    return results


class _ScalarRecorder:
    """Passes ``add_scalar`` on to a writer (if any) and keeps the calls, to replay a shared
    phase's curves into the writers of the other modes that reuse it."""

    def __init__(self, writer: SummaryWriter | None) -> None:
        self.writer = writer
        self.scalars: list[tuple[str, float, int]] = []
        self._shown_in = {id(writer)}

    def add_scalar(
        self, tag: str, value: float, step: int, *args: object, **kwargs: object
    ) -> None:
        self.scalars.append((tag, float(value), step))
        if self.writer is not None:
            self.writer.add_scalar(tag, value, step, *args, **kwargs)

    def replay(self, writer: SummaryWriter) -> None:
        """Write every recorded scalar into ``writer``, once per writer."""
        if id(writer) not in self._shown_in:
            for tag, value, step in self.scalars:
                writer.add_scalar(tag, value, step)
            self._shown_in.add(id(writer))

    def __getattr__(self, name: str) -> object:
        # Anything else a trainer asks of its writer (flush, add_histogram, ...) goes straight through.
        return getattr(self.writer, name)


def train_mode(
    mode: str,
    model_factory: Callable[[], NegatableClassifier],
    data: LabelledImages,
    **kwargs: object,
) -> TrainedMode:
    """Train a single mode; keyword arguments as in :func:`train_modes`."""
    return train_modes([mode], model_factory, data, **kwargs)[mode]


def evaluate_modes(
    trained: dict[str, TrainedMode],
    test_sets: dict[str, LabelledImages],
    device: torch.device | str | None = None,
    writer_for: Callable[[str], SummaryWriter | None] | None = None,
    batch_size: int = 1000,
) -> dict[str, dict[str, float]]:
    """Accuracy (%) of every trained mode on every named test set, logged at each mode's last step.

    Modes whose extractors are identical (SN, HN, NR, ALT and TP share SN's; the two kernel
    modes share theirs) reuse one extractor pass (see :func:`supervised.evaluation.evaluate_models`).

    :param trained: result of :func:`train_modes`.
    :param test_sets: named test sets, e.g. from :func:`supervised.occlusions.partial_test_sets`.
    :param device: where to evaluate.
    :param writer_for: TensorBoard writer per mode for ``eval/<set>/accuracy``.
    :param batch_size: evaluation batch size.
    """
    return evaluate_models(
        {mode: result.model for mode, result in trained.items()},
        test_sets,
        batch_size,
        device,
        writer_for,
        step={mode: result.global_step for mode, result in trained.items()},
    )
