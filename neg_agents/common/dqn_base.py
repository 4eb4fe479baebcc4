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
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.utils import is_vectorized_box_observation
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.dqn.policies import DQNPolicy
from torch.nn import functional as F

from neg_agents.common.dqn_arguments import (
    check_dqn_arguments,
    check_replay_buffer_memory,
    sb3_learning_rate,
)
from neg_agents.common.extractors import collision_policy_kwargs
from neg_agents.common.masks import MaskablePolicy, masked_scores
from neg_agents.common.model_files import UnsafeModelFileError, load_pickled
from neg_agents.common.replay import sample_replay
from neg_agents.hyperparams import AGENT_DEVICE, EXTRACTOR_KWARGS
from neg_agents.hyperparams import DQN_HYPERPARAMS as H
from negdl.devices import resolve_device

#: NegDQNBase's defaults for SB3's DQN arguments (SB3's own for the others).
DEFAULTS = {name: value for name, value in H.items() if name != "policy_kwargs"}


class NegDQNBase(DQN):
    """SB3's DQN (Mnih et al. 2015, https://www.nature.com/articles/nature14236) with defaults
    tuned for ``NegCollision-v0`` and an overridable bootstrap value: subclasses change how the
    value of the next state is estimated (e.g. under a policy that forbids actions) in
    :meth:`next_state_values`; replay, n-step returns, loss, clipping and logging are SB3's.

    :param policy_kwargs: policy arguments (None: ``DQN_HYPERPARAMS["policy_kwargs"]``); on a
        NegCollision env the features extractor defaults to ``ObstacleSetExtractor`` with
        ``EXTRACTOR_KWARGS`` and the env's geometry (``collision_policy_kwargs``).
    :param device: torch device, ``"cpu"`` unless asked otherwise (``hyperparams.AGENT_DEVICE``);
        one this machine does not have is an error, where SB3 would silently use the CPU.
    :param shield: act only among the actions the env's ``action_masks()`` allows, while
        learning (warm-up and exploration included) and whenever ``predict`` is given
        ``action_masks``: a shield in the safe-RL sense (Alshiekh et al. 2018,
        https://arxiv.org/abs/1708.08611). The env must have ``action_masks()``.
    :param kwargs: SB3's DQN arguments; :data:`neg_agents.hyperparams.DQN_HYPERPARAMS` holds
        the defaults. Each is checked before anything is built (``check_dqn_arguments``), and
        the replay buffer must fit in memory (``negdl.resources``).
    """

    action_space: spaces.Discrete  # DQN's only action space

    def __init__(
        self,
        policy: str | type[DQNPolicy],
        env: Env | VecEnv | str,
        *,
        policy_kwargs: dict[str, Any] | None = None,
        device: th.device | str = AGENT_DEVICE,
        shield: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs = {**DEFAULTS, **kwargs}
        check_dqn_arguments({**kwargs, "policy_kwargs": policy_kwargs})
        kwargs["learning_rate"] = sb3_learning_rate(kwargs["learning_rate"])
        resolve_device(device)
        if not isinstance(shield, bool):
            raise ValueError(f"shield must be True or False, got {shield!r}")
        self.shield = shield
        if policy_kwargs is None:
            policy_kwargs = copy.deepcopy(H["policy_kwargs"])
        policy_kwargs = collision_policy_kwargs(policy_kwargs, env, **EXTRACTOR_KWARGS)
        super().__init__(policy, env, policy_kwargs=policy_kwargs, device=device, **kwargs)
        # Asked now, not at the first step of learning, where the masks are first read.
        if shield and self.env is not None and not self.env.has_attr("action_masks"):
            raise ValueError(
                "shield=True acts among the actions the env's action_masks() allows, and this env "
                "has no action_masks() (NegCollision envs have it): pass shield=False"
            )

    def _setup_model(self) -> None:
        self.shield = bool(self.__dict__.get("shield", False))  # files saved before it: False
        self._shield_rng = np.random.default_rng(self.seed)
        check_replay_buffer_memory(
            self.buffer_size, self.observation_space, self.action_space, self.optimize_memory_usage
        )
        super()._setup_model()
        self.policy.optimizer = fused_adam(self.policy)
        # Listed once per policy: what set_training_mode switches and what train clips.
        self._training_mode_modules = [self.policy, *self.policy.q_net.modules()]
        self._policy_parameters = list(self.policy.parameters())

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
        """SB3's ``load``, which unpickles (runs any code the file holds): refused unless
        ``allow_pickle=True``, for files you made or trust."""
        if not allow_pickle:
            raise UnsafeModelFileError(
                f"{cls.__name__}.load unpickles {path}, which runs any code the file holds: load "
                "a run folder (model.zip and config.json) with neg_agents.model_io.load_agent, "
                "which reads only the weights, or pass allow_pickle=True for a file you made or trust"
            )
        return load_pickled(cls, path, env, device, custom_objects=custom_objects, **kwargs)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3's ``DQN.predict`` (epsilon-greedy unless ``deterministic``), refusing observations
        with NaN or infinite values; with ``action_masks`` (``(n_envs, n_actions)`` or
        ``(n_actions,)`` bools, True where allowed, e.g. the env's ``action_masks()``) both the
        greedy choice and exploration keep to the allowed actions."""
        values = observation.values() if isinstance(observation, dict) else [observation]
        for value in values:
            array = np.asarray(value)
            if array.dtype.kind in "fc" and not np.isfinite(array).all():
                bad = np.flatnonzero(~np.isfinite(array))
                raise ValueError(
                    f"observation holds {bad.size} NaN or infinite value(s) (first at flat index "
                    f"{int(bad[0])}); an agent acts only on finite observations"
                )
        return self.actions(observation, deterministic, action_masks), state

    def actions(self, observation: Any, deterministic: bool, action_masks: Any) -> np.ndarray:
        """:meth:`predict`'s actions: under ``action_masks`` the policy's choice among the
        allowed actions (``choose``: the best, or a preferred one), or with probability
        epsilon per env (unless ``deterministic``) a uniform allowed one; without them
        ``DQN.predict``'s."""
        if action_masks is not None:
            scores, vectorized, masks = masked_scores(self.policy, observation, action_masks)
            actions = cast(MaskablePolicy, self.policy).choose(scores, True).cpu().numpy()
            if not deterministic:
                exploring = self._shield_rng.random(len(actions)) < self.exploration_rate
                if exploring.any():
                    actions[exploring] = sample_allowed_rows(masks[exploring], self._shield_rng)
            return actions if vectorized else actions[0]
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
        observation of a flat ``Box`` space, a policy that keeps SB3's ``predict`` (which
        ``MaskablePolicy.predict`` is without masks)."""
        return (
            isinstance(observation, np.ndarray)
            and type(self.observation_space) is spaces.Box
            and len(self.observation_space.shape) == 1
            and type(self.policy).predict in (BasePolicy.predict, MaskablePolicy.predict)
        )

    def policy_actions(self, observation: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """``self.policy.predict(observation, deterministic=...)[0]`` for flat ``Box``
        observations without SB3's per-call overhead: the same checks and shapes, the
        observation read in place instead of copied (the networks do not write to it)."""
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
        """Value ``V(s')`` of each next state ``(batch,)``: DQN's ``max_a Q_target(s', a)``."""
        return self.q_net_target(next_observations).max(dim=1).values

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """SB3's ``DQN.train`` step for step (the same minibatches, TD target, loss, clipping and
        log keys), bootstrapping on :meth:`next_state_values`, with less Python per step."""
        policy = self.policy
        self.set_training_mode(True)
        self._update_learning_rate(policy.optimizer)
        optimizer, parameters = policy.optimizer, self._policy_parameters
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
        """``self.policy.set_training_mode(mode)`` from a module list made once per policy (the
        target network keeps its evaluation mode): SB3 switches modes several times per env step,
        and ``nn.Module.train``'s recursion is a visible share of a step this small."""
        for module in self._training_mode_modules:
            # nn.Module.train without Module.__setattr__'s checks, which a bool does not need.
            object.__setattr__(module, "training", mode)

    def _excluded_save_params(self) -> list[str]:
        # Rebuilt with the model, never saved: what train and predict cache, the shield's rng.
        cached = ["_training_mode_modules", "_policy_parameters", "_shield_rng"]
        return [*super()._excluded_save_params(), *cached]

    def _check_policy_class(self, required: type[DQNPolicy], why: str) -> None:
        """Refuse a policy class (resolved from its alias by SB3) that breaks the agent's idea."""
        if not issubclass(self.policy_class, required):
            raise TypeError(
                f"{type(self).__name__} needs a {required.__name__} (or 'MlpPolicy'), got "
                f"{self.policy_class.__name__}; {why}"
            )


def sample_allowed_rows(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row of ``masks`` ``(batch, n)``, uniform among its True entries."""
    return (rng.random(masks.shape) * masks).argmax(axis=1)


def fused_adam(policy: DQNPolicy) -> th.optim.Optimizer:
    """The policy's optimizer, as torch's fused Adam (one kernel per step, equal within float
    rounding) when it is a fresh, plain Adam whose ``optimizer_kwargs`` choose no implementation;
    any other optimizer unchanged."""
    optimizer = policy.optimizer
    chosen = {"foreach", "fused", "differentiable", "capturable"} & set(policy.optimizer_kwargs)
    if (
        type(optimizer) is not th.optim.Adam
        or chosen
        or optimizer.state
        or policy.device.type not in ("cpu", "cuda")  # where torch has a fused Adam
        or len(optimizer.param_groups) != 1
    ):
        return optimizer
    group = optimizer.param_groups[0]
    settings = {
        name: group[name] for name in ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize")
    }
    return th.optim.Adam(group["params"], **settings, fused=True)
