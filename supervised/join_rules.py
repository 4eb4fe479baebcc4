"""Join rules: how the outputs of several classifiers become one prediction.

A rule maps stacked member logits ``(batch, members, classes)`` to joined logits
``(batch, classes)`` (a softmax of them is the joined distribution). Synergy models join a
normal and a negative head with one; :class:`Ensemble` joins independent models. Rules are
small swappable modules, picked by name with :func:`make_join_rule`.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from negdl.checks import check_choice


class JoinRule(nn.Module):
    """Base class: checks the stacked member logits, subclasses hold only their rule."""

    #: The rule is trained on top of fixed members (learned fusion), so a model using it must
    #: have a frozen extractor.
    requires_frozen_members: bool = False

    def forward(self, member_logits: torch.Tensor) -> torch.Tensor:
        if member_logits.ndim != 3 or member_logits.shape[1] < 2:
            raise ValueError(
                "member_logits must be stacked as (batch, members >= 2, classes), got shape "
                f"{tuple(member_logits.shape)}"
            )
        return self.join(member_logits)

    @abstractmethod
    def join(self, member_logits: torch.Tensor) -> torch.Tensor:
        """Joined logits ``(batch, classes)``."""

    def config(self) -> dict[str, object]:
        """Constructor arguments that rebuild this rule with :func:`make_join_rule`."""
        return {}

    @property
    def rule_name(self) -> str:
        """This rule's name in :data:`JOIN_RULES`."""
        return next(name for name, cls in JOIN_RULES.items() if cls is type(self))


class SumRule(JoinRule):
    """Sum of the members' logits, each times its weight (one >= 0 per member; None: all 1)."""

    def __init__(self, weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if weights is not None and (len(weights) < 2 or min(weights) < 0):
            raise ValueError(f"weights need one value >= 0 per member (>= 2), got {weights}")
        self.weights = None if weights is None else tuple(float(w) for w in weights)

    def join(self, member_logits: torch.Tensor) -> torch.Tensor:
        if self.weights is None:
            return member_logits.sum(1)
        if len(self.weights) != member_logits.shape[1]:
            raise ValueError(
                f"{len(self.weights)} weights for {member_logits.shape[1]} members; give one each"
            )
        weights = member_logits.new_tensor(self.weights)
        return (member_logits * weights[None, :, None]).sum(1)

    def config(self) -> dict[str, object]:
        return {"weights": None if self.weights is None else list(self.weights)}

    def extra_repr(self) -> str:
        return f"weights={self.weights}"


class WeightedSumRule(SumRule):
    """The source's synergy: ``normal + omega * negative`` (the source tried omega 0.5, 1 and 2)."""

    def __init__(self, omega: float = 1.0) -> None:
        if omega < 0:
            raise ValueError(f"omega must be >= 0, got {omega}")
        super().__init__((1.0, omega))
        self.omega = float(omega)

    def config(self) -> dict[str, object]:
        return {"omega": self.omega}


class ProductRule(JoinRule):
    """Product of the members' probabilities (as logits: the sum of their log-softmax)."""

    def join(self, member_logits: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(member_logits, -1).sum(1)


class MeanProbabilityRule(JoinRule):
    """Averaging: the mean of the members' probabilities (returned as its logarithm)."""

    def join(self, member_logits: torch.Tensor) -> torch.Tensor:
        log_probs = F.log_softmax(member_logits, -1)
        return torch.logsumexp(log_probs, 1) - math.log(member_logits.shape[1])


class MostConfidentRule(JoinRule):
    """Max-ensemble: the member whose top softmax probability is highest decides alone (its
    log-probabilities; ties go to the earlier member)."""

    def join(self, member_logits: torch.Tensor) -> torch.Tensor:
        log_probs = F.log_softmax(member_logits, -1)
        chosen = log_probs.amax(-1).argmax(1)  # (batch,)
        return log_probs[torch.arange(len(log_probs), device=log_probs.device), chosen]


class LearnedFusion(JoinRule):
    """SynergyF: member logits as a ``(1, members, classes)`` image, a ``members x 1``
    convolution (``channels`` outputs) across members, then a linear layer to the classes.

    Trained briefly on top of fixed members. It starts as the plain sum of the members' logits,
    so training begins from the assembled synergy instead of from a random mix that a short
    training could not undo.
    """

    requires_frozen_members = True

    def __init__(self, num_classes: int, members: int = 2, channels: int = 1) -> None:
        super().__init__()
        if min(num_classes, channels) <= 0 or members < 2:
            raise ValueError(
                f"need num_classes > 0, members >= 2 and channels > 0, got {num_classes}, {members}, {channels}"
            )
        self.num_classes, self.members, self.channels = num_classes, members, channels
        self.conv = nn.Conv2d(1, channels, (members, 1))
        self.linear = nn.Linear(channels * num_classes, num_classes)
        bias = self.conv.bias
        assert bias is not None  # nn.Conv2d's default bias=True
        with torch.no_grad():
            self.conv.weight.fill_(1.0 / channels)
            bias.zero_()
            self.linear.weight.copy_(torch.eye(num_classes).repeat(1, channels))
            self.linear.bias.zero_()

    def config(self) -> dict[str, object]:
        return {"num_classes": self.num_classes, "members": self.members, "channels": self.channels}

    def join(self, member_logits: torch.Tensor) -> torch.Tensor:
        if member_logits.shape[1:] != (self.members, self.num_classes):
            raise ValueError(
                f"this fusion joins {self.members} members of {self.num_classes} classes, got "
                f"{tuple(member_logits.shape[1:])}"
            )
        return self.linear(self.conv(member_logits[:, None]).flatten(1))


#: Rules by name for :func:`make_join_rule` (and the scripts' ``--rules``).
JOIN_RULES: dict[str, type[JoinRule]] = {
    "sum": SumRule,
    "weighted": WeightedSumRule,
    "product": ProductRule,
    "mean": MeanProbabilityRule,
    "max": MostConfidentRule,
    "fusion": LearnedFusion,
}


def make_join_rule(name: str, **kwargs: object) -> JoinRule:
    """A join rule by name (one of :data:`JOIN_RULES`), with its constructor arguments."""
    return JOIN_RULES[check_choice("join rule", name, tuple(JOIN_RULES))](**kwargs)


class Ensemble(nn.Module):
    """At least two independent classifiers of the same classes joined by a rule, e.g. a
    max-ensemble vs averaging."""

    def __init__(self, members: Sequence[nn.Module], rule: JoinRule) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
        if not isinstance(rule, JoinRule):
            raise TypeError(f"rule must be a JoinRule, got {type(rule).__name__}")
        self.members, self.rule = nn.ModuleList(members), rule

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs = [member(inputs) for member in self.members]
        if len({output.shape for output in outputs}) != 1:
            raise ValueError(
                f"ensemble members disagree on the output shape: {[tuple(o.shape) for o in outputs]}"
            )
        return self.rule(torch.stack(outputs, 1))
