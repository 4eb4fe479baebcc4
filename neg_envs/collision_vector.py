"""``NegCollisionVectorEnv``: many ``NegCollision`` envs simulated in one set of numpy arrays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from neg_envs import collision_core as core
from negdl.resources import check_memory


class NegCollisionVectorEnv(core.SimulationEnv, VectorEnv):
    """``num_envs`` collision envs stepped together, with same-step autoreset.

    ``gym.make_vec("NegCollision-v0", num_envs=1024)`` returns one. Dynamics, rewards, info
    and observations are ``NegCollisionEnv``'s: with the same seeds and actions, sub-env ``i``
    reproduces the single env's trajectory exactly; ``reset(seed=s)`` seeds sub-env ``i`` with
    ``s + i`` as ``SyncVectorEnv`` does. An ended episode is reset within the same step: the
    observation returned is the new episode's, and ``info["final_obs"]``/``["final_info"]``
    (masks ``_final_obs``/``_final_info``) hold the ended one's last observation and info, with
    its ``episode_return``. ``action_masks()`` is ``(num_envs, num_actions)``.

    :param num_envs: number of sub-envs, 1 to 1,000,000.
    :param max_episode_steps: steps before truncation, >= 1.
    :param render_mode: must be None; render a single ``NegCollisionEnv`` to watch an episode.
    :param config: the fields of ``CollisionConfig``.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}
    #: ``reset(options=...)`` keys this env understands.
    RESET_OPTIONS: tuple[str, ...] = ("reset_mask",)

    def __init__(
        self,
        num_envs: int = 1,
        max_episode_steps: int = 500,
        render_mode: str | None = None,
        **config: Any,
    ) -> None:
        if render_mode is not None or "window_size" in config:
            raise ValueError(
                "NegCollisionVectorEnv does not render; render a single NegCollisionEnv instead"
            )
        self.config = core.config_from(config, "num_envs, max_episode_steps")
        self.num_envs = core.check_int("num_envs", num_envs, 1, 1_000_000)
        self.max_episode_steps = core.check_int("max_episode_steps", max_episode_steps, 1, 10**9)
        check_memory(
            core.simulation_bytes(self.config, self.num_envs),
            f"NegCollisionVectorEnv with {self.num_envs:,} sub-envs x {self.config.max_obstacles:,} "
            f"obstacles ({self.config.obs_size:,} observation values each)",
            "use fewer sub-envs or obstacles, or observation='nearest' (its size does not grow "
            "with num_obstacles)",
        )
        self.render_mode = None
        self.single_observation_space = self.config.observation_space()
        self.single_action_space = self.config.action_space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._sim = core.CollisionSimulation(self.config, self.num_envs)
        self._rngs: list[np.random.Generator] = [np.random.default_rng()] * self.num_envs

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ):
        """Reset every sub-env, or those in ``options["reset_mask"]`` (a bool array).

        :param seed: None, an integer >= 0 (sub-env ``i`` gets ``seed + i``), or one seed (None
            or an integer >= 0) per sub-env.
        :param options: None, or a dict whose only accepted key is ``"reset_mask"``.
        """
        core.check_reset_options(options, self.RESET_OPTIONS, type(self).__name__)
        if seed is None or isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            first = core.check_seed(seed)
            seeds = [None if first is None else first + i for i in range(self.num_envs)]
        elif isinstance(seed, (list, tuple, np.ndarray)):
            seeds = [core.check_seed(item) for item in seed]
            if len(seeds) != self.num_envs:
                raise ValueError(
                    f"reset needs one seed per sub-env ({self.num_envs}), got {len(seeds)}"
                )
        else:
            raise TypeError(
                f"seed must be None, an integer >= 0 or a sequence of {self.num_envs} of them, "
                f"got {type(seed).__name__} {seed!r}"
            )
        mask = np.ones(self.num_envs, dtype=bool)
        if options and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"])
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ValueError(
                    f"options['reset_mask'] must be a bool array of shape ({self.num_envs},)"
                )
        if not self._started and not mask.all():
            raise RuntimeError("the first reset must reset every sub-env")
        indices = np.flatnonzero(mask)
        for i in indices:
            if seeds[i] is not None or not self._started:
                self._rngs[i] = seeding.np_random(seeds[i])[0]
        self._started = True
        self._sim.reset_scenes(indices, [self._rngs[i] for i in indices])
        zeros = np.zeros(self.num_envs, dtype=np.int64)
        # Like SyncVectorEnv: info is flagged (``_key``) only for the sub-envs reset.
        return self._sim.observe(), self._step_info(zeros, zeros, zeros.astype(bool), mask.copy())

    def action_masks(self) -> np.ndarray:
        """The actions allowed in every sub-env now, ``(num_envs, num_actions)`` bool (after an
        autoreset: in the new episode)."""
        self._check_started("action_masks")
        return self._sim.allowed_actions()

    def step(self, actions: Any):
        self._check_started("step")
        sim = self._sim
        collisions, moved, rewards, terminated = sim.step(self._validated(actions))
        truncated = sim.steps >= self.max_episode_steps
        obs = sim.observe()
        info = self._step_info(collisions, sim.cumulative_collisions.copy(), moved)
        done = np.flatnonzero(terminated | truncated)
        if done.size:
            self._finish_episodes(done, obs, info)
        return obs, rewards, terminated, truncated, info

    def _finish_episodes(self, done: np.ndarray, obs: np.ndarray, info: dict[str, Any]) -> None:
        final_mask = np.zeros(self.num_envs, dtype=bool)
        final_mask[done] = True
        final_obs = np.full(self.num_envs, None, dtype=object)
        for i in done:
            final_obs[i] = obs[i].copy()
        # The ended episodes' values, flagged (``_key``) for those sub-envs only, as in SyncVectorEnv.
        final_info = {key: value.copy() for key, value in info.items() if not key.startswith("_")}
        final_info["episode_return"] = self._sim.episode_return.copy()
        final_info |= {f"_{key}": final_mask.copy() for key in list(final_info)}
        info.update(
            final_obs=final_obs,
            _final_obs=final_mask,
            final_info=final_info,
            _final_info=final_mask.copy(),
        )
        self._sim.reset_scenes(done, [self._rngs[i] for i in done])
        obs[done] = self._sim.observe()[done]

    def _validated(self, actions: Any) -> np.ndarray:
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},), got {actions.shape}")
        if not np.issubdtype(actions.dtype, np.integer):
            raise TypeError(f"actions must be integers, got dtype {actions.dtype}")
        n = self.config.num_actions
        bad = (actions < 0) | (actions >= n)
        if bad.any():
            raise ValueError(
                f"actions must be in [0, {n}), got {actions[bad][:5].tolist()} at sub-envs {np.flatnonzero(bad)[:5].tolist()}"
            )
        return actions

    def _step_info(
        self,
        collisions: np.ndarray,
        cumulative: np.ndarray,
        moved: np.ndarray,
        where: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """The info dict, each key flagged (``_key``) for the sub-envs ``where`` (default: all)."""
        info = core.step_info(collisions, cumulative, moved)
        where = np.ones(self.num_envs, dtype=bool) if where is None else where
        return info | {f"_{key}": where for key in info}
