"""Output heads that map a Q-network's last linear layer to action values <= 0.

A head is a module with ``extra_outputs`` (how many more numbers than actions it needs from the
last linear layer) whose ``forward`` turns ``(batch, n_actions + extra_outputs)`` into
``(batch, n_actions)`` values that are never positive where the agent uses them (acting and the
TD target), and whose ``preference`` says which action the greedy policy takes (the values
themselves, unless ties need breaking).
"""

from __future__ import annotations

import torch as th
from torch import nn
from torch.nn import functional as F


class NonPositiveHead(nn.Module):
    """Base of the heads: ``preference`` ranks actions by their values."""

    extra_outputs = 0

    def preference(self, x: th.Tensor) -> th.Tensor:
        """What the greedy policy maximises, ``(batch, n_actions)``."""
        return self(x)


class NonPositiveClamp(NonPositiveHead):
    """A linear head whose values are projected onto ``Q <= 0`` wherever they are used.

    In evaluation mode (acting, and the target network that makes the TD target) the values are
    ``min(x, 0)``: no return can be positive, so a value above 0 is an error and reads as 0, and
    the TD target is never positive. In training mode (the online network inside a gradient
    step) the head returns ``x`` itself, so the regression onto those targets sees errors of
    both signs and learns exactly as a linear head does: no saturation (``-softplus``), no
    folding of errors below 0 (``-|x|``), and no flat region where a value above 0 could drift
    without a gradient (which a clamp in the loss would leave; measured in
    ``docs/agents/ablation/``). Actions whose values clamp to the same 0 are ranked by ``x``
    (``preference``): the same order as the values, with their ties broken.
    """

    def forward(self, x: th.Tensor) -> th.Tensor:
        return x if self.training else x.clamp(max=0.0)

    def preference(self, x: th.Tensor) -> th.Tensor:
        return x


class NegativeAbs(NonPositiveHead):
    """``-|x|``: every value <= 0 with the unit gradient of a linear head.

    A punishment of 0.01 (one move) is a change of 0.01 in ``x`` wherever ``x`` is and the
    gradient never vanishes, but near 0 errors of both signs fold below 0: an action worth 0
    reads as ``-|error|``, which can rank a free "stay" below a move.
    """

    def forward(self, x: th.Tensor) -> th.Tensor:
        return -x.abs()


class NegativeSoftplus(NonPositiveHead):
    """``-softplus(x)``, negdl's first head, kept for comparison.

    It saturates: a value near 0 needs a strongly negative ``x``, where the gradient is as small
    as the value itself, so Q-values near 0 can hide the 0.01 cost of a move. At a constant
    learning rate it ended far behind the clamp head; with the unshielded agents' decaying rate
    two seeds do not separate them (``docs/agents/ablation/ablation.md``).
    """

    def forward(self, x: th.Tensor) -> th.Tensor:
        return -F.softplus(x)


class NonPositiveDueling(NonPositiveHead):
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
HEADS: dict[str, type[NonPositiveHead]] = {
    "abs": NegativeAbs,
    "clamp": NonPositiveClamp,
    "dueling": NonPositiveDueling,
    "softplus": NegativeSoftplus,
}


def make_head(name: str) -> NonPositiveHead:
    """The head called ``name`` (a key of :data:`HEADS`), or a clear error."""
    try:
        return HEADS[name]()
    except KeyError:
        raise ValueError(f"q_head must be one of {sorted(HEADS)}, got {name!r}") from None
