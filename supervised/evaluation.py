"""Evaluation of named models on named test sets, batched on the device."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol, TypeGuard

import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from negdl.checks import check_int
from supervised.data.common import LabelledImages
from supervised.runtime import select_device
from supervised.training import (
    check_finite_inputs,
    evaluating,
    iterate_batches,
    prepare_inputs,
)


class FeatureClassifier(Protocol):
    """A model split into an extractor's ``features`` and the ``classify`` on top of them (a
    :class:`~supervised.models.NegatableClassifier`, a synergy model)."""

    extractor: nn.Module

    def eval(self) -> object: ...

    def features(self, inputs: torch.Tensor) -> torch.Tensor: ...

    def classify(self, features: torch.Tensor) -> torch.Tensor: ...


@torch.no_grad()
def batched_forward(
    forward: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    batch_size: int = 1000,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Outputs of ``forward`` (logits, features...) on all ``inputs``, in batches on ``device``;
    the caller puts the model in eval mode."""
    check_int("batch_size", batch_size, 1)
    check_finite_inputs("the inputs", inputs)
    device = select_device(device)
    inputs = prepare_inputs(inputs, device)
    outputs = [
        forward(inputs[index])
        for index in iterate_batches(len(inputs), batch_size, shuffle=False, device=device)
    ]
    return torch.cat(outputs).float()


@torch.no_grad()
def extract_features(
    model: FeatureClassifier,
    images: torch.Tensor,
    device: torch.device | str | None = None,
    batch_size: int = 1000,
) -> torch.Tensor:
    """The extractor's features (``model.features``, before any negation) of all ``images``, in
    eval mode: features are cached only from a fixed, frozen extractor."""
    model.eval()
    return batched_forward(model.features, images, batch_size, device)


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter (CPU for a model without parameters)."""
    return next((parameter.device for parameter in model.parameters()), torch.device("cpu"))


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy (%) of ``logits`` ``(N, classes)`` against ``labels`` ``(N,)``."""
    if logits.ndim != 2 or len(logits) != len(labels):
        raise ValueError(
            f"need logits (N, classes) and N labels, got {tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    return 100.0 * (logits.argmax(1) == labels.to(logits.device)).float().mean().item()


def check_test_sets(test_sets: Mapping[str, object]) -> None:
    """Refuse no test set at all, or one that is not :class:`LabelledImages` or is empty."""
    if not test_sets:
        raise ValueError("evaluation needs at least one named test set")
    for name, data in test_sets.items():
        if not isinstance(data, LabelledImages):
            raise ValueError(
                f"test set {name!r} must be LabelledImages, got {type(data).__name__}; "
                "wrap tensors as LabelledImages(images, labels, classes)"
            )
        if not len(data):
            raise ValueError(f"test set {name!r} is empty: an accuracy needs at least one image")


def _splits_into_features(model: nn.Module) -> TypeGuard[FeatureClassifier]:
    return all(hasattr(model, name) for name in ("features", "classify", "extractor"))


def _same_extractor(a: nn.Module, b: nn.Module) -> bool:
    if a is b:
        return True
    state_a, state_b = a.state_dict(), b.state_dict()
    return state_a.keys() == state_b.keys() and all(
        torch.equal(state_a[k], state_b[k].to(state_a[k].device)) for k in state_a
    )


def predict_models(
    models: Mapping[str, nn.Module],
    test_sets: Mapping[str, LabelledImages],
    batch_size: int = 1000,
    device: torch.device | str | None = None,
) -> dict[str, dict[str, torch.Tensor]]:
    """Logits of every model on every named test set in eval mode, on ``device`` (each model's
    own by default); models split into ``features`` and ``classify`` whose extractors are
    identical share one extractor pass per test set."""
    check_test_sets(test_sets)
    check_int("batch_size", batch_size, 1)
    for name, model in models.items():
        if not isinstance(model, nn.Module):
            raise ValueError(
                f"model {name!r} must be a torch.nn.Module, got {type(model).__name__}"
            )
    cache: list[tuple[FeatureClassifier, torch.device, dict[str, torch.Tensor]]] = []
    logits: dict[str, dict[str, torch.Tensor]] = {}
    for name, model in models.items():
        target = model_device(model) if device is None else select_device(device)
        inputs = {set_name: data.images for set_name, data in test_sets.items()}
        forward: Callable[[torch.Tensor], torch.Tensor] = model
        with evaluating(model):
            if _splits_into_features(model):
                forward = model.classify
                cached = (
                    c
                    for m, at, c in cache
                    if at == target and _same_extractor(m.extractor, model.extractor)
                )
                inputs = next(cached, {})
                if not inputs:  # no model before had this extractor
                    inputs = {
                        set_name: extract_features(model, data.images, target, batch_size)
                        for set_name, data in test_sets.items()
                    }
                    cache.append((model, target, inputs))
            logits[name] = {
                set_name: batched_forward(forward, inputs[set_name], batch_size, target)
                for set_name in test_sets
            }
    return logits


def evaluate_models(
    models: Mapping[str, nn.Module],
    test_sets: Mapping[str, LabelledImages],
    batch_size: int = 1000,
    device: torch.device | str | None = None,
    writer_for: Callable[[str], SummaryWriter | None] | None = None,
    step: int | Mapping[str, int] = 0,
    prefix: str = "eval",
) -> dict[str, dict[str, float]]:
    """Accuracy (%) of every named model on every named test set (as :func:`predict_models`).

    :param writer_for: TensorBoard writer for a model name; scalars ``<prefix>/<set>/accuracy``.
    :param step: global step of the scalars, one for all models or one per model name.
    """
    logits = predict_models(models, test_sets, batch_size, device)
    results: dict[str, dict[str, float]] = {}
    for name, by_set in logits.items():
        writer = writer_for(name) if writer_for is not None else None
        at = step[name] if isinstance(step, Mapping) else step
        results[name] = {}
        for set_name, outputs in by_set.items():
            results[name][set_name] = accuracy(outputs, test_sets[set_name].labels)
            if writer is not None:
                writer.add_scalar(f"{prefix}/{set_name}/accuracy", results[name][set_name], at)
    return results


def evaluate(
    model: nn.Module,
    test_sets: Mapping[str, LabelledImages],
    batch_size: int = 1000,
    device: torch.device | str | None = None,
    writer: SummaryWriter | None = None,
    step: int = 0,
    prefix: str = "eval",
) -> dict[str, float]:
    """Accuracy (%) of ``model`` on each named test set, logged to ``writer`` (if any) as
    ``<prefix>/<name>/accuracy`` at ``step``; :func:`evaluate_models` for one model."""
    return evaluate_models(
        {"model": model}, test_sets, batch_size, device, lambda _: writer, step, prefix
    )["model"]
