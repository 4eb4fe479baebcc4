"""``NegCollision-v0``: open-space collision avoidance where the agent is only ever punished."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from neg_envs import collision_core as core
from neg_envs.collision_core import CollisionConfig


class NegCollisionEnv(gym.Env):
    """Avoid moving obstacles in a unit-square arena; every reward is a punishment (<= 0).

    One agent (a disc, drawn as a bird) and ``num_obstacles`` discs that move in straight lines
    at constant speed and reflect off the walls. The agent moves a fixed step per action and
    stops at the walls. Each step costs ``collision_penalty`` for every obstacle in contact and
    ``move_penalty`` for a move (stay is free; a move into a wall still costs, it is a needless
    move). A return of 0 is perfect. Collisions do not end the episode unless
    ``terminate_on_collision`` (ending early would let an agent escape punishment by dying).
    Episodes are truncated by Gymnasium's ``TimeLimit`` (``max_episode_steps=500`` in the
    registered spec).

    Actions ``Discrete(5)``: 0 up, 1 down, 2 left, 3 right, 4 stay (``Discrete(4)`` without stay
    when ``allow_stay=False``, the source's four moves).

    ``info`` has ``collisions`` (obstacles in contact this step), ``cumulative_collisions``,
    ``moved`` (the action was a move) and ``cost`` (= collisions, for safe-RL tooling).

    :param num_obstacles: number of obstacles N, 0 to 100,000.
    :param obstacle_radius: obstacle radius in world units, (0, 0.1].
    :param obstacle_speed: obstacle speed in world units per step, [0, 0.1], or a (low, high)
        range from which each obstacle draws its speed.
    :param agent_radius: agent radius, (0, 0.1].
    :param agent_step: distance the agent moves per action, (0, 0.1].
    :param collision_penalty: punishment per obstacle in contact per step, >= 0.
    :param move_penalty: punishment per move, >= 0.
    :param terminate_on_collision: end the episode at the first collision.
    :param observation: ``"absolute"`` (the source's layout, size 2 + 4N) or ``"nearest"``
        (egocentric k nearest obstacles, size 2 + 5k, independent of N); see
        ``CollisionConfig.observation_space`` for the exact layouts and bounds.
    :param k_nearest: obstacles shown in ``"nearest"`` mode, 1 to 1024.
    :param allow_stay: keep the stay action (False gives the source's four moves).
    :param render_mode: ``None``, ``"human"`` or ``"rgb_array"``.
    :param window_size: side of the rendered square in pixels, 64 to 4096.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 30}

    def __init__(
        self,
        num_obstacles: int = 10,
        obstacle_radius: float = 0.03,
        obstacle_speed: float | tuple[float, float] = 0.01,
        agent_radius: float = 0.02,
        agent_step: float = 0.02,
        collision_penalty: float = 1.0,
        move_penalty: float = 0.01,
        terminate_on_collision: bool = False,
        observation: str = "absolute",
        k_nearest: int = 8,
        allow_stay: bool = True,
        render_mode: str | None = None,
        window_size: int = 512,
    ) -> None:
        self.config = CollisionConfig(
            num_obstacles=num_obstacles,
            obstacle_radius=obstacle_radius,
            obstacle_speed=obstacle_speed,
            agent_radius=agent_radius,
            agent_step=agent_step,
            collision_penalty=collision_penalty,
            move_penalty=move_penalty,
            terminate_on_collision=terminate_on_collision,
            observation=observation,
            k_nearest=k_nearest,
            allow_stay=allow_stay,
        )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        core.check_int("window_size", window_size, 64, 4096)
        self.render_mode = render_mode
        self.window_size = int(window_size)
        self.observation_space = self.config.observation_space()
        self.action_space = self.config.action_space()
        self._renderer = None
        self._moves = self.config.agent_moves.tolist()
        # One scene of the batched env's simulation: the same physics, unchanged.
        self._sim = core.CollisionSimulation(self.config, batch=1)
        self._started = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._sim.place(0, *core.sample_scene(self.np_random, self.config))
        self._sim.update_distances()
        self._started = True
        self.steps = 0
        self.cumulative_collisions = 0
        self.episode_return = 0.0
        self.last_action: int | None = None
        if self.render_mode == "human":
            self.render()
        return self._sim.observe()[0], self._info(0, False)

    def step(self, action: Any):
        if not self._started:
            raise RuntimeError("call reset() before step()")
        cfg, sim = self.config, self._sim
        action = core.validate_action(action, cfg.num_actions)
        self._move_agent(action)
        sim.move_obstacles()
        sim.update_distances()
        # count_contacts() for one scene; a whole-array count is several times cheaper
        collisions = int(np.count_nonzero(sim.contacts()))
        moved = action != core.STAY
        reward = core.punishments(collisions, moved, cfg)
        self.steps += 1
        self.cumulative_collisions += collisions
        self.episode_return += reward
        self.last_action = action
        terminated = cfg.terminate_on_collision and collisions > 0
        if self.render_mode == "human":
            self.render()
        obs = sim.observe()[0]
        return obs, reward, terminated, False, self._info(collisions, moved)

    def _move_agent(self, action: int) -> None:
        """``CollisionSimulation.move_agents`` for one agent, in Python floats (same float64 arithmetic)."""
        low, high = self.config.agent_radius, 1.0 - self.config.agent_radius
        dx, dy = self._moves[action]
        agent = self._sim.agent
        x, y = agent[0].tolist()
        agent[0, 0] = min(max(x + dx, low), high)
        agent[0, 1] = min(max(y + dy, low), high)

    def _info(self, collisions: int, moved: bool) -> dict[str, Any]:
        return {
            "collisions": collisions,
            "cumulative_collisions": self.cumulative_collisions,
            "moved": moved,
            "cost": float(collisions),
        }

    @property
    def simulation(self) -> core.CollisionSimulation:
        """The simulation holding this env's state (one scene): for planners and tools that
        read the exact state; writing to it bypasses the env's bookkeeping, use ``set_state``."""
        return self._sim

    @property
    def agent_position(self) -> np.ndarray:
        """A copy of the agent's (x, y)."""
        return self._sim.agent[0].copy()

    @property
    def obstacle_positions(self) -> np.ndarray:
        """A copy of the obstacles' positions, shape (N, 2)."""
        return self._sim.obstacles[:2, 0].T.copy()

    @property
    def obstacle_velocities(self) -> np.ndarray:
        """A copy of the obstacles' velocities (world units per step), shape (N, 2)."""
        return self._sim.obstacles[2:, 0].T.copy()

    def set_state(self, agent: np.ndarray, positions: np.ndarray, velocities: np.ndarray) -> None:
        """Place the agent and obstacles by hand (tests, demos); call after ``reset``.

        :raises ValueError: on wrong shapes or positions outside the arena.
        """
        n = self.config.num_obstacles
        agent = np.asarray(agent, dtype=core.DTYPE)
        positions = np.asarray(positions, dtype=core.DTYPE)
        velocities = np.asarray(velocities, dtype=core.DTYPE)
        if agent.shape != (2,) or positions.shape != (n, 2) or velocities.shape != (n, 2):
            raise ValueError(
                f"expected agent (2,), positions ({n}, 2), velocities ({n}, 2); got "
                f"{agent.shape}, {positions.shape}, {velocities.shape}"
            )
        if not (
            np.all((agent >= 0) & (agent <= 1)) and np.all((positions >= 0) & (positions <= 1))
        ):
            raise ValueError("agent and obstacle positions must lie in the unit square [0, 1]^2")
        if not self._started:
            raise RuntimeError("call reset() before set_state()")
        self._sim.place(0, agent, np.concatenate([positions.T, velocities.T]))
        self._sim.update_distances()

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; pass render_mode='human' or 'rgb_array'"
            )
            return None
        if not self._started:
            raise RuntimeError("call reset() before render()")
        if self._renderer is None:
            from neg_envs.rendering import CollisionRenderer

            self._renderer = CollisionRenderer(
                self.window_size, self.render_mode, self.metadata["render_fps"]
            )
        return self._renderer.draw(
            agent=self._sim.agent[0],
            agent_radius=self.config.agent_radius,
            obstacles=self._sim.obstacles[:2, 0].T,
            obstacle_radius=self.config.obstacle_radius,
            contacts=self._sim.contacts()[0],
            heading=core.MOVES[self.last_action]
            if self.last_action is not None
            else core.MOVES[core.RIGHT],
            hud=(
                f"step {self.steps}",
                f"collisions {self.cumulative_collisions}",
                f"return {self.episode_return:.2f}",
            ),
        )

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
