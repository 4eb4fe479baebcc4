"""``NegCollision-v0``: open-space collision avoidance where the agent is only ever punished."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from neg_envs import collision_core as core
from neg_envs.collision_core import CollisionConfig
from negdl.checks import check_choice

if TYPE_CHECKING:
    from neg_envs.rendering import CollisionRenderer


class NegCollisionEnv(core.SimulationEnv, gym.Env):
    """Avoid moving obstacles in a unit-square arena; every reward is a punishment (<= 0).

    An agent (a disc, drawn as a bird) moves a fixed step per action (0 up, 1 down, 2 left,
    3 right, 4 stay unless ``allow_stay=False``) and stops at the walls; ``num_obstacles`` discs
    move straight at constant speed and bounce off them. A step costs ``collision_penalty`` per
    obstacle in contact and ``move_penalty`` per move (into a wall too); 0 is a perfect return.
    Collisions end the episode only with ``terminate_on_collision``; the registered specs
    truncate it after 500 steps. ``info``: ``collisions`` (this step), ``cumulative_collisions``,
    ``moved``, ``cost`` (= collisions, for safe-RL tooling).

    ``action_masks()`` (what sb3-contrib's ``MaskablePPO`` reads) forbids the moves into a wall the
    agent touches and every action that would touch more obstacles at the next step than the best
    one (computed exactly); with ``mask_horizon`` H > 1, of those left, the ones that, repeated,
    would touch an obstacle within H steps sooner than another. At least one action stays allowed.

    :param render_mode: ``None``, ``"human"`` or ``"rgb_array"``.
    :param window_size: side of the rendered arena in pixels, 64 to 4096 (frames are a HUD
        band taller).
    :param config: the scene's parameters, the fields of :class:`CollisionConfig` (e.g.
        ``num_obstacles=30``), with their ranges there.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 30}
    #: ``reset(options=...)`` keys this env understands: none.
    RESET_OPTIONS: tuple[str, ...] = ()

    def __init__(
        self, render_mode: str | None = None, window_size: int = 512, **config: Any
    ) -> None:
        self.config = core.config_from(config, "render_mode, window_size")
        check_choice("render_mode", render_mode, (None, *self.metadata["render_modes"]))
        self.window_size = core.check_int("window_size", window_size, 64, 4096)
        self.render_mode = render_mode
        self.observation_space = self.config.observation_space()
        self.action_space = self.config.action_space()
        self._renderer: CollisionRenderer | None = None
        self._sim = core.CollisionSimulation(self.config, batch=1)
        self._facing = core.RIGHT  # the bird faces its last move (also while it stays)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode: agent at the centre, obstacles drawn from ``np_random``.

        :param seed: None or an integer >= 0; reseeds ``np_random`` (Gymnasium's convention).
        :param options: must be None or empty; an unknown key is an error, not ignored.
        """
        core.check_reset_options(options, self.RESET_OPTIONS, type(self).__name__)
        super().reset(seed=core.check_seed(seed))
        self._sim.reset_scenes([0], [self.np_random])
        self._started = True
        self._facing = core.RIGHT
        if self.render_mode == "human":
            self.render()
        return self._sim.observe()[0], core.step_info(0, self.cumulative_collisions, False)

    def step(self, action: Any):
        self._check_started("step")
        action = core.validate_action(action, self.config.num_actions)
        collisions, moved, reward, terminated = self._sim.step_one(action)
        if moved:
            self._facing = action
        if self.render_mode == "human":
            self.render()
        info = core.step_info(collisions, self.cumulative_collisions, moved)
        return self._sim.observe()[0], reward, terminated, False, info

    def action_masks(self) -> np.ndarray:
        """The actions allowed now, ``(num_actions,)`` bool (the rule is in the class docstring)."""
        self._check_started("action_masks")
        return self._sim.allowed_actions()[0]

    def get_keys_to_action(self) -> dict[tuple[int, ...], int]:
        """Key combinations to actions for ``gymnasium.utils.play.play`` (and ``scripts/play.py``)."""
        from neg_envs.keyboard import keys_to_action

        return keys_to_action(self.config.allow_stay)

    @property
    def steps(self) -> int:
        """Steps taken in the current episode."""
        return self._sim.steps.item(0)

    @property
    def cumulative_collisions(self) -> int:
        """Collisions counted in the current episode."""
        return self._sim.cumulative_collisions.item(0)

    @property
    def episode_return(self) -> float:
        """Sum of the current episode's rewards."""
        return self._sim.episode_return.item(0)

    @property
    def agent_position(self) -> np.ndarray:
        """A copy of the agent's (x, y)."""
        return self._sim.agent[0].copy()

    @property
    def scene_config(self) -> CollisionConfig:
        """The current episode's config: ``config`` with this scene's count and radii."""
        return self._sim.scene_config(0)

    @property
    def obstacle_positions(self) -> np.ndarray:
        """A copy of the obstacles' positions, shape (N, 2) (N: this episode's count)."""
        return self._sim.obstacles[:2, 0, : self._sim.counts[0]].T.copy()

    @property
    def obstacle_velocities(self) -> np.ndarray:
        """A copy of the obstacles' velocities (world units per step), shape (N, 2)."""
        return self._sim.obstacles[2:, 0, : self._sim.counts[0]].T.copy()

    def set_state(self, agent: np.ndarray, positions: np.ndarray, velocities: np.ndarray) -> None:
        """Place the agent ``(2,)`` and obstacles (positions and per-step velocities, ``(N, 2)``)
        by hand, after ``reset``; positions lie in the unit square and each velocity component
        is at most the top ``obstacle_speed`` in size, so observations stay in their space.

        :raises ValueError: wrong shapes, non-finite values, positions outside the arena or
            velocities beyond the top speed.
        """
        low_n, n = self.config.count_range
        agent, positions, velocities = (
            np.asarray(a, dtype=core.DTYPE) for a in (agent, positions, velocities)
        )
        count = positions.shape[0] if positions.ndim == 2 else -1
        if (
            agent.shape != (2,)
            or not low_n <= count <= n
            or positions.shape != (count, 2)
            or velocities.shape != (count, 2)
        ):
            rows = f"{n}" if low_n == n else f"M (M from {low_n} to {n})"
            raise ValueError(
                f"expected agent (2,), positions ({rows}, 2), velocities ({rows}, 2); got "
                f"{agent.shape}, {positions.shape}, {velocities.shape}"
            )
        if not (
            np.all((agent >= 0) & (agent <= 1)) and np.all((positions >= 0) & (positions <= 1))
        ):
            raise ValueError(
                "agent and obstacle positions must be finite and lie in the unit square [0, 1]^2"
            )
        top = self.config.speed_range[1]
        if not np.all(np.abs(velocities) <= top):
            raise ValueError(
                f"velocities must be finite with |dx|, |dy| <= {top:g} (the top obstacle_speed), "
                f"so that observations stay in the observation space; got "
                f"{velocities[~(np.abs(velocities) <= top)][:3].tolist()}"
            )
        self._check_started("set_state")
        obstacles = np.full((4, n), np.nan)
        obstacles[:, :count] = np.concatenate([positions.T, velocities.T])
        self._sim.place(0, agent, obstacles)
        self._sim.update_distances()

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; pass render_mode='human' or 'rgb_array'"
            )
            return None
        self._check_started("render")
        if self._renderer is None:
            from neg_envs.rendering import CollisionRenderer

            self._renderer = CollisionRenderer(
                self.window_size, self.render_mode, self.metadata["render_fps"]
            )
        count = self._sim.counts[0]
        return self._renderer.draw(
            agent=self._sim.agent[0],
            agent_radius=float(self._sim.agent_radius[0]),
            obstacles=self._sim.obstacles[:2, 0, :count].T,
            obstacle_radius=float(self._sim.obstacle_radius[0]),
            contacts=self._sim.contacts()[0, :count],
            heading=core.MOVES[self._facing],
            hud=(
                f"step {self.steps}",
                f"collisions {self.cumulative_collisions}",
                f"return {self.episode_return:.2f}",
            ),
        )

    def __getstate__(self) -> dict[str, Any]:
        """For ``copy.deepcopy`` and pickle: a copy opens a renderer of its own when it renders
        (pygame's objects cannot be copied)."""
        return self.__dict__ | {"_renderer": None}

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
