"""Let stable-baselines3 train on a natively batched Gymnasium ``VectorEnv``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

#: Per-step info arrays copied into SB3's per-env info dicts when present.
INFO_KEYS = ("collisions", "cumulative_collisions", "moved", "cost")


class SB3VecEnvAdapter(VecEnv):
    """Present a same-step-autoreset Gymnasium ``VectorEnv`` as an SB3 ``VecEnv``: ``done =
    terminated or truncated``, per-env info dicts (with :data:`INFO_KEYS`), the ended episode's
    last observation in ``info["terminal_observation"]`` and ``info["TimeLimit.truncated"]`` (so
    SB3 bootstraps cut episodes); ``env_method("action_masks")`` gives one mask per sub-env, as
    sb3-contrib's ``MaskablePPO`` expects. Wrap it in SB3's ``VecMonitor`` for episode statistics.

    :param vector_env: e.g. ``gym.make_vec("NegCollision-v0", num_envs=64)``.
    """

    def __init__(self, vector_env: gym.vector.VectorEnv) -> None:
        mode = vector_env.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(
                f"SB3VecEnvAdapter needs a vector env with same-step autoreset, got {mode}; "
                "for other Gymnasium envs use SB3's own make_vec_env"
            )
        self.vector_env = vector_env
        self._actions: np.ndarray | None = None
        super().__init__(
            vector_env.num_envs, vector_env.single_observation_space, vector_env.single_action_space
        )

    def reset(self) -> np.ndarray:
        seeds = None if all(s is None for s in self._seeds) else self._seeds
        options = self._options[0] if self._options and self._options[0] else None
        # gymnasium's VectorEnv.reset is typed for one seed; its sync and async envs take a list.
        obs, _ = self.vector_env.reset(seed=seeds, options=options)  # type: ignore[arg-type]
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Store one action per sub-env, ``(num_envs,)`` or ``(num_envs, 1)`` (else
        ``ValueError``); the vector env checks their dtype and range when stepped."""
        actions = np.asarray(actions)
        if actions.shape not in ((self.num_envs,), (self.num_envs, 1)):
            raise ValueError(
                f"SB3VecEnvAdapter.step needs one action per sub-env, shape ({self.num_envs},), "
                f"got an array of shape {actions.shape}"
            )
        self._actions = actions.reshape(self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminated, truncated, info = self.vector_env.step(self._actions)
        dones = terminated | truncated
        columns = {key: info[key].tolist() for key in INFO_KEYS if key in info}
        infos: list[dict[str, Any]] = [
            {key: values[i] for key, values in columns.items()} for i in range(self.num_envs)
        ]
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = info["final_obs"][i]
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            if "final_info" in info and "episode_return" in info["final_info"]:
                infos[i]["episode_return"] = float(info["final_info"]["episode_return"][i])
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.vector_env.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.vector_env, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(
            "SB3VecEnvAdapter shares one state across sub-envs; set attributes on vector_env"
        )

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        result = getattr(self.vector_env, method_name)(*method_args, **method_kwargs)
        if method_name == "action_masks":  # one row per sub-env
            return [result[i] for i in self._get_indices(indices)]
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs
