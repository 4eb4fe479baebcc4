"""Output heads that map a Q-network's last linear layer to action values <= 0.

A head is a module with ``extra_outputs`` (how many more numbers than actions it needs from the
last linear layer) whose ``forward`` turns ``(batch, n_actions + extra_outputs)`` into
``(batch, n_actions)`` values that are never positive.
"""

from __future__ import annotations

import torch as th
from torch import nn
from torch.nn import functional as F


class NegativeAbs(nn.Module):
    """``-|x|``: every value <= 0 with the resolution and the unit gradient of a linear head.

    A punishment of 0.01 (one move) is a change of 0.01 in ``x`` wherever ``x`` is, so it never
    drowns, and the gradient never vanishes.
    """

    extra_outputs = 0

    def forward(self, x: th.Tensor) -> th.Tensor:
        return -x.abs()


class NegativeSoftplus(nn.Module):
    """``-softplus(x)``, negdl's first head, kept for comparison.

    It saturates: a value near 0 needs a strongly negative ``x``, where the gradient is as small
    as the value itself, so Q-values of about -1e-8 hide the 0.01 cost of a move and stop
    learning (measured in ``docs/agents/ablation.md``).
    """

    extra_outputs = 0

    def forward(self, x: th.Tensor) -> th.Tensor:
        return -F.softplus(x)


class NonPositiveDueling(nn.Module):
    """Dueling values (Wang et al. 2016, https://arxiv.org/abs/1511.06581) that are <= 0:
    ``Q(s, a) = -|v(s)| - (max_b A(s, b) - A(s, a))``.

    The state value ``-|v|`` is the best action's value and every other action sits below it by
    its advantage gap, so small differences between actions (a move's 0.01) have their own
    outputs instead of being the difference of two large values.
    """

    extra_outputs = 1

    def forward(self, x: th.Tensor) -> th.Tensor:
        value, advantage = x[:, :1], x[:, 1:]
        return -value.abs() - (advantage.max(dim=1, keepdim=True).values - advantage)


#: Head names accepted by ``NonPositiveDQNPolicy(q_head=...)``.
HEADS: dict[str, type[nn.Module]] = {
    "abs": NegativeAbs,
    "dueling": NonPositiveDueling,
    "softplus": NegativeSoftplus,
}


def make_head(name: str) -> nn.Module:
    """The head called ``name`` (a key of :data:`HEADS`), or a clear error."""
    try:
        return HEADS[name]()
    except KeyError:
        raise ValueError(f"q_head must be one of {sorted(HEADS)}, got {name!r}") from None
