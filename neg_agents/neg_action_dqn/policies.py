"""A Q-policy that forbids the actions it judges worst and picks uniformly among the rest."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.type_aliases import PyTorchObs

from neg_agents.common.masks import MaskablePolicy


def forbidden_actions(q_values: th.Tensor, margin: float, num_forbidden: int) -> th.Tensor:
    """The forbidding rule on ``q_values`` ``(batch, n)``, as ``(batch, n)`` bools: the
    ``num_forbidden`` lowest-valued actions and those more than ``margin`` below the best are
    forbidden, never the best (first on ties). See :class:`ForbiddingRule` for the arguments."""
    best = q_values.argmax(dim=1, keepdim=True)
    forbidden = q_values < q_values.gather(1, best) - margin
    if num_forbidden > 0:
        # Rank the best action last so it is never among the worst, even on ties.
        ranked = q_values.scatter(1, best, math.inf).argsort(dim=1, stable=True)
        forbidden.scatter_(1, ranked[:, :num_forbidden], True)
    return forbidden.scatter(1, best, False)


def _is_index(value: Any) -> bool:
    """Whether ``value`` is an integer >= 0 (a bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def sample_allowed(allowed: th.Tensor) -> th.Tensor:
    """One action per row, uniform over the ``True`` entries of ``allowed`` ``(batch, n)``."""
    return th.multinomial(allowed.float(), 1).reshape(-1)


@dataclass(frozen=True)
class ForbiddingRule:
    """Which actions a negative-action agent refuses (:func:`forbidden_actions` with its
    settings) and which it takes; ``NegActionDQN`` builds one, its policy applies it.

    :param margin: an action more than this far below the best value is forbidden, >= 0
        (``inf``: only ``num_forbidden`` decides).
    :param num_forbidden: how many of the worst actions are always forbidden, >= 0 (and below
        the number of actions, see :meth:`check_actions`).
    :param prefer: the action taken whenever the rule allows it, e.g. ``STAY`` (4) on
        NegCollision, the one that costs nothing; else uniform among the allowed ones. None:
        always uniform (the source's rule).
    """

    margin: float = 0.05
    num_forbidden: int = 1
    prefer: int | None = None

    def __post_init__(self) -> None:
        margin = self.margin
        # `not margin >= 0` refuses NaN as well.
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin >= 0:
            raise ValueError(f"margin must be a number >= 0 (inf allowed), got {margin!r}")
        if not _is_index(self.num_forbidden):
            raise ValueError(f"num_forbidden must be an integer >= 0, got {self.num_forbidden!r}")
        object.__setattr__(self, "margin", float(margin))
        if self.prefer is not None and not _is_index(self.prefer):
            raise ValueError(f"prefer must be None or an action index >= 0, got {self.prefer!r}")

    def check_actions(self, n_actions: int) -> None:
        """Raise a ``ValueError`` unless at least one of ``n_actions`` actions stays allowed
        and ``prefer`` is one of them."""
        if self.num_forbidden >= n_actions:
            raise ValueError(
                f"num_forbidden must be an integer in [0, {n_actions - 1}] for {n_actions} actions "
                f"(at least one action must stay allowed), got {self.num_forbidden!r}"
            )
        if self.prefer is not None and self.prefer >= n_actions:
            raise ValueError(
                f"prefer must be an action in [0, {n_actions - 1}] or None, got {self.prefer} "
                f"(an env without stay has {n_actions} actions: pass prefer=None)"
            )

    def choose(self, allowed: th.Tensor) -> th.Tensor:
        """One action per row of ``allowed`` ``(batch, n)``: ``prefer`` where allowed, else
        uniform among the allowed actions."""
        sampled = sample_allowed(allowed)
        if self.prefer is None:
            return sampled
        return th.where(allowed[:, self.prefer], self.prefer, sampled)

    def policy_weights(self, q_values: th.Tensor) -> th.Tensor:
        """The probability of each action under the rule's choice, ``(batch, n)``."""
        allowed = (~self(q_values)).to(q_values.dtype)
        uniform = allowed / allowed.sum(dim=1, keepdim=True)
        if self.prefer is None:
            return uniform
        preferred = th.zeros_like(uniform)
        preferred[:, self.prefer] = 1.0
        return th.where(allowed[:, self.prefer : self.prefer + 1] > 0, preferred, uniform)

    def __call__(self, q_values: th.Tensor) -> th.Tensor:
        """The forbidden actions of each row of ``q_values`` ``(batch, n)``, as bools."""
        return forbidden_actions(q_values, self.margin, self.num_forbidden)


#: The rule ``NegActionDQN`` and its policy use unless told otherwise.
DEFAULT_RULE = ForbiddingRule()


class NegActionDQNPolicy(MaskablePolicy):
    """``DQNPolicy`` that never picks a forbidden action: ``deterministic=False`` acts by
    :meth:`ForbiddingRule.choose`, ``deterministic=True`` takes the best action (always
    allowed). With probability ``exploration_rate`` (``NegActionDQN``'s epsilon) a stochastic
    step samples among every action but the ``num_forbidden`` worst.

    :param rule: the forbidding rule; the other arguments are ``DQNPolicy``'s.
    """

    action_space: spaces.Discrete  # DQNPolicy's only action space

    def __init__(self, *args: Any, rule: ForbiddingRule = DEFAULT_RULE, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        rule.check_actions(int(self.action_space.n))
        self.rule = rule
        self.exploration_rate = 0.0

    def _predict(self, obs: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self.choose(self.q_net(obs), deterministic)

    def choose(self, q_values: th.Tensor, deterministic: bool) -> th.Tensor:
        """The rule's actions ``(batch,)`` for ``q_values`` (see the class docstring)."""
        if deterministic:
            return q_values.argmax(dim=1).reshape(-1)
        exploring = th.rand(q_values.shape[0], device=q_values.device) < self.exploration_rate
        forbidden = self.rule(q_values)
        if bool(exploring.any()):  # exploring rows forbid only the worst
            worst_only = forbidden_actions(q_values, math.inf, self.rule.num_forbidden)
            forbidden = th.where(exploring[:, None], worst_only, forbidden)
        # Actions a mask ruled out (-inf, see masked_predict) stay out when exploring too.
        allowed = ~forbidden & (q_values > -math.inf)
        # Exploring rows stay uniform: preferring one action there would not explore.
        return th.where(exploring, sample_allowed(allowed), self.rule.choose(allowed))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "rule": self.rule}


MlpPolicy = NegActionDQNPolicy
