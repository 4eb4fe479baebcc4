"""Output heads that map a Q-network's last linear layer to action values <= 0; how they compare:
``docs/guide/agents.md``, the ablation."""

from __future__ import annotations

import torch as th
from torch import nn
from torch.nn import functional as F


class NonPositiveHead(nn.Module):
    """Base of the heads. A head's ``forward`` turns ``(batch, n_actions + extra_outputs)`` (the
    last linear layer) into ``(batch, n_actions)`` values never positive where the agent uses them
    (acting and the TD target); ``preference`` says which action the greedy policy takes (by
    default the values; heads that tie break the ties)."""

    extra_outputs = 0

    def preference(self, x: th.Tensor) -> th.Tensor:
        """What the greedy policy maximises, ``(batch, n_actions)``."""
        return self(x)


class NonPositiveClamp(NonPositiveHead):
    """A linear head whose values are projected onto ``Q <= 0`` wherever they are used.

    In evaluation mode (acting, and the target network that makes the TD target) the values are
    ``min(x, 0)``, so no TD target is positive. In training mode (the online network inside a
    gradient step) it returns ``x`` itself, so the regression sees errors of both signs and
    learns as a linear head does: no saturation (``-softplus``), no folding of errors below 0
    (``-|x|``), no flat region where a value above 0 drifts without a gradient (as a clamp in
    the loss would leave). Actions clamped to the same 0 are ranked by ``x`` (``preference``).
    """

    def forward(self, x: th.Tensor) -> th.Tensor:
        return x if self.training else x.clamp(max=0.0)

    def preference(self, x: th.Tensor) -> th.Tensor:
        return x


class NegativeAbs(NonPositiveHead):
    """``-|x|``: every value <= 0 with the unit gradient of a linear head, but near 0 errors of
    both signs fold below 0: an action worth 0 reads as ``-|error|``, which can rank a free
    "stay" below a move."""

    def forward(self, x: th.Tensor) -> th.Tensor:
        return -x.abs()


class NegativeSoftplus(NonPositiveHead):
    """``-softplus(x)``, negdl's first head, kept for comparison. It saturates: a value near 0
    needs a strongly negative ``x``, where the gradient is as small as the value itself, so
    Q-values near 0 can hide the 0.01 cost of a move."""

    def forward(self, x: th.Tensor) -> th.Tensor:
        return -F.softplus(x)


class NonPositiveDueling(NonPositiveHead):
    """Dueling values (Wang et al. 2016, https://arxiv.org/abs/1511.06581) that are <= 0:
    ``Q(s, a) = -|v(s)| - (max_b A(s, b) - A(s, a))``, so small differences between actions (a
    move's 0.01) have their own outputs instead of being the difference of two large values."""

    extra_outputs = 1

    def forward(self, x: th.Tensor) -> th.Tensor:
        value, advantage = x[:, :1], x[:, 1:]
        return -value.abs() - (advantage.max(dim=1, keepdim=True).values - advantage)


#: Head names accepted by ``NonPositiveDQNPolicy(q_head=...)``.
HEADS: dict[str, type[NonPositiveHead]] = {
    "abs": NegativeAbs,
    "clamp": NonPositiveClamp,
    "dueling": NonPositiveDueling,
    "softplus": NegativeSoftplus,
}
