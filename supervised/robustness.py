"""Robustness evaluation: accuracy under attack, the FGSM eps sweep, and transfer matrices."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from supervised.attacks import FGSM, Attack
from supervised.data.common import LabelledImages
from supervised.evaluation import evaluate_models
from supervised.training import evaluating, prepare_inputs


def adversarial_set(attack: Attack, data: LabelledImages) -> LabelledImages:
    """``data`` with every image replaced by its adversarial copy (labels unchanged)."""
    return data.with_images(attack(data.images, data.labels))


def accuracy_under_attack(model: nn.Module, attack: Attack, data: LabelledImages) -> float:
    """Accuracy (%) of ``model`` on adversarial copies of ``data`` made by ``attack``."""
    return evaluate_models({"model": model}, {"adv": adversarial_set(attack, data)})["model"]["adv"]


def fgsm_sweep(
    model: nn.Module,
    data: LabelledImages,
    eps_values: Sequence[float],
    batch_size: int = 250,
    device: torch.device | str | None = None,
) -> dict[float, float]:
    """White-box FGSM accuracy (%) of ``model`` for every eps in ``[0, 1]``, in one pass over
    ``data``: the gradient sign does not depend on eps, so each batch's gradient is computed once
    and every eps costs one forward pass; results equal separate :class:`FGSM` runs."""
    if not eps_values:
        raise ValueError("eps_values must name at least one eps")
    attacks = [FGSM(model, eps, batch_size=batch_size, device=device) for eps in eps_values]
    attack = attacks[0]
    attack.check_inputs(data.images, data.labels)
    correct = dict.fromkeys(eps_values, 0)
    with evaluating(model):
        for start in range(0, len(data), batch_size):
            images = prepare_inputs(data.images[start : start + batch_size], attack.device)
            labels = data.labels[start : start + batch_size].to(attack.device)
            with torch.enable_grad():
                direction = attack.direction(images, labels)
            with torch.no_grad():
                for eps in eps_values:
                    predicted = model(attack.step(images, direction, eps)).argmax(1)
                    correct[eps] += int((predicted == labels).sum().item())
    return {eps: 100.0 * hits / len(data) for eps, hits in correct.items()}


def transfer_matrix(
    models: Mapping[str, nn.Module],
    make_attack: Callable[[nn.Module], Attack],
    data: LabelledImages,
    batch_size: int = 1000,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Black-box transfer: accuracy ``matrix[donor][target]`` (%) of every named model on
    examples ``make_attack(donor)`` crafted; the diagonal is the white-box accuracy.
    ``progress`` is called with each donor's name before it is attacked."""
    if len(models) < 1:
        raise ValueError("transfer_matrix needs at least one model")
    matrix = {}
    for donor, model in models.items():
        if progress is not None:
            progress(donor)
        adversarial = adversarial_set(make_attack(model), data)
        scores = evaluate_models(models, {"adv": adversarial}, batch_size)
        matrix[donor] = {target: by_set["adv"] for target, by_set in scores.items()}
    return matrix
