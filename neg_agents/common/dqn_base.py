"""The DQN all negdl agents build on: SB3's DQN with negdl's defaults and a TD-target hook."""

from __future__ import annotations

import copy
import io
import os
from typing import Any, TypeGuard, cast

import numpy as np
import torch as th
from gymnasium import Env, spaces
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import is_vectorized_box_observation
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.dqn.policies import DQNPolicy
from torch.nn import functional as F

from neg_agents.common.dqn_arguments import (
    CHECKS,
    check_dqn_arguments,
    check_replay_buffer_memory,
)
from neg_agents.common.extractors import collision_policy_kwargs
from neg_agents.common.masks import checked_masks
from neg_agents.common.model_files import UnsafeModelFileError, load_pickled
from neg_agents.common.replay import sample_replay
from neg_agents.hyperparams import AGENT_DEVICE, EXTRACTOR_KWARGS
from neg_agents.hyperparams import DQN_HYPERPARAMS as H
from negdl.devices import resolve_device

#: Attributes where ``NegDQNBase`` keeps lookups made once per policy (never saved).
CACHES = ("_training_mode_modules", "_policy_parameters")


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
    must fit in memory (``negdl.resources``). ``load`` (SB3's, which unpickles) needs
    ``allow_pickle=True``: saved runs load with ``neg_agents.model_io.load_agent``.
    """

    action_space: spaces.Discrete  # DQN's only action space

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
        self.policy.optimizer = fused_adam(self.policy)

    @classmethod
    def load(  # type: ignore[override]
        cls,
        path: str | os.PathLike[str] | io.BufferedIOBase,
        env: Any = None,
        device: th.device | str = AGENT_DEVICE,
        custom_objects: dict[str, Any] | None = None,
        allow_pickle: bool = False,
        **kwargs: Any,
    ) -> Any:
        """SB3's ``load``, which unpickles the file's data and so can run any code it holds:
        refused unless ``allow_pickle=True`` (for files you made or trust). Load a saved run
        with ``neg_agents.model_io.load_agent``, which reads only its weights."""
        if not allow_pickle:
            raise UnsafeModelFileError(
                f"{cls.__name__}.load unpickles {path}, which runs any code the file holds: load "
                "a run folder (model.zip and config.json) with neg_agents.model_io.load_agent, "
                "which reads only the weights, or pass allow_pickle=True for a file you made or trust"
            )
        return load_pickled(cls, path, env, device, custom_objects=custom_objects, **kwargs)

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
        """SB3's ``DQN.predict`` (epsilon-greedy unless ``deterministic``), refusing observations
        with NaN or infinite values. On flat ``Box`` observations the greedy step is
        :meth:`policy_actions`, the same actions as ``self.policy.predict`` with less overhead.

        :param action_masks: ``(n_envs, n_actions)`` (or ``(n_actions,)``) bools, True where an
            action is allowed (e.g. the env's ``action_masks()``): the greedy action is the
            best allowed one, and exploration (``deterministic=False``, with probability
            epsilon per env) samples among the allowed ones. None: no mask.
        """
        self.check_observation(observation)
        if action_masks is not None:
            return self.masked_actions(observation, action_masks, deterministic), state
        return self.unmasked_actions(observation, deterministic), state

    def masked_actions(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        action_masks: Any,
        deterministic: bool,
    ) -> np.ndarray:
        """:meth:`predict`'s actions under ``action_masks``: the best allowed action, or with
        probability epsilon per env (unless ``deterministic``) a uniform allowed one."""
        actions, vectorized, masks = masked_greedy(self.policy, observation, action_masks)
        if not deterministic:
            exploring = self._shield_rng.random(len(actions)) < self.exploration_rate
            if exploring.any():
                actions[exploring] = sample_allowed_rows(masks[exploring], self._shield_rng)
        return actions if vectorized else actions[0]

    def unmasked_actions(
        self, observation: np.ndarray | dict[str, np.ndarray], deterministic: bool
    ) -> np.ndarray:
        """:meth:`predict`'s actions without masks: ``DQN.predict``'s, through
        :meth:`policy_actions` where :meth:`lean_predict_applies`."""
        if not self.lean_predict_applies(observation):
            return super().predict(observation, deterministic=deterministic)[0]
        # DQN.predict's exploration, drawing from numpy's global generator as it does.
        if not deterministic and np.random.rand() < self.exploration_rate:  # noqa: NPY002
            box = cast(spaces.Box, self.observation_space)  # lean_predict_applies checked it
            if is_vectorized_box_observation(observation, box):
                return np.array([self.action_space.sample() for _ in range(observation.shape[0])])
            return np.array(self.action_space.sample())
        return self.policy_actions(observation, deterministic)

    def lean_predict_applies(self, observation: Any) -> TypeGuard[np.ndarray]:
        """Whether :meth:`policy_actions` can stand in for ``self.policy.predict``: an array
        observation of a flat ``Box`` space, a policy that keeps SB3's ``predict``."""
        return (
            isinstance(observation, np.ndarray)
            and type(self.observation_space) is spaces.Box
            and len(self.observation_space.shape) == 1
            and (
                type(self.policy).predict is BasePolicy.predict
                or getattr(self.policy, "sb3_predict_without_masks", False)
            )
        )

    def policy_actions(self, observation: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """``self.policy.predict(observation, deterministic=...)[0]`` for flat ``Box``
        observations (see :meth:`lean_predict_applies`), without SB3's per-call overhead.

        The same checks (an observation of the wrong shape is a ``ValueError``), the policy in
        evaluation mode, ``policy._predict`` without gradients, actions shaped as SB3 shapes
        them; the observation is read in place instead of copied (the networks do not write to
        their input).
        """
        box = cast(spaces.Box, self.observation_space)  # a flat Box, as documented
        vectorized = is_vectorized_box_observation(observation, box)
        self.set_training_mode(False)
        tensor = th.as_tensor(observation.reshape((-1, *box.shape)), device=self.device)
        with th.no_grad():
            predicted = self.policy._predict(tensor, deterministic=deterministic)
        # A Discrete action space's shape is (): one action per row.
        actions = predicted.cpu().numpy().reshape(-1)
        return actions if vectorized else actions.squeeze(axis=0)

    def _sample_action(
        self, learning_starts: int, action_noise: Any = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """SB3's choice of the next training actions; with ``shield``, among the env's allowed
        actions only (uniform among them during warm-up)."""
        if not self.shield:
            return super()._sample_action(learning_starts, action_noise, n_envs)
        # Both are set while learning, the only time SB3 samples training actions.
        assert self.env is not None and self._last_obs is not None
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
        """SB3's ``DQN.train`` step for step, bootstrapping on :meth:`next_state_values`.

        The same update as ``stable_baselines3.DQN.train`` (same minibatches from numpy's global
        generator, TD target ``r + (1 - done) * discount * V(s')``, Huber loss, gradient clipping
        at ``max_grad_norm``, the policy's optimizer, the same log keys), with less Python per
        step: minibatches from :func:`~neg_agents.common.replay.sample_replay`, the parameter
        list and optimizer looked up once, the training mode switched through
        :meth:`set_training_mode`. ``tests/agents/test_dqn_base.py`` checks that it changes the
        parameters exactly as SB3's ``DQN.train`` does.
        """
        policy = self.policy
        self.set_training_mode(True)
        self._update_learning_rate(policy.optimizer)
        optimizer, parameters = policy.optimizer, self._parameter_list()
        q_net, gamma, max_grad_norm = self.q_net, self.gamma, self.max_grad_norm
        losses = []
        for _ in range(gradient_steps):
            data = sample_replay(self.replay_buffer, batch_size, self._vec_normalize_env)  # type: ignore[arg-type]
            discounts = data.discounts if data.discounts is not None else gamma
            with th.no_grad():
                next_values = self.next_state_values(data.next_observations).reshape(-1, 1)
                target = data.rewards + (1 - data.dones) * discounts * next_values
            current = th.gather(q_net(data.observations), dim=1, index=data.actions.long())
            loss = F.smooth_l1_loss(current, target)
            losses.append(loss.item())
            optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(parameters, max_grad_norm, foreach=True)
            optimizer.step()
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))

    def set_training_mode(self, mode: bool) -> None:
        """``self.policy.set_training_mode(mode)`` without walking the module tree each time.

        SB3 switches the online network's mode several times per env step (acting, training);
        ``nn.Module.train`` recurses through every submodule, a visible share of a step this
        small. This sets the same flags, on the policy and every module of ``q_net``, from a
        list made once per policy (the target network keeps its evaluation mode, as in SB3).
        """
        policy = self.policy
        cached = self.__dict__.get(CACHES[0])
        if cached is None or cached[0] is not policy or cached[1] is not policy.q_net:
            cached = (policy, policy.q_net, [policy, *policy.q_net.modules()])
            self.__dict__[CACHES[0]] = cached
        for module in cached[2]:
            # What nn.Module.train sets, minus Module.__setattr__'s checks for parameters,
            # buffers and submodules, which a bool is not.
            object.__setattr__(module, "training", mode)

    def _excluded_save_params(self) -> list[str]:
        # The lookups train and predict cache, and the shield's generator, are rebuilt when the
        # model is built, never saved.
        return [*super()._excluded_save_params(), *CACHES, "_shield_rng"]

    def _parameter_list(self) -> list[th.nn.Parameter]:
        """The policy's parameters (what SB3 clips), listed once per policy."""
        cached = self.__dict__.get(CACHES[1])
        if cached is None or cached[0] is not self.policy:
            cached = (self.policy, list(self.policy.parameters()))
            self.__dict__[CACHES[1]] = cached
        return cached[1]

    def _check_policy_class(self, required: type[DQNPolicy], why: str) -> None:
        """Refuse a policy class (resolved from its alias by SB3) that breaks the agent's idea."""
        if not issubclass(self.policy_class, required):
            raise TypeError(
                f"{type(self).__name__} needs a {required.__name__} (or 'MlpPolicy'), got "
                f"{self.policy_class.__name__}; {why}"
            )


def masked_greedy(
    policy: DQNPolicy, observation: np.ndarray | dict[str, np.ndarray], action_masks: Any
) -> tuple[np.ndarray, bool, np.ndarray]:
    """The best allowed action of each observation under ``action_masks`` (True: allowed).

    Actions are ranked by the Q-network's ``preferences`` where it has them (the non-positive
    heads break ties there), else by its Q-values. Returns the actions ``(batch,)``, whether
    the observation was a batch, and the masks as ``(batch, n)`` bools.

    :raises ValueError: masks of the wrong shape, or a row that allows nothing.
    """
    obs, vectorized = policy.obs_to_tensor(observation)
    if not isinstance(obs, th.Tensor):
        raise ValueError("action masks take array observations, not dict ones")
    # DQNPolicy takes Discrete action spaces only.
    n_actions = int(cast(spaces.Discrete, policy.action_space).n)
    masks = checked_masks(action_masks, obs.shape[0], n_actions)
    with th.no_grad():
        scores = getattr(policy.q_net, "preferences", policy.q_net)(obs)
    scores = scores.masked_fill(~th.as_tensor(masks, device=scores.device), -th.inf)
    return scores.argmax(dim=1).cpu().numpy(), vectorized, masks


def sample_allowed_rows(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row of ``masks`` ``(batch, n)``, uniform among its True entries."""
    weights = rng.random(masks.shape) * masks
    return weights.argmax(axis=1)


#: Devices with a fused (one kernel per step) Adam in torch.
FUSED_ADAM_DEVICES = ("cpu", "cuda")


def fused_adam(policy: DQNPolicy) -> th.optim.Optimizer:
    """The policy's optimizer, as torch's fused Adam when it is a fresh, plain Adam.

    SB3 builds ``th.optim.Adam`` with torch's defaults, which on the CPU update each parameter
    tensor with a dozen small operations; the fused version does the same update in one kernel
    per step (about 3x faster for these networks; equal to the default within float rounding,
    ``tests/agents/test_dqn_base.py``). An optimizer that is not exactly Adam, already has
    state, lives on another device or whose ``optimizer_kwargs`` choose an implementation
    (``foreach``, ``fused``, ``differentiable``, ``capturable``) is returned unchanged.
    """
    optimizer = policy.optimizer
    chosen = {"foreach", "fused", "differentiable", "capturable"} & set(policy.optimizer_kwargs)
    if (
        type(optimizer) is not th.optim.Adam
        or chosen
        or optimizer.state
        or policy.device.type not in FUSED_ADAM_DEVICES
        or len(optimizer.param_groups) != 1
    ):
        return optimizer
    group = optimizer.param_groups[0]
    settings = {
        name: group[name] for name in ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize")
    }
    return th.optim.Adam(group["params"], **settings, fused=True)
