"""Evaluation over several named test sets at once, batched on the device."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from supervised.data.common import LabelledImages
from supervised.runtime import select_device
from supervised.training import iterate_batches, prepare_inputs


@torch.no_grad()
def batched_forward(
    forward: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    batch_size: int = 1000,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Outputs of ``forward`` (logits, features...) on all ``inputs``, computed in batches on ``device``.

    The caller puts the model in eval mode; this only batches and moves data.
    """
    device = select_device(device)
    inputs = prepare_inputs(inputs, device)
    outputs = [
        forward(inputs[index])
        for index in iterate_batches(len(inputs), batch_size, shuffle=False, device=device)
    ]
    return torch.cat(outputs).float()


def evaluate(
    model: nn.Module,
    test_sets: Mapping[str, LabelledImages],
    batch_size: int = 1000,
    device: torch.device | str | None = None,
    writer: SummaryWriter | None = None,
    step: int = 0,
    prefix: str = "eval",
) -> dict[str, float]:
    """Accuracy (%) of ``model`` on each named test set, logged as ``<prefix>/<name>/accuracy``.

    The model is evaluated in eval mode and returned to its previous mode afterwards.

    :param model: maps images to logits.
    :param test_sets: e.g. ``{"full": test, "horizontal": occluded_test}``.
    :param batch_size: evaluation batch size.
    :param device: where to evaluate; the model's device by default.
    :param writer: optional TensorBoard writer.
    :param step: global step of the scalars.
    :param prefix: first part of the scalar keys.
    """
    if not test_sets:
        raise ValueError("evaluate needs at least one named test set")
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    results = {}
    try:
        for name, data in test_sets.items():
            predictions = batched_forward(model, data.images, batch_size, device).argmax(1)
            results[name] = (
                100.0 * (predictions == data.labels.to(predictions.device)).float().mean().item()
            )
            if writer is not None:
                writer.add_scalar(f"{prefix}/{name}/accuracy", results[name], step)
    finally:
        model.train(was_training)
    return results
