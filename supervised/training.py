"""The fit loop shared by every supervised model: tensors on the device, batched by indexing.

No per-sample ``Dataset``: the whole split lives on the device and each step gathers one
minibatch with an index tensor, which is what makes training fast on CPU and GPU alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from supervised.runtime import select_device

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def iterate_batches(
    count: int,
    batch_size: int,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    drop_last: bool = False,
) -> Iterator[torch.Tensor]:
    """Yield index tensors covering ``range(count)`` in minibatches.

    The permutation is drawn on the CPU generator so the order is the same on every device.

    :param count: number of samples.
    :param batch_size: samples per batch (the last one may be smaller unless ``drop_last``).
    :param shuffle: draw a fresh permutation; else keep the order.
    :param generator: source of the permutation (reproducible when seeded).
    :param device: where the index tensors live (the data's device).
    :param drop_last: skip a final incomplete batch.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    order = torch.randperm(count, generator=generator) if shuffle else torch.arange(count)
    order = order.to(device)
    stop = count - count % batch_size if drop_last else count
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


def prepare_inputs(
    inputs: torch.Tensor, device: torch.device, channels_last: bool = True
) -> torch.Tensor:
    """Move inputs to ``device``; images go channels-last, which conv kernels run faster on
    (about twice as fast for the MNIST net on CPU, see ``scripts/bench_supervised.py``)."""
    inputs = inputs.to(device)
    return (
        inputs.contiguous(memory_format=torch.channels_last)
        if channels_last and inputs.ndim == 4
        else inputs
    )


class Trainer:
    """Minibatch SGD over tensors, with progress bar, TensorBoard and mixed precision on CUDA.

    Later models change what a step computes by passing ``forward``/``loss_fn`` or by
    overriding :meth:`compute_loss`, not by copying the loop.

    :param model: the module whose parameters ``optimizer`` trains; moved to ``device``.
    :param optimizer: optimiser over the parameters to train.
    :param loss_fn: ``loss_fn(outputs, targets)``; cross-entropy by default.
    :param forward: maps an input batch to outputs; ``model`` by default (e.g. ``model.classify``
        to train a head on cached features).
    :param batch_size: samples per step.
    :param device: where to train; CUDA when present unless given.
    :param amp: float16 autocast with gradient scaling; default on for CUDA only.
    :param writer: TensorBoard writer; ``train/loss`` every ``log_every`` steps, ``train/epoch_loss``.
    :param log_every: steps between loss scalars.
    :param progress: show a tqdm bar.
    :param tag: prefix of the scalar keys (``<tag>/loss``).
    :param channels_last: store conv weights and image batches channels-last (faster kernels).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: LossFn = F.cross_entropy,
        forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
        batch_size: int = 64,
        device: torch.device | str | None = None,
        amp: bool | None = None,
        writer: SummaryWriter | None = None,
        log_every: int = 100,
        progress: bool = True,
        tag: str = "train",
        channels_last: bool = True,
    ) -> None:
        if batch_size <= 0 or log_every <= 0:
            raise ValueError(
                f"batch_size and log_every must be positive, got {batch_size}, {log_every}"
            )
        self.device = select_device(device)
        self.channels_last = channels_last
        memory_format = torch.channels_last if channels_last else torch.preserve_format
        self.model = model.to(self.device, memory_format=memory_format)
        self.optimizer, self.loss_fn = optimizer, loss_fn
        self.forward = forward if forward is not None else self.model
        self.batch_size, self.log_every, self.progress, self.tag = (
            batch_size,
            log_every,
            progress,
            tag,
        )
        self.amp = self.device.type == "cuda" if amp is None else amp
        if self.amp and self.device.type != "cuda":
            raise ValueError("amp=True needs a CUDA device; leave amp unset on CPU")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.writer = writer
        self.global_step = 0

    def compute_loss(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The loss of one batch; override for losses that are not ``loss_fn(forward(x), y)``."""
        return self.loss_fn(self.forward(inputs), targets)

    def step(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """One optimisation step on a batch; returns the detached loss."""
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            loss = self.compute_loss(inputs, targets)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.global_step += 1
        return loss.detach()

    def fit(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        epochs: int,
        generator: torch.Generator | None = None,
        before_epoch: Callable[[int], None] | None = None,
        description: str = "train",
    ) -> list[float]:
        """Train for ``epochs`` passes over ``(inputs, targets)``; returns each epoch's mean loss.

        :param inputs: all training inputs, first dimension the sample.
        :param targets: matching targets.
        :param epochs: passes over the data.
        :param generator: seeded generator for the shuffling.
        :param before_epoch: called with the epoch index before each epoch (e.g. to switch negation).
        :param description: progress-bar label.
        """
        if len(inputs) != len(targets) or len(inputs) == 0:
            raise ValueError(
                f"need matching, non-empty inputs and targets, got {len(inputs)} and {len(targets)}"
            )
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        inputs, targets = (
            prepare_inputs(inputs, self.device, self.channels_last),
            targets.to(self.device),
        )
        steps_per_epoch = -(-len(inputs) // self.batch_size)
        bar = tqdm(
            total=epochs * steps_per_epoch, desc=description, disable=not self.progress, leave=False
        )
        epoch_losses = []
        self.model.train()
        for epoch in range(epochs):
            if before_epoch is not None:
                before_epoch(epoch)
            total = torch.zeros((), device=self.device)
            for index in iterate_batches(
                len(inputs), self.batch_size, True, generator, self.device
            ):
                loss = self.step(inputs[index], targets[index])
                total += loss * len(index)
                if self.global_step % self.log_every == 0:
                    value = loss.item()
                    bar.set_postfix(loss=f"{value:.4f}", epoch=epoch + 1)
                    if self.writer is not None:
                        self.writer.add_scalar(f"{self.tag}/loss", value, self.global_step)
                bar.update()
            epoch_losses.append(total.item() / len(inputs))
            if self.writer is not None:
                self.writer.add_scalar(f"{self.tag}/epoch_loss", epoch_losses[-1], self.global_step)
        bar.close()
        return epoch_losses
