"""Negative-reward DQN: DQN that knows every return is a punishment."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy

from neg_agents.common.dqn_base import NegDQNBase
from neg_agents.neg_reward_dqn.policies import MlpPolicy, NonPositiveDQNPolicy


class PositiveRewardError(ValueError):
    """An environment handed a reward > 0 to an agent that assumes punishments only."""


class NegRewardDQN(NegDQNBase):
    """Deep Q-Network for punishment-only environments (every reward <= 0).

    No reward is positive, so no return and no true Q-value is: the Q-network encodes that prior
    with a non-positive output head
    (:class:`~neg_agents.neg_reward_dqn.policies.NonPositiveQNetwork`). A positive reward raises
    :class:`PositiveRewardError`: wrap such an env in ``neg_envs.PunishmentOnlyWrapper`` first.
    The negative-reward DQN of the negdl brief, section 2.

    The arguments are :class:`~neg_agents.common.dqn_base.NegDQNBase`'s; ``policy`` must be
    ``"MlpPolicy"`` or a subclass of ``NonPositiveDQNPolicy``.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy}
    policy: NonPositiveDQNPolicy

    def _setup_model(self) -> None:
        self._check_policy_class(NonPositiveDQNPolicy, "its Q-values must be <= 0")
        super()._setup_model()

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        super().train(gradient_steps, batch_size)
        # Back to the values the agent acts on (see heads.NonPositiveClamp), so that q_net(obs)
        # read between gradient steps or after learn() is <= 0.
        self.set_training_mode(False)

    def _store_transition(
        self,
        replay_buffer: ReplayBuffer,
        buffer_action: np.ndarray,
        new_obs: np.ndarray | dict[str, np.ndarray],
        reward: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        normalize = self._vec_normalize_env
        original = reward if normalize is None else normalize.get_original_reward()
        positive = np.flatnonzero(np.asarray(original) > 0)
        if positive.size:
            i = int(positive[0])
            raise PositiveRewardError(
                f"NegRewardDQN got a positive reward {float(original[i])} from env {i} at timestep "
                f"{self.num_timesteps}; it assumes punishments only (every reward <= 0). Wrap the env "
                "in neg_envs.PunishmentOnlyWrapper(env, mode='shift', max_reward=<largest step reward>) "
                "or mode='negative_part', or train stable_baselines3.DQN instead."
            )
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)
