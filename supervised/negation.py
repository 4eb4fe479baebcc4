"""Feature negation: map the features a conv block found *present* to features that are *absent*.

Each negation is a small module ``constant - x`` tied to the activations whose output range it
inverts (ReLU and sigmoid features lie in ``[0, 1]``-ish ranges, so ``1 - x``; tanh is symmetric,
so ``-x``; ReLU6 saturates at 6). A negation paired with another activation is rejected, since
it would not turn "strongly present" into "absent". Kernel negation is the alternative that
negates the last convolution's weights and bias instead.
"""

from __future__ import annotations

import torch
from torch import nn


class FeatureNegation(nn.Module):
    """Base class: ``forward(x) = constant - x`` for features from one of ``activations``."""

    constant: float = 1.0
    activations: tuple[type[nn.Module], ...] = ()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.constant - features

    def check_activation(self, activation: nn.Module) -> None:
        """Raise ``ValueError`` unless ``activation`` is one this negation is meant for."""
        if not isinstance(activation, self.activations):
            allowed = ", ".join(cls.__name__ for cls in self.activations)
            raise ValueError(
                f"{type(self).__name__} ({self.describe()}) does not match the extractor's output "
                f"activation {type(activation).__name__}; it is meant for {allowed}. Use "
                f"negation_for(activation) to get a matching negation."
            )

    def describe(self) -> str:
        return "-x" if self.constant == 0 else f"{self.constant:g} - x"

    def extra_repr(self) -> str:
        return self.describe()


class ReLUNegation(FeatureNegation):
    """``1 - x`` for ReLU features."""

    activations = (nn.ReLU,)


class SigmoidNegation(FeatureNegation):
    """``1 - x`` for sigmoid features (exactly the complement of a probability-like value)."""

    activations = (nn.Sigmoid,)


class LeakyReLUNegation(FeatureNegation):
    """``1 - x`` for LeakyReLU features (the source used slope 0.1)."""

    activations = (nn.LeakyReLU,)


class TanhNegation(FeatureNegation):
    """``-x`` for tanh features, whose range is symmetric around 0."""

    constant = 0.0
    activations = (nn.Tanh,)


class ReLU6Negation(FeatureNegation):
    """``6 - x`` or ``3 - x`` for ReLU6 features: the source found ``6 - x`` failed to converge
    in some modes while ``3 - x`` works (strongly present features must map below 0)."""

    activations = (nn.ReLU6,)

    def __init__(self, constant: float = 3.0) -> None:
        super().__init__()
        if isinstance(constant, bool) or constant not in (3.0, 6.0):
            raise ValueError(f"ReLU6Negation supports 6 - x and 3 - x, got constant {constant}")
        self.constant = float(constant)


_DEFAULT_FOR: dict[type[nn.Module], type[FeatureNegation]] = {
    negation.activations[0]: negation
    for negation in (ReLUNegation, SigmoidNegation, LeakyReLUNegation, TanhNegation, ReLU6Negation)
}


def negation_for(activation: nn.Module) -> FeatureNegation:
    """The default negation matching an activation module (``3 - x`` for ReLU6)."""
    if type(activation) in _DEFAULT_FOR:
        return _DEFAULT_FOR[type(activation)]()
    supported = ", ".join(cls.__name__ for cls in _DEFAULT_FOR)
    raise ValueError(
        f"no feature negation is defined for {type(activation).__name__}; supported: {supported}"
    )


@torch.no_grad()
def negate_last_conv_(module: nn.Module) -> nn.Conv2d:
    """Kernel negation: negate the weights and bias of the last ``Conv2d`` in ``module`` in
    place; returns that layer."""
    convs = [layer for layer in module.modules() if isinstance(layer, nn.Conv2d)]
    if not convs:
        raise ValueError(
            f"{type(module).__name__} has no Conv2d layer whose kernels could be negated"
        )
    last = convs[-1]
    last.weight.neg_()
    if last.bias is not None:
        last.bias.neg_()
    return last
