"""Many models at once: K copies of one architecture trained and evaluated in one vectorised step.

The K models' parameters are stacked into ``(K, ...)`` tensors and run under ``torch.func.vmap``,
so K small steps become one step of K-times larger kernels. Each model draws its own shuffle, the
per-model losses are summed before the backward pass and one elementwise optimiser
(:data:`ELEMENTWISE_OPTIMIZERS`) equals K optimisers, so each model follows its own trajectory up
to floating-point reassociation. The forward runs through the **first** model's code and Python
state (negation switch, train/eval mode), so all must be in the same state. Dropout draws
independent numbers per model, but not those a separate run would draw. Stacked conv weights are
5-D, so channels-last does not apply to them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from negdl.checks import check_int
from supervised.context import DEFAULT_CONTEXT, RunContext
from supervised.data.common import LabelledImages
from supervised.evaluation import accuracy, batched_forward, check_test_sets, model_device
from supervised.runtime import select_device
from supervised.training import (
    DEFAULT_OPTIONS,
    Batch,
    BatchSource,
    LossFn,
    LossReducer,
    TensorBatches,
    Trainer,
    TrainerOptions,
    evaluating,
    iterate_batches,
    per_sample_cross_entropy,
)

#: Optimisers whose update of each element depends only on that element's history, so that one
#: instance over stacked tensors is exactly K instances over the separate models.
ELEMENTWISE_OPTIMIZERS: tuple[type[torch.optim.Optimizer], ...] = (
    torch.optim.SGD,
    torch.optim.Adam,
    torch.optim.AdamW,
    torch.optim.Adamax,
    torch.optim.NAdam,
    torch.optim.RAdam,
    torch.optim.RMSprop,
    torch.optim.Adagrad,
)


def _signature(model: nn.Module) -> list[tuple]:
    return [
        ("parameter", name, tuple(value.shape), value.dtype, value.requires_grad)
        for name, value in model.named_parameters()
    ] + [("buffer", name, tuple(value.shape), value.dtype) for name, value in model.named_buffers()]


def check_stackable(models: Sequence[nn.Module]) -> None:
    """Raise ``ValueError`` unless ``models`` can be stacked: at least one, all of one class,
    the same parameter and buffer names, shapes, dtypes and trainable flags, the same
    train/eval modes."""
    if not models:
        raise ValueError("stacking needs at least one model")
    first, signature = models[0], _signature(models[0])
    modes = [module.training for module in first.modules()]
    for index, model in enumerate(models[1:], start=1):
        if type(model) is not type(first):
            raise ValueError(
                f"model {index} is a {type(model).__name__}, model 0 a {type(first).__name__}; "
                "only copies of one architecture stack"
            )
        if _signature(model) != signature:
            raise ValueError(
                f"model {index} differs from model 0 in its parameters or buffers (names, shapes, "
                "dtypes or which ones train); freeze or reset every model the same way"
            )
        if [module.training for module in model.modules()] != modes:
            raise ValueError(
                f"model {index} is not in model 0's train/eval mode; call train() or eval() on all"
            )


class _Method(nn.Module):
    """Calls one method of ``model`` (e.g. ``classify``) as this module's forward, so that
    ``functional_call`` can run it with swapped-in tensors."""

    def __init__(self, model: nn.Module, method: str) -> None:
        super().__init__()
        if not callable(getattr(model, method, None)):
            raise ValueError(f"{type(model).__name__} has no method {method!r}")
        self.model, self.method = model, method

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return getattr(self.model, self.method)(*inputs)


class ModelStack:
    """K models' parameters and buffers as ``(K, ...)`` tensors (on ``device``, the first
    model's by default), callable as one vectorised model. :meth:`store` writes the stack back
    into the models and :meth:`load` refreshes it in place, so an optimiser over it stays valid."""

    def __init__(
        self, models: Sequence[nn.Module], device: torch.device | str | None = None
    ) -> None:
        check_stackable(models)
        self.device = model_device(models[0]) if device is None else select_device(device)
        self.models = [model.to(self.device) for model in models]
        self.params, self.buffers = stack_module_state(self.models)

    @property
    def trainable(self) -> list[torch.Tensor]:
        """The stacked parameters that require gradients (for the optimiser)."""
        return [value for value in self.params.values() if value.requires_grad]

    def _rows(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Each model's parameter or buffer with its row of the stack."""
        for stacked, states in ((self.params, "named_parameters"), (self.buffers, "named_buffers")):
            for index, model in enumerate(self.models):
                for name, value in getattr(model, states)():
                    yield value, stacked[name][index]

    @torch.no_grad()
    def load(self) -> None:
        """Copy every model's current parameters and buffers into the stack."""
        for value, row in self._rows():
            row.copy_(value)

    @torch.no_grad()
    def store(self) -> None:
        """Copy the stack back into every model's parameters and buffers."""
        for value, row in self._rows():
            value.copy_(row)

    def per_model(
        self,
        function: Callable[..., torch.Tensor],
        method: str = "forward",
        shared_inputs: bool = False,
    ) -> Callable[..., torch.Tensor]:
        """``function(outputs, *rest)`` of each model, vectorised over the stack: the result maps
        ``(inputs, *rest)`` of shape ``(K, B, ...)`` to ``function(model_k.<method>(inputs[k]),
        *rest[k])`` stacked over k. With ``shared_inputs``, ``inputs`` is one ``(B, ...)`` batch
        for every model (a conv then runs once with the K models' kernels side by side)."""
        target = self.models[0] if method == "forward" else _Method(self.models[0], method)
        prefix = "" if method == "forward" else "model."
        params = {prefix + name: value for name, value in self.params.items()}
        buffers = {prefix + name: value for name, value in self.buffers.items()}

        def one_model(
            params: dict[str, torch.Tensor],
            buffers: dict[str, torch.Tensor],
            inputs: torch.Tensor,
            *rest: torch.Tensor,
        ) -> torch.Tensor:
            return function(functional_call(target, (params, buffers), (inputs,)), *rest)

        def vectorised(inputs: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
            in_dims = (0, 0, None if shared_inputs else 0, *(0,) * len(rest))
            return vmap(one_model, in_dims, randomness="different")(params, buffers, inputs, *rest)

        return vectorised


class StackedBatches(TensorBatches):
    """Batches for K models at once, each model shuffled by its own generator.

    A batch is a tuple of ``(K, B, ...)`` tensors: row k holds model k's minibatch. A tensor is
    either shared by every model (``(N, ...)``) or, where ``per_model`` says so, holds one slice
    per model (``(K, N, ...)``, e.g. features cached from each model's own extractor).
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        models: int,
        per_model: Sequence[bool] | None = None,
        batch_size: int = 64,
        shuffle: bool = True,
        drop_last: bool = False,
    ) -> None:
        check_int("models", models, 1)
        self.models = models
        self.per_model = tuple(per_model) if per_model is not None else (False,) * len(tensors)
        if len(self.per_model) != len(tensors):
            raise ValueError(
                f"per_model needs one flag per tensor, got {len(self.per_model)} for {len(tensors)}"
            )
        super().__init__(*tensors, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)

    def sample_counts(self, tensors: Sequence[torch.Tensor]) -> list[int]:
        """Samples per model of each tensor."""
        for index, (tensor, own) in enumerate(zip(tensors, self.per_model, strict=True)):
            if own and (tensor.ndim < 2 or len(tensor) != self.models):
                raise ValueError(
                    f"tensor {index} is per model, so its shape must start with {self.models} "
                    f"models, got {tuple(tensor.shape)}"
                )
        return [
            t.shape[1] if own else len(t) for t, own in zip(tensors, self.per_model, strict=True)
        ]

    def orders(self, generators: Sequence[torch.Generator | None] | None = None) -> torch.Tensor:
        """One epoch's sample order per model, ``(K, N)``: each row is the permutation
        :func:`supervised.training.iterate_batches` draws from that model's generator."""
        if not self.shuffle:
            return torch.arange(self.count).expand(self.models, self.count)
        if generators is None:
            generators = [None] * self.models
        if len(generators) != self.models:
            raise ValueError(f"need one generator per model ({self.models}), got {len(generators)}")
        return torch.stack([torch.randperm(self.count, generator=g) for g in generators])

    # One generator per model where TensorBatches takes one; StackedTrainer passes them through.
    def batches(  # type: ignore[override]
        self, generators: Sequence[torch.Generator] | None = None
    ) -> Iterator[Batch]:
        """The batches of one epoch, shuffled per model by ``generators`` (one per model)."""
        device = self.tensors[0].device
        orders = self.orders(generators).to(device)
        rows = torch.arange(self.models, device=device)[:, None]
        for start in range(0, self.samples, self.batch_size):
            index = orders[:, start : start + self.batch_size]
            yield tuple(
                tensor[rows, index] if own else tensor[index]
                for tensor, own in zip(self.tensors, self.per_model, strict=True)
            )

    def to(self, device: torch.device, channels_last: bool = False) -> StackedBatches:
        """These batches on ``device``, never channels-last (stacked conv weights are 5-D)."""
        return super().to(device, channels_last=False)


class StackedTrainer(Trainer):
    """:class:`supervised.training.Trainer` for K models of one architecture at once, in one
    vectorised (on CUDA, captured) fp32 step; each model's result equals training it alone with
    the same shuffles. ``context`` holds one writer (or None) per model.

    :param models: K models (see :func:`check_stackable`), which hold the weights after :meth:`fit`.
    :param optimizer: builds one of :data:`ELEMENTWISE_OPTIMIZERS` from the stacked tensors, e.g.
        ``lambda params: torch.optim.SGD(params, lr=0.01, momentum=0.5)``.
    :param method: the models' method a batch's first tensor goes through (``"classify"`` to
        train heads on cached features).
    """

    def __init__(
        self,
        models: Sequence[nn.Module],
        optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
        loss_fn: LossFn = per_sample_cross_entropy,
        method: str = "forward",
        reducer: LossReducer | None = None,
        batch_size: int = 64,
        context: RunContext = DEFAULT_CONTEXT,
        options: TrainerOptions = DEFAULT_OPTIONS,
    ) -> None:
        self.stack = ModelStack(models, select_device(context.device))
        built = optimizer(self.stack.trainable)
        if not isinstance(built, ELEMENTWISE_OPTIMIZERS):
            raise ValueError(
                f"{type(built).__name__} is not an elementwise optimiser, so one instance "
                "over stacked tensors would couple the models; use one of "
                + ", ".join(cls.__name__ for cls in ELEMENTWISE_OPTIMIZERS)
            )
        first = self.stack.models[0]
        super().__init__(
            nn.ModuleList(self.stack.models),
            built,
            loss_fn,
            forward=first if method == "forward" else _Method(first, method),
            reducer=reducer,
            batch_size=batch_size,
            context=replace(context, device=self.stack.device),
            options=replace(options, amp=False, channels_last=False),
        )
        self.losses = self.stack.per_model(
            lambda outputs, *rest: self.reducer(loss_fn(outputs, *rest)), method
        )

    @property
    def models(self) -> list[nn.Module]:
        """The trained models."""
        return self.stack.models

    def trainable_tensors(self) -> list[torch.Tensor]:
        return self.stack.trainable

    def compute_loss(self, batch: Batch) -> torch.Tensor:
        """Each model's reduced loss on its rows of ``batch``, shape ``(K,)``."""
        return self.losses(*batch)

    def reduced_loss(self, batch: Batch) -> torch.Tensor:
        return self.compute_loss(batch)  # reduced per model inside the vectorised call

    def batch_samples(self, batch: Batch) -> int:
        return batch[0].shape[1]

    def tensor_batches(self, tensors: Sequence[torch.Tensor]) -> StackedBatches:
        return StackedBatches(*tensors, models=len(self.models), batch_size=self.batch_size)

    def batch_source(self, data: BatchSource | Sequence[torch.Tensor]) -> StackedBatches:
        """``data`` on the training device; tensors become :class:`StackedBatches` shared by all."""
        source = super().batch_source(data)
        if not isinstance(source, StackedBatches) or source.models != len(self.models):
            raise ValueError(
                f"the batches must be StackedBatches for {len(self.models)} models, got "
                f"{getattr(source, 'models', type(source).__name__)}"
            )
        return source

    # One generator and one loss list per model, where Trainer.fit takes and returns one.
    def fit(  # type: ignore[override]
        self,
        data: StackedBatches | Sequence[torch.Tensor],
        epochs: int,
        generators: Sequence[torch.Generator] | None = None,
        before_epoch: Callable[[int], None] | None = None,
        description: str = "train",
    ) -> list[list[float]]:
        """Train every model for ``epochs`` passes over ``data`` (:class:`StackedBatches`, or
        tensors shared by every model), each shuffled by its own generator; returns each model's
        epoch losses. The models' weights are loaded into the stack first and written back after."""
        source = self.batch_source(data)
        self.model.train()
        check_stackable(self.models)
        self.stack.load()
        losses = self.run_epochs(source, epochs, generators, before_epoch, description)
        self.stack.store()
        return losses


@torch.no_grad()
def predict_stacked(
    models: Sequence[nn.Module],
    inputs: torch.Tensor,
    method: str = "forward",
    per_model: bool = False,
    batch_size: int = 1000,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Outputs ``(K, N, ...)`` of every model's ``method`` (e.g. ``"features"``, ``"classify"``),
    in eval mode, one vectorised pass per batch, on ``device`` (the first model's by default).

    :param inputs: ``(N, ...)`` shared by all models, or ``(K, N, ...)`` with ``per_model``.
    """
    if per_model and len(inputs) != len(models):
        raise ValueError(
            f"per-model inputs need {len(models)} slices, got shape {tuple(inputs.shape)}"
        )
    with evaluating(*models):
        if len(models) == 1:  # nothing to stack: the model's own forward, as evaluation runs it
            target = model_device(models[0]) if device is None else select_device(device)
            forward = getattr(models[0].to(target), method)
            inputs = inputs[0] if per_model else inputs
            return batched_forward(forward, inputs, batch_size, target)[None]
        stack = ModelStack(models, device)
        call = stack.per_model(lambda outputs: outputs, method, shared_inputs=not per_model)
        inputs = inputs.to(stack.device)
        count = inputs.shape[1] if per_model else len(inputs)
        batches = iterate_batches(count, batch_size, shuffle=False, device=stack.device)
        return torch.cat([call(inputs[:, i] if per_model else inputs[i]) for i in batches], dim=1)


def evaluate_stacked(
    models: Sequence[nn.Module],
    test_sets: Mapping[str, LabelledImages],
    batch_size: int = 1000,
    device: torch.device | str | None = None,
) -> list[dict[str, float]]:
    """Accuracy (%) of every model on every named test set, all models in one pass per batch."""
    check_test_sets(test_sets)
    results: list[dict[str, float]] = [{} for _ in models]
    for name, data in test_sets.items():
        logits = predict_stacked(models, data.images, batch_size=batch_size, device=device)
        for result, model_logits in zip(results, logits, strict=True):
            result[name] = accuracy(model_logits, data.labels)
    return results
