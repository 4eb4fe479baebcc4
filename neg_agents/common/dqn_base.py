"""The DQN all negdl agents build on: SB3's DQN with negdl's defaults and a TD-target hook."""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch as th
from gymnasium import Env
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.dqn.policies import DQNPolicy
from torch.nn import functional as F

from neg_agents.common.extractors import collision_policy_kwargs
from neg_agents.hyperparams import DQN_HYPERPARAMS as H
from neg_agents.hyperparams import EXTRACTOR_KWARGS


@contextlib.contextmanager
def quiet_n_step_reload() -> Iterator[None]:
    """Silence SB3's n-step warning while loading a saved model.

    On load SB3 takes its own ``NStepReplayBuffer`` (saved with the model) for a custom buffer
    and warns that ``n_steps`` is ignored, but the saved ``replay_buffer_kwargs`` still carry
    ``n_steps``, so nothing is lost.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`n_steps=\d+` is ignored because a custom")
        yield


class NegDQNBase(DQN):
    """SB3's DQN with defaults tuned for ``NegCollision-v0`` and an overridable bootstrap value.

    Subclasses change how the value of the next state is estimated (e.g. under a policy that
    forbids actions) by overriding :meth:`next_state_values`; everything else (replay, n-step
    returns, Huber loss, gradient clipping, target updates, logging keys) is SB3's DQN
    (Mnih et al. 2015, https://www.nature.com/articles/nature14236). The defaults come from
    :data:`neg_agents.hyperparams.DQN_HYPERPARAMS`, the one place they are set.

    :param policy: the policy class or its alias (``"MlpPolicy"``).
    :param env: the environment (``gym.Env``, ``VecEnv`` or a registered id).
    :param learning_rate: Adam learning rate, or a schedule of the remaining progress.
    :param buffer_size: replay buffer size.
    :param learning_starts: env steps of uniformly random actions before learning starts.
    :param batch_size: minibatch size per gradient step.
    :param tau: soft update coefficient (1: hard update).
    :param gamma: discount factor.
    :param train_freq: update every ``train_freq`` vec-env steps (or ``(n, "episode")``).
    :param gradient_steps: gradient steps per update (-1: as many as env steps collected).
    :param replay_buffer_class: replay buffer class (None: SB3's ``ReplayBuffer``).
    :param replay_buffer_kwargs: keyword arguments of the replay buffer.
    :param optimize_memory_usage: SB3's memory-efficient replay buffer.
    :param n_steps: n of the n-step returns stored in the replay buffer.
    :param target_update_interval: env steps between target network updates.
    :param exploration_fraction: share of training over which epsilon decays.
    :param exploration_initial_eps: epsilon at the start.
    :param exploration_final_eps: epsilon at the end of the decay.
    :param max_grad_norm: gradient clipping norm.
    :param stats_window_size: episodes averaged in the rollout logs.
    :param tensorboard_log: TensorBoard folder (None: none).
    :param policy_kwargs: policy arguments (None: ``DQN_HYPERPARAMS["policy_kwargs"]``). On a
        NegCollision env the features extractor defaults to ``ObstacleSetExtractor`` with
        ``EXTRACTOR_KWARGS`` and the env's geometry (see ``collision_policy_kwargs``).
    :param verbose: 0 silent, 1 info, 2 debug.
    :param seed: seed of every random generator.
    :param device: torch device (``"auto"``: CUDA when available).
    :param _init_setup_model: build the networks now (SB3's loader passes False).
    """

    def __init__(
        self,
        policy: str | type[DQNPolicy],
        env: Env | VecEnv | str,
        learning_rate: float | Schedule = H["learning_rate"],
        buffer_size: int = H["buffer_size"],
        learning_starts: int = H["learning_starts"],
        batch_size: int = H["batch_size"],
        tau: float = 1.0,
        gamma: float = H["gamma"],
        train_freq: int | tuple[int, str] = H["train_freq"],
        gradient_steps: int = H["gradient_steps"],
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = H["n_steps"],
        target_update_interval: int = H["target_update_interval"],
        exploration_fraction: float = H["exploration_fraction"],
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = H["exploration_final_eps"],
        max_grad_norm: float = 10,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            target_update_interval=target_update_interval,
            exploration_fraction=exploration_fraction,
            exploration_initial_eps=exploration_initial_eps,
            exploration_final_eps=exploration_final_eps,
            max_grad_norm=max_grad_norm,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=collision_policy_kwargs(
                copy.deepcopy(H["policy_kwargs"]) if policy_kwargs is None else policy_kwargs,
                env,
                **EXTRACTOR_KWARGS,
            ),
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=_init_setup_model,
        )

    @classmethod
    def load(cls, path: Any, *args: Any, **kwargs: Any) -> Any:
        """SB3's ``load``, without its spurious n-step warning (see ``quiet_n_step_reload``)."""
        with quiet_n_step_reload():
            return super().load(path, *args, **kwargs)

    def next_state_values(self, next_observations: th.Tensor) -> th.Tensor:
        """Value ``V(s')`` of each next state, shape ``(batch,)``, from the target network.

        DQN's greedy value ``max_a Q_target(s', a)``.
        """
        return self.q_net_target(next_observations).max(dim=1).values

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses = []
        for _ in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            # n-step replay stores gamma**n per sample; plain replay has none.
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            with th.no_grad():
                next_values = self.next_state_values(replay_data.next_observations).reshape(-1, 1)
                target_q_values = (
                    replay_data.rewards + (1 - replay_data.dones) * discounts * next_values
                )
            current_q_values = th.gather(
                self.q_net(replay_data.observations), dim=1, index=replay_data.actions.long()
            )
            loss = F.smooth_l1_loss(current_q_values, target_q_values)
            losses.append(loss.item())
            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))

    def _check_policy_class(self, required: type[DQNPolicy], why: str) -> None:
        """Refuse a policy class (resolved from its alias by SB3) that breaks the agent's idea."""
        if not issubclass(self.policy_class, required):
            raise TypeError(
                f"{type(self).__name__} needs a {required.__name__} (or 'MlpPolicy'), got "
                f"{self.policy_class.__name__}; {why}"
            )
