"""The fit loop shared by every supervised model: tensors on the device, batched by indexing.

No per-sample ``Dataset``: the whole split lives on the device and each step gathers one
minibatch with an index tensor. Model families swap the batch source (:class:`BatchSource`), the
loss (per sample or scalar) and the reducer (:class:`LossReducer`) instead of copying the loop.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from negdl.checks import check_bool, check_int
from supervised.capture import captured_step, default_amp, resolve_capture
from supervised.context import DEFAULT_CONTEXT, RunContext
from supervised.runtime import select_device

#: One training batch: a tuple of tensors whose first dimension is the sample.
Batch = tuple[torch.Tensor, ...]
LossFn = Callable[..., torch.Tensor]
#: A :class:`TensorBatches` subclass, which :meth:`TensorBatches.to` returns (typing.Self is 3.11+).
BatchesT = TypeVar("BatchesT", bound="TensorBatches")
ModelT = TypeVar("ModelT", bound=nn.Module)
ResultT = TypeVar("ResultT")

#: Cross-entropy per sample; the reducer averages it (the same gradients as the mean reduction).
per_sample_cross_entropy = partial(F.cross_entropy, reduction="none")


def check_finite_inputs(name: str, tensor: torch.Tensor) -> None:
    """Refuse a floating-point tensor holding NaN or infinite values (one min/max pass)."""
    if tensor.is_floating_point() and tensor.numel():
        if not torch.isfinite(torch.stack(torch.aminmax(tensor))).all():
            raise ValueError(
                f"{name} hold NaN or infinite values; clean or drop those samples before training"
            )


def iterate_batches(
    count: int,
    batch_size: int,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    drop_last: bool = False,
) -> Iterator[torch.Tensor]:
    """Index tensors on ``device`` covering ``range(count)`` in minibatches (the last one smaller
    unless ``drop_last``), shuffled by ``generator`` when ``shuffle``. The permutation is drawn
    on the CPU so the order is the same on every device."""
    check_int("count", count, 0)
    check_int("batch_size", batch_size, 1)
    order = torch.randperm(count, generator=generator) if shuffle else torch.arange(count)
    order = order.to(device)
    stop = count - count % batch_size if drop_last else count
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


def prepare_inputs(
    inputs: torch.Tensor, device: torch.device, channels_last: bool = True
) -> torch.Tensor:
    """Move inputs to ``device``; images go channels-last, which conv kernels run faster on."""
    inputs = inputs.to(device)
    if channels_last and inputs.ndim == 4:
        return inputs.contiguous(memory_format=torch.channels_last)
    return inputs


class BatchSource(ABC):
    """Where the batches of one epoch come from: tuples of tensors on the training device, each
    passed to :meth:`Trainer.compute_loss` unchanged."""

    @abstractmethod
    def __len__(self) -> int:
        """Batches per epoch (the progress bar's length)."""

    @property
    @abstractmethod
    def samples(self) -> int:
        """Samples per epoch; the epoch's mean loss is the size-weighted mean over batches."""

    @abstractmethod
    def batches(self, generator: torch.Generator | None = None) -> Iterator[Batch]:
        """The batches of one epoch, shuffled by ``generator`` where the source shuffles."""

    def to(self, device: torch.device, channels_last: bool = True) -> BatchSource:
        """This source with its data on ``device``; sources that already are return themselves."""
        return self


class TensorBatches(BatchSource):
    """Aligned tensors (e.g. ``inputs, targets``, at least one sample) batched together by one
    index per batch, a fresh permutation every epoch when ``shuffle``."""

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int = 64,
        shuffle: bool = True,
        drop_last: bool = False,
    ) -> None:
        if not tensors:
            raise ValueError(f"{type(self).__name__} needs at least one tensor")
        check_int("batch_size", batch_size, 1)
        sizes = self.sample_counts(tensors)
        if len(set(sizes)) != 1 or sizes[0] == 0:
            raise ValueError(f"need matching, non-empty sample counts, got {sizes}")
        if drop_last and sizes[0] < batch_size:
            raise ValueError(
                f"drop_last with {sizes[0]} samples < batch_size {batch_size} yields nothing"
            )
        self.tensors, self.count, self.batch_size = tensors, sizes[0], batch_size
        self.shuffle, self.drop_last = shuffle, drop_last

    def sample_counts(self, tensors: Sequence[torch.Tensor]) -> list[int]:
        """Each tensor's number of samples."""
        return [len(tensor) for tensor in tensors]

    def __len__(self) -> int:
        full, rest = divmod(self.count, self.batch_size)
        return full + (rest > 0 and not self.drop_last)

    @property
    def samples(self) -> int:
        return self.count - self.count % self.batch_size if self.drop_last else self.count

    def batches(self, generator: torch.Generator | None = None) -> Iterator[Batch]:
        device = self.tensors[0].device
        for index in iterate_batches(
            self.count, self.batch_size, self.shuffle, generator, device, self.drop_last
        ):
            yield tuple(tensor[index] for tensor in self.tensors)

    def to(self: BatchesT, device: torch.device, channels_last: bool = True) -> BatchesT:
        moved = copy.copy(self)
        moved.tensors = tuple(prepare_inputs(t, device, channels_last) for t in self.tensors)
        return moved


