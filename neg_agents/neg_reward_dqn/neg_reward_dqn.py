"""Negative-reward DQN: DQN that knows every return is a punishment."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.dqn import DQN

from neg_agents.neg_reward_dqn.policies import MlpPolicy, NonPositiveDQNPolicy


class PositiveRewardError(ValueError):
    """An environment handed a reward > 0 to an agent that assumes punishments only."""


class NegRewardDQN(DQN):
    """Deep Q-Network for punishment-only environments (every reward <= 0).

    Because no reward is positive, no return is positive, so every true Q-value is <= 0.
    The Q-network encodes that prior with a ``-softplus`` output head
    (:class:`~neg_agents.neg_reward_dqn.policies.NonPositiveQNetwork`), used by the online
    network, the target network (hence the TD target) and for acting. A positive reward from the
    environment raises :class:`PositiveRewardError`: wrap such an env in
    ``neg_envs.PunishmentOnlyWrapper`` first.

    DQN: Mnih et al. (2015), https://www.nature.com/articles/nature14236. Punishment-only
    learning: the negative-reward DQN of the negdl brief, section 2.

    Every argument is that of :class:`stable_baselines3.DQN` (same defaults); see there for
    ``:param learning_rate:``, ``buffer_size``, ``learning_starts``, ``batch_size``, ``tau``,
    ``gamma``, ``train_freq``, ``gradient_steps``, ``target_update_interval``, the
    ``exploration_*`` schedule and the rest. Tuned values for ``NegCollision-v0`` are in
    :data:`neg_agents.hyperparams.HYPERPARAMS`.

    :param policy: ``"MlpPolicy"`` or a subclass of ``NonPositiveDQNPolicy``.
    :param env: the environment (``GymEnv``, ``VecEnv`` or registered id) whose rewards are <= 0.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy}
    policy: NonPositiveDQNPolicy

    def __init__(self, policy: str | type[NonPositiveDQNPolicy], env: Any, **kwargs: Any) -> None:
        if isinstance(policy, type) and not issubclass(policy, NonPositiveDQNPolicy):
            raise TypeError(
                f"NegRewardDQN needs a NonPositiveDQNPolicy (or 'MlpPolicy'), got {policy.__name__}; "
                "its Q-values must be <= 0"
            )
        super().__init__(policy, env, **kwargs)

    def _store_transition(
        self,
        replay_buffer: ReplayBuffer,
        buffer_action: np.ndarray,
        new_obs: np.ndarray | dict[str, np.ndarray],
        reward: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        original = (
            self._vec_normalize_env.get_original_reward()
            if self._vec_normalize_env is not None
            else reward
        )
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
