"""Negative-action DQN: a DQN whose policy forbids the actions it judges worst."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3.common.policies import BasePolicy

from neg_agents.common.dqn_base import NegDQNBase
from neg_agents.neg_action_dqn.policies import (
    DEFAULT_RULE,
    ForbiddingRule,
    MlpPolicy,
    NegActionDQNPolicy,
)


class NegActionDQN(NegDQNBase):
    """DQN whose policy knows which actions are bad and never picks one of them: "where no action
    is right, pick the one that is least wrong" (negative actions, the negdl brief, section 2;
    related: action elimination, Zahavy et al. 2018, https://arxiv.org/abs/1809.02121).

    The rule (:class:`~neg_agents.neg_action_dqn.policies.ForbiddingRule`) forbids the
    ``num_forbidden`` lowest-valued actions and every action more than ``margin`` below the best
    (never the best), then takes ``prefer`` if allowed, else samples uniformly among the allowed;
    ``predict(obs, deterministic=True)`` returns the best action. Exploration (DQN's epsilon)
    samples among all but the ``num_forbidden`` worst actions, after ``learning_starts`` uniform
    steps as in every SB3 algorithm. With ``shield=True`` (or masks given to ``predict``) the rule
    ranks only the actions the env's ``action_masks()`` allows. The TD target's ``V(s')`` is the
    target network's value of the rule's choice (expected SARSA for this policy).

    ``margin``, ``num_forbidden`` (0 to n - 1) and ``prefer`` (None: uniform, the source's rule)
    make one :class:`ForbiddingRule` (their meaning), ``self.rule``, which the policy applies and
    ``save``/``load`` round-trip. ``policy`` is ``"MlpPolicy"`` or a ``NegActionDQNPolicy``
    subclass; every other argument is :class:`~neg_agents.common.dqn_base.NegDQNBase`'s.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy}
    policy: NegActionDQNPolicy

    def __init__(
        self,
        policy: str | type[NegActionDQNPolicy],
        env: Any,
        margin: float = DEFAULT_RULE.margin,
        num_forbidden: int = DEFAULT_RULE.num_forbidden,
        prefer: int | None = DEFAULT_RULE.prefer,
        **kwargs: Any,
    ) -> None:
        # _setup_model (run by DQN.__init__) hands the rule to the policy.
        self.rule = ForbiddingRule(margin, num_forbidden, prefer)
        super().__init__(policy, env, **kwargs)

    @property
    def margin(self) -> float:
        return self.rule.margin

    @property
    def num_forbidden(self) -> int:
        return self.rule.num_forbidden

    @property
    def prefer(self) -> int | None:
        return self.rule.prefer

    def _setup_model(self) -> None:
        self._check_policy_class(
            NegActionDQNPolicy, "it is the policy that applies the forbidding rule"
        )
        if "margin" in self.__dict__:  # saved before ForbiddingRule, as two attributes
            saved = self.__dict__
            self.rule = ForbiddingRule(saved.pop("margin"), saved.pop("num_forbidden"))
        self.rule.check_actions(int(self.action_space.n))
        kwargs = dict(self.policy_kwargs)
        expected = {"rule": self.rule, "margin": self.margin, "num_forbidden": self.num_forbidden}
        for name, value in expected.items():
            given = kwargs.pop(name, value)
            if given != value:
                raise ValueError(
                    f"pass margin and num_forbidden to NegActionDQN, not in policy_kwargs "
                    f"({name}={given!r} there)"
                )
        self.policy_kwargs = {**kwargs, "rule": self.rule}
        super()._setup_model()

    def next_state_values(self, next_observations: th.Tensor) -> th.Tensor:
        """Target-network value of each next state under the rule's choice: the preferred
        action's where the rule allows it, else the mean over the allowed actions."""
        q_values = self.q_net_target(next_observations)
        return (q_values * self.rule.policy_weights(q_values)).sum(dim=1)

    def actions(self, observation: Any, deterministic: bool, action_masks: Any) -> np.ndarray:
        """The rule's actions, among those ``action_masks`` allows (both rules hold, the env's
        and the agent's own), exploring with the current epsilon unless ``deterministic``:
        unlike ``DQN.predict``, per env and within the rule. On its own the policy never
        explores: it is the pure rule."""
        self.policy.exploration_rate = 0.0 if deterministic else self.exploration_rate
        try:
            if action_masks is not None:
                return self.policy.masked_predict(observation, action_masks, deterministic)
            if self.lean_predict_applies(observation):
                return self.policy_actions(observation, deterministic)
            return self.policy.predict(observation, deterministic=deterministic)[0]
        finally:
            self.policy.exploration_rate = 0.0