class LossReducer(ABC):
    """Turns the loss of a batch (per sample ``(N,)`` or already a scalar) into one scalar."""

    def __call__(self, losses: torch.Tensor) -> torch.Tensor:
        if losses.ndim > 1:
            raise ValueError(
                f"a loss must be per sample (N,) or a scalar, got shape {tuple(losses.shape)}"
            )
        return self.reduce(losses)

    @abstractmethod
    def reduce(self, losses: torch.Tensor) -> torch.Tensor:
        """The scalar to back-propagate."""


class MeanReducer(LossReducer):
    """The mean over the batch; a scalar loss passes through unchanged. No losses at all (e.g.
    a miner found no triplet) reduce to 0, not NaN, and give zero gradients."""

    def reduce(self, losses: torch.Tensor) -> torch.Tensor:
        return losses.mean() if losses.numel() else losses.sum()


@contextmanager
def evaluating(*models: nn.Module) -> Iterator[None]:
    """The models in eval mode inside the block; every module's own mode restored after."""
    modes = [[module.training for module in model.modules()] for model in models]
    for model in models:
        model.eval()
    try:
        yield
    finally:
        for model, flags in zip(models, modes, strict=True):
            for module, training in zip(model.modules(), flags, strict=True):
                module.training = training


@torch.no_grad()
def check_model_inputs(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor | None = None,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> None:
    """Refuse, before any training, inputs the model cannot take and class targets it lacks:
    integer inputs (uint8 pixels in 0-255 trained as floats in [0, 1] are a silent mistake), then
    whatever one forward of a single sample in eval mode fails on; that forward's outputs give
    the number of classes ``targets`` (None: not checked) must lie below. ``forward`` maps inputs
    to outputs (``model`` by default, e.g. ``model.classify``)."""
    # The first module (in definition order) that holds parameters of its own.
    first = next((m for m in model.modules() if next(m.parameters(False), None) is not None), None)
    if not inputs.is_floating_point() and not isinstance(first, nn.Embedding):
        raise TypeError(
            f"the inputs are {inputs.dtype}, the model takes floating-point inputs; convert them, "
            "e.g. uint8 images with images.float() / 255 (pixels in [0, 1])"
        )
    if targets is not None and (
        targets.is_floating_point() or targets.dtype == torch.bool or targets.ndim != 1
    ):
        raise TypeError(
            "the targets must be integer class indices (N,) for cross-entropy, got "
            f"{targets.dtype} of shape {tuple(targets.shape)}; e.g. labels.long()"
        )
    with evaluating(model):
        try:
            sample = inputs[:1].to(next(model.parameters(), inputs).device)
            outputs = (forward if forward is not None else model)(sample)
        except RuntimeError as error:
            raise ValueError(
                f"the model does not take inputs of shape {tuple(inputs.shape[1:])} per sample "
                f"({inputs.dtype}); its first layer is {first}: {error}"
            ) from None
    if targets is not None and len(targets):
        classes, low, high = outputs.shape[-1], int(targets.min()), int(targets.max())
        if low < 0 or high >= classes:
            raise ValueError(
                f"the targets must be class indices in [0, {classes - 1}] (the model has "
                f"{classes} outputs), got values from {low} to {high}"
            )


@dataclass(frozen=True)
class TrainerOptions:
    """How a trainer runs its steps and logs them.

    :param global_step: the step counter to continue from, so a multi-phase schedule with a
        trainer per phase logs one continuous curve.
    :param tag: prefix of the scalar keys (``<tag>/loss``).
    :param amp: float16 autocast with gradient scaling; by default on CUDA for models of at least
        :data:`supervised.capture.AMP_MIN_PARAMETERS` parameters only, never on CPU.
    :param capture: one of :data:`supervised.capture.CAPTURE_MODES` (why it fell back to eager:
        :attr:`Trainer.capture_reason`).
    :param capture_key: the Python state the step reads beyond tensor values (e.g.
        ``lambda: model.negate``); one captured graph is kept per value. Without it the step is
        re-captured at every ``before_epoch`` call, which may change what the step computes.
    """

    global_step: int = 0
    log_every: int = 100
    tag: str = "train"
    amp: bool | None = None
    channels_last: bool = True
    capture: str = "auto"
    capture_key: Callable[[], Hashable] | None = None

    def __post_init__(self) -> None:
        check_int("log_every", self.log_every, 1)
        check_int("global_step", self.global_step, 0)
        check_bool("channels_last", self.channels_last)
        if self.amp is not None:
            check_bool("amp", self.amp)


#: Every option at its default.
DEFAULT_OPTIONS = TrainerOptions()


class Trainer:
    """Minibatch SGD over a batch source, with progress bar, TensorBoard and a captured step on CUDA.

    Later models change what a step computes through ``forward``/``loss_fn``/``reducer``,
    :meth:`compute_loss` or another :class:`BatchSource`, never by copying the loop.
    :meth:`step` is the whole optimisation step and nothing else, so it can be captured or
    vectorised as one unit.

    :param optimizer: over ``model``'s parameters (or those of ``loss_fn`` or ``forward``'s module).
    :param loss_fn: ``loss_fn(outputs, *rest_of_batch)``, per sample or scalar.
    :param forward: maps the first tensor of a batch to outputs; ``model`` by default (e.g.
        ``model.classify`` to train a head on cached features).
    :param batch_size: samples per step when :meth:`fit` is given tensors.
    :param context: the device, the TensorBoard writer (``<tag>/loss``, ``<tag>/epoch_loss``)
        and the progress bar.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: LossFn = per_sample_cross_entropy,
        forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
        reducer: LossReducer | None = None,
        batch_size: int = 64,
        context: RunContext = DEFAULT_CONTEXT,
        options: TrainerOptions = DEFAULT_OPTIONS,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError(
                f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        for name, function in (("loss_fn", loss_fn), ("forward", forward)):
            if function is not None and not callable(function):
                raise ValueError(f"{name} must be callable, got {type(function).__name__}")
        if reducer is not None and not isinstance(reducer, LossReducer):
            raise ValueError(f"reducer must be a LossReducer or None, got {reducer!r}")
        check_int("batch_size", batch_size, 1)
        self.device, self.options = select_device(context.device), options
        memory_format = torch.channels_last if options.channels_last else torch.preserve_format
        # torch's stubs lack Module.to's memory_format keyword, which it takes at run time.
        self.model = model.to(self.device, memory_format=memory_format)  # type: ignore[call-overload]
        self.optimizer, self.loss_fn = optimizer, loss_fn
        self.forward = forward if forward is not None else self.model
        # An optimiser over another model's parameters "trains" and the model never changes.
        allowed = {id(tensor) for tensor in self.trainable_tensors()}
        held = [p for group in optimizer.param_groups for p in group["params"]]
        foreign = sum(id(p) not in allowed for p in held)
        trainable = sum(p.requires_grad for p in held)
        if foreign or not trainable:
            raise ValueError(
                f"the optimizer must hold the model's trainable parameters: {foreign} of its "
                f"{len(held)} tensors are another module's and {trainable} require gradients; "
                "build it from this model's parameters, e.g. model.parameters()"
            )
        self.reducer = reducer if reducer is not None else MeanReducer()
        self.batch_size, self.progress = batch_size, context.progress
        self.amp = default_amp(self.model, self.device) if options.amp is None else options.amp
        if self.amp and self.device.type != "cuda":
            raise ValueError("amp=True needs a CUDA device; leave amp unset on CPU")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.writers = context.writers_for(len(self.models))  # one (or None) per model trained
        self.global_step = options.global_step
        self.capture, self.capture_reason = resolve_capture(
            options.capture, self.device, self.amp, optimizer
        )
        self.captured = captured_step(
            self.capture, self.eager_step, self.device, options.capture_key
        )

    @property
    def models(self) -> list[nn.Module]:
        """The models trained: ``[model]`` here, K for a stacked trainer."""
        return [self.model]

    def trainable_tensors(self) -> list[torch.Tensor]:
        """The tensors the optimiser may update: the model's parameters (and those of the loss
        or of ``forward``'s module when they are modules)."""
        owners = [self.model, self.loss_fn, getattr(self.forward, "__self__", None)]
        return [p for owner in owners if isinstance(owner, nn.Module) for p in owner.parameters()]

    def compute_loss(self, batch: Batch) -> torch.Tensor:
        """The loss of one batch, per sample or scalar: ``loss_fn(forward(batch[0]), *batch[1:])``."""
        inputs, *rest = batch
        return self.loss_fn(self.forward(inputs), *rest)

    def reduced_loss(self, batch: Batch) -> torch.Tensor:
        """What the step back-propagates (summed) and reports: the reducer over the batch."""
        return self.reducer(self.compute_loss(batch))

    def step(self, batch: Batch) -> torch.Tensor:
        """One optimisation step on a batch, replayed from a capture where possible; returns
        the detached reduced loss."""
        loss = self.captured(batch) if self.captured is not None else self.eager_step(batch)
        self.global_step += 1
        return loss

    def eager_step(self, batch: Batch) -> torch.Tensor:
        """The optimisation step, run op by op: what a capture records."""
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            loss = self.reduced_loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        # K stacked models' losses are summed: each model's gradient is that of its own loss.
        self.scaler.scale(loss.sum()).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach()

    def batch_source(self, data: BatchSource | Sequence[torch.Tensor]) -> BatchSource:
        """``data`` as a source on the training device; tensors become :class:`TensorBatches`
        after :func:`check_model_inputs`."""
        if isinstance(data, BatchSource):
            return data.to(self.device, self.options.channels_last)
        if isinstance(data, torch.Tensor) or not all(isinstance(t, torch.Tensor) for t in data):
            raise TypeError(
                "fit takes a BatchSource or a tuple of tensors such as (inputs, targets), "
                f"got {type(data).__name__}"
            )
        check_finite_inputs("the inputs", data[0])
        classes = len(data) == 2 and self.loss_fn is per_sample_cross_entropy
        check_model_inputs(self.models[0], data[0], data[1] if classes else None, self.forward)
        return self.tensor_batches(data).to(self.device, self.options.channels_last)

    def tensor_batches(self, tensors: Sequence[torch.Tensor]) -> BatchSource:
        """The default source over checked tensors."""
        return TensorBatches(*tensors, batch_size=self.batch_size)

    def fit(
        self,
        data: BatchSource | Sequence[torch.Tensor],
        epochs: int,
        generator: torch.Generator | None = None,
        before_epoch: Callable[[int], None] | None = None,
        description: str = "train",
    ) -> list[float]:
        """Train for ``epochs`` passes over ``data`` (a :class:`BatchSource`, or aligned tensors
        ``(inputs, targets, ...)``), shuffled by ``generator``; returns each epoch's mean loss.
        ``before_epoch(epoch)`` runs before each epoch (e.g. to switch negation); calling ``fit``
        again continues :attr:`global_step`."""
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(
                f"generator must be a torch.Generator or None, got {type(generator).__name__}"
            )
        return self.run_epochs(data, epochs, generator, before_epoch, description)[0]

    def run_epochs(
        self,
        data: BatchSource | Sequence[torch.Tensor],
        epochs: int,
        shuffle: Any,
        before_epoch: Callable[[int], None] | None,
        description: str,
    ) -> list[list[float]]:
        """The loop of :meth:`fit` for every trained model; returns each model's epoch losses.
        ``shuffle`` is what the source's ``batches`` takes (a generator, or one per model)."""
        check_int("epochs", epochs, 0)
        source = self.batch_source(data)
        self.model.train()
        if self.captured is not None:
            self.captured.reset()  # the model may have changed since the last fit
        bar = tqdm(
            total=epochs * len(source), desc=description, disable=not self.progress, leave=False
        )
        epoch_losses = []
        for epoch in range(epochs):
            if before_epoch is not None:
                before_epoch(epoch)
                if self.captured is not None and self.options.capture_key is None:
                    self.captured.reset()
            total = torch.zeros(len(self.writers), device=self.device)
            for batch in source.batches(shuffle):
                loss = self.step(batch)
                total += loss * self.batch_samples(batch)
                if self.global_step % self.options.log_every == 0:
                    values = loss.reshape(-1).tolist()
                    self._log(values, "loss")
                    bar.set_postfix(loss=f"{sum(values) / len(values):.4f}", epoch=epoch + 1)
                bar.update()
            epoch_losses.append([value / source.samples for value in total.tolist()])
            self._log(epoch_losses[-1], "epoch_loss")
        bar.close()
        return [[epoch[k] for epoch in epoch_losses] for k in range(len(self.writers))]

    def batch_samples(self, batch: Batch) -> int:
        """Samples per model in ``batch`` (the weight of its loss in the epoch's mean)."""
        return len(batch[0])

    def _log(self, values: list[float], name: str) -> None:
        for writer, value in zip(self.writers, values, strict=True):
            if writer is not None:
                writer.add_scalar(f"{self.options.tag}/{name}", value, self.global_step)


@dataclass
class Trained(Generic[ModelT]):
    """A model trained by a schedule, with each phase's epoch losses and the step its curve
    ended on (the next phase's ``global_step``)."""

    model: ModelT
    losses: list[list[float]]
    global_step: int


def train_prefixes(
    schedules: Mapping[str, tuple[Hashable, ...]],
    initial: ResultT,
    train: Callable[[str, tuple[Hashable, ...], ResultT], ResultT],
) -> dict[str, ResultT]:
    """Train every named schedule of phases, each distinct prefix once: ``train(name, prefix,
    parent)`` continues ``parent``, the result of ``prefix[:-1]`` (``initial`` for the first
    phase). Returns each name's result."""
    done: dict[tuple[Hashable, ...], ResultT] = {(): initial}
    for name, phases in schedules.items():
        for depth in range(1, len(phases) + 1):
            if phases[:depth] not in done:
                done[phases[:depth]] = train(name, phases[:depth], done[phases[: depth - 1]])
    return {name: done[phases] for name, phases in schedules.items()}
