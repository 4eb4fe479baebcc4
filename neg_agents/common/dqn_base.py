"""The DQN all negdl agents build on: SB3's DQN with negdl's defaults and a TD-target hook."""

from __future__ import annotations

import contextlib
import copy
import io
import os
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch as th
from gymnasium import Env
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.dqn.policies import DQNPolicy

from neg_agents.common.dqn_arguments import (
    CHECKS,
    check_dqn_arguments,
    check_replay_buffer_memory,
)
from neg_agents.common.extractors import collision_policy_kwargs
from neg_agents.common.model_files import load_model, save_model
from neg_agents.hyperparams import AGENT_DEVICE, EXTRACTOR_KWARGS
from neg_agents.hyperparams import DQN_HYPERPARAMS as H
from negdl.devices import resolve_device


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
    :param device: torch device (``"cpu"`` unless asked otherwise: the default networks are too
        small for a GPU to pay off, see ``hyperparams.AGENT_DEVICE``; ``"auto"``: CUDA when
        available; one this machine does not
        have is an error, where SB3 would silently run on the CPU).
    :param shield: act only among the actions the env's ``action_masks()`` allows, while
        learning (warm-up and epsilon exploration included) and whenever ``predict`` is given
        ``action_masks``: a shield in the safe-RL sense (Alshiekh et al. 2018,
        https://arxiv.org/abs/1708.08611). On NegCollision envs the mask forbids every action
        that makes more contacts at the next step than another action would (and moves into a
        wall), so exploring no longer walks into obstacles. The env must have
        ``action_masks()`` (reached through ``env_method``).
    :param _init_setup_model: build the networks now (SB3's loader passes False).

    Every argument is checked before anything is built (:func:`check_dqn_arguments`: e.g.
    gamma in [0, 1], batch_size >= 1, buffer_size >= batch_size, epsilons and
    exploration_fraction in [0, 1]), and so are the values of a loaded file; the replay buffer
    must fit in memory (``negdl.resources``). ``save`` and ``load`` use
    :mod:`neg_agents.common.model_files`: files load without unpickling anything.
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
        device: th.device | str = AGENT_DEVICE,
        shield: bool = False,
        _init_setup_model: bool = True,
    ) -> None:
        check_dqn_arguments({name: value for name, value in locals().items() if name in CHECKS})
        resolve_device(device)
        if not isinstance(shield, bool):
            raise ValueError(f"shield must be True or False, got {shield!r}")
        self.shield = shield
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

    def _setup_model(self) -> None:
        self.shield = bool(self.__dict__.get("shield", False))  # files saved before it: False
        self._shield_rng = np.random.default_rng(self.seed)
        # A loaded model's values come from its file: they are checked here too.
        check_dqn_arguments({name: self.__dict__[name] for name in CHECKS if name in self.__dict__})
        check_replay_buffer_memory(
            self.buffer_size, self.observation_space, self.action_space, self.optimize_memory_usage
        )
        super()._setup_model()

    def _excluded_save_params(self) -> list[str]:
        # The shield's generator is made again from the seed when the model is built.
        return [*super()._excluded_save_params(), "_shield_rng"]

    def save(
        self,
        path: str | os.PathLike[str] | io.BufferedIOBase,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
    ) -> None:
        """SB3's ``save``, plus a plain twin of each pickled entry so that :meth:`load` reads the
        file completely without unpickling (``neg_agents.common.model_files.save_model``)."""
        save_model(self, path, exclude, include)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | io.BufferedIOBase,
        env: Any = None,
        device: th.device | str = AGENT_DEVICE,
        custom_objects: dict[str, Any] | None = None,
        allow_pickle: bool = False,
        **kwargs: Any,
    ) -> Any:
        """SB3's ``load`` without unpickling anything from the file (see
        ``neg_agents.common.model_files.load_model`` for the arguments and what is refused)."""
        with quiet_n_step_reload():
            return load_model(cls, path, env, device, custom_objects, allow_pickle, **kwargs)

    def check_observation(self, observation: Any) -> None:
        """Raise a ``ValueError`` if ``observation`` holds NaN or infinite values."""
        values = observation.values() if isinstance(observation, dict) else [observation]
        for value in values:
            array = np.asarray(value)
            if array.dtype.kind in "fc" and not np.isfinite(array).all():
                bad = np.flatnonzero(~np.isfinite(array))
                raise ValueError(
                    f"observation holds {bad.size} NaN or infinite value(s) (first at flat index "
                    f"{int(bad[0])}); an agent acts only on finite observations"
                )

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3's ``predict``, refusing observations with NaN or infinite values.

        :param action_masks: ``(n_envs, n_actions)`` (or ``(n_actions,)``) bools, True where an
            action is allowed (e.g. the env's ``action_masks()``): the greedy action is the
            best allowed one, and exploration (``deterministic=False``, with probability
            epsilon per env) samples among the allowed ones. None: SB3's ``predict``.
        """
        self.check_observation(observation)
        if action_masks is None:
            return super().predict(observation, state, episode_start, deterministic)
        actions, vectorized, masks = masked_greedy(self.policy, observation, action_masks)
        if not deterministic:
            exploring = self._shield_rng.random(len(actions)) < self.exploration_rate
            if exploring.any():
                actions[exploring] = sample_allowed_rows(masks[exploring], self._shield_rng)
        return (actions if vectorized else actions[0]), state

    def _sample_action(
        self, learning_starts: int, action_noise: Any = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """SB3's choice of the next training actions; with ``shield``, among the env's allowed
        actions only (uniform among them during warm-up)."""
        if not self.shield:
            return super()._sample_action(learning_starts, action_noise, n_envs)
        masks = np.stack(self.env.env_method("action_masks")).astype(bool)
        if self.num_timesteps < learning_starts:
            actions = sample_allowed_rows(masks, self._shield_rng)
        else:
            actions, _ = self.predict(self._last_obs, deterministic=False, action_masks=masks)
        return actions, actions

    def next_state_values(self, next_observations: th.Tensor) -> th.Tensor:
        """Value ``V(s')`` of each next state, shape ``(batch,)``, from the target network.

        DQN's greedy value ``max_a Q_target(s', a)``.
        """
        return self.q_net_target(next_observations).max(dim=1).values

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """SB3's ``DQN.train``, bootstrapping on :meth:`next_state_values` (see ``BootstrapValues``)."""
        target_network = self.q_net_target
        self.q_net_target = BootstrapValues(self, target_network)
        try:
            super().train(gradient_steps, batch_size)
        finally:
            self.q_net_target = target_network

    def _check_policy_class(self, required: type[DQNPolicy], why: str) -> None:
        """Refuse a policy class (resolved from its alias by SB3) that breaks the agent's idea."""
        if not issubclass(self.policy_class, required):
            raise TypeError(
                f"{type(self).__name__} needs a {required.__name__} (or 'MlpPolicy'), got "
                f"{self.policy_class.__name__}; {why}"
            )


def masked_greedy(
    policy: DQNPolicy, observation: np.ndarray, action_masks: Any
) -> tuple[np.ndarray, bool, np.ndarray]:
    """The best allowed action of each observation under ``action_masks`` (True: allowed).

    Actions are ranked by the Q-network's ``preferences`` where it has them (the non-positive
    heads break ties there), else by its Q-values. Returns the actions ``(batch,)``, whether
    the observation was a batch, and the masks as ``(batch, n)`` bools.

    :raises ValueError: masks of the wrong shape, or a row that allows nothing.
    """
    obs, vectorized = policy.obs_to_tensor(observation)
    n = int(policy.action_space.n)
    masks = np.asarray(action_masks, dtype=bool)
    if masks.size != obs.shape[0] * n or not masks.reshape(-1, n).any(axis=1).all():
        raise ValueError(
            f"action_masks must hold one row of {n} bools per observation ({obs.shape[0]}) "
            f"with at least one True each, got shape {masks.shape}"
        )
    masks = masks.reshape(-1, n)
    with th.no_grad():
        scores = getattr(policy.q_net, "preferences", policy.q_net)(obs)
    scores = scores.masked_fill(~th.as_tensor(masks, device=scores.device), -th.inf)
    return scores.argmax(dim=1).cpu().numpy(), vectorized, masks


def sample_allowed_rows(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row of ``masks`` ``(batch, n)``, uniform among its True entries."""
    weights = rng.random(masks.shape) * masks
    return weights.argmax(axis=1)


class BootstrapValues:
    """What ``DQN.train`` calls as its target network while a ``NegDQNBase`` trains.

    SB3's ``DQN.train`` computes its TD target from ``self.q_net_target(next_obs).max(dim=1)``.
    This stand-in returns one column, ``model.next_state_values(next_obs)``, so SB3's max over
    that column is exactly the subclass's value and the rest of SB3's update (n-step discounts,
    Huber loss, gradient clipping, logging) runs unchanged. While the hook runs,
    ``model.q_net_target`` is the real target network again, so hooks use it as usual.
    ``tests/agents/test_dqn_base.py`` fails when SB3's ``train`` stops calling it that way.

    :param model: the algorithm being trained.
    :param target_network: its real target network.
    """

    def __init__(self, model: NegDQNBase, target_network: th.nn.Module) -> None:
        self.model, self.target_network = model, target_network

    def __call__(self, next_observations: th.Tensor) -> th.Tensor:
        model = self.model
        model.q_net_target = self.target_network
        try:
            return model.next_state_values(next_observations).reshape(-1, 1)
        finally:
            model.q_net_target = self
