"""``NegCollision-v0``: open-space collision avoidance where the agent is only ever punished."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from neg_envs import collision_core as core
from neg_envs.collision_core import DEFAULT_MASK_HORIZON, CollisionConfig

if TYPE_CHECKING:
    from neg_envs.rendering import CollisionRenderer


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

    ``action_masks()`` (what sb3-contrib's ``MaskablePPO`` reads) forbids, from the current
    state, the moves into a wall (the agent is already against it: the move changes nothing
    but costs) and every action that would touch more obstacles at the next step than the best
    remaining action; the next step is computed exactly, as ``step`` would. With
    ``mask_horizon`` H > 1 it looks further: of those actions, the ones that, repeated, would
    touch an obstacle within H steps sooner than another one are forbidden as well (exact too:
    obstacles move straight and bounce). At least one action stays allowed. ``get_keys_to_action()`` maps the arrow keys and WASD to the moves and space
    to stay, so ``gymnasium.utils.play.play(gym.make("NegCollision-v0", render_mode="rgb_array"),
    noop=4)`` lets a person play (``noop=4``: no key held stays; ``play``'s default is action 0).

    Scenes can vary per episode: ``num_obstacles``, ``obstacle_radius`` and ``agent_radius``
    each take a ``(low, high)`` range, and every episode draws its count and its two radii
    uniformly from them (from ``np_random``, so a seed fixes the sequence of scenes). A varying
    count needs a fixed-size observation (``"nearest"`` or ``"nearest_radii"``: empty slots are
    flagged), varying radii the layout that shows them (``"nearest_radii"``).
    ``NegCollisionMix-v0`` registers such a mix.

    :param num_obstacles: number of obstacles N, 0 to 100,000, or a (low, high) range drawn
        from per episode.
    :param obstacle_radius: obstacle radius in world units, (0, 0.1], or a (low, high) range
        drawn from per episode (the same radius for every obstacle of a scene).
    :param obstacle_speed: obstacle speed in world units per step, [0, 0.1], or a (low, high)
        range from which each obstacle draws its speed.
    :param agent_radius: agent radius, (0, 0.1], or a (low, high) range drawn from per episode.
    :param agent_step: distance the agent moves per action, (0, 0.1].
    :param collision_penalty: punishment per obstacle in contact per step, >= 0.
    :param move_penalty: punishment per move, >= 0.
    :param terminate_on_collision: end the episode at the first collision.
    :param observation: ``"absolute"`` (the source's layout, size 2 + 4N), ``"nearest"``
        (egocentric k nearest obstacles, size 2 + 5k, independent of N) or ``"nearest_radii"``
        (the same with the agent's and the obstacles' radius in front, size 4 + 5k); see
        ``CollisionConfig.observation_space`` for the exact layouts and bounds.
    :param k_nearest: obstacles shown in ``"nearest"`` mode, 1 to 1024.
    :param allow_stay: keep the stay action (False gives the source's four moves).
    :param mask_horizon: steps ``action_masks()`` looks ahead, 1 to 50 (default 5; 1: the
        one-step mask): with H > 1 it also
        forbids, of the actions the one-step rule allows, those that would touch an obstacle
        sooner than another one were the agent to repeat them for H steps.
    :param max_density: for scenes that vary per episode, the largest share of the arena the
        obstacles' contact discs (radius: agent's + obstacle's) may cover, (0, 1]: the count
        drawn is capped to fit it (None: no cap). Keeps a mix of counts and radii feasible.
    :param render_mode: ``None``, ``"human"`` or ``"rgb_array"``.
    :param window_size: side of the rendered arena in pixels, 64 to 4096; frames are this wide
        and a little taller, the HUD (step, collisions, return) having a band of its own above
        the arena.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 30}

    def __init__(
        self,
        num_obstacles: int | tuple[int, int] = 10,
        obstacle_radius: float | tuple[float, float] = 0.03,
        obstacle_speed: float | tuple[float, float] = 0.01,
        agent_radius: float | tuple[float, float] = 0.02,
        agent_step: float = 0.02,
        collision_penalty: float = 1.0,
        move_penalty: float = 0.01,
        terminate_on_collision: bool = False,
        observation: str = "absolute",
        k_nearest: int = 8,
        allow_stay: bool = True,
        mask_horizon: int = DEFAULT_MASK_HORIZON,
        max_density: float | None = None,
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
            mask_horizon=mask_horizon,
            max_density=max_density,
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
        self._renderer: CollisionRenderer | None = None
        # One scene of the batched env's simulation: the same physics, unchanged.
        self._sim = core.CollisionSimulation(self.config, batch=1)
        self._started = False
        # The way the bird faces: its last move (it keeps facing there while it stays).
        self._facing = core.RIGHT

    #: ``reset(options=...)`` keys this env understands: none.
    RESET_OPTIONS: tuple[str, ...] = ()

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
        return self._sim.observe()[0], self._info(0, False)

    def step(self, action: Any):
        if not self._started:
            raise RuntimeError("call reset() before step()")
        action = core.validate_action(action, self.config.num_actions)
        collisions, moved, reward, terminated = self._sim.step_one(action)
        if moved:
            self._facing = action
        if self.render_mode == "human":
            self.render()
        obs = self._sim.observe()[0]
        return obs, reward, terminated, False, self._info(collisions, moved)

    def action_masks(self) -> np.ndarray:
        """The actions allowed now, ``(num_actions,)`` bool (the rule is in the class docstring).

        sb3-contrib's ``MaskablePPO`` calls it before every action.
        """
        if not self._started:
            raise RuntimeError("call reset() before action_masks()")
        return self._sim.allowed_actions()[0]

    def get_keys_to_action(self) -> dict[tuple[int, ...], int]:
        """Key combinations to actions for ``gymnasium.utils.play.play``: arrows or WASD move,
        space stays (``scripts/play.py`` uses the same mapping)."""
        from neg_envs.keyboard import keys_to_action

        return keys_to_action(self.config.allow_stay)

    def _info(self, collisions: int, moved: bool) -> dict[str, Any]:
        return {
            "collisions": collisions,
            "cumulative_collisions": self._sim.cumulative_collisions.item(0),
            "moved": moved,
            "cost": float(collisions),
        }

    @property
    def simulation(self) -> core.CollisionSimulation:
        """The simulation holding this env's state (one scene): for planners and tools that
        read the exact state; writing to it bypasses the env's bookkeeping, use ``set_state``."""
        return self._sim

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
        """Place the agent and obstacles by hand (tests, demos); call after ``reset``.

        :param agent: the agent's (x, y), in the unit square.
        :param positions: obstacles' (x, y), ``(N, 2)``, in the unit square.
        :param velocities: obstacles' (dx, dy) per step, ``(N, 2)``, each component at most the
            top ``obstacle_speed`` in size, so that observations stay in the observation space.
        :raises ValueError: on wrong shapes, non-finite values, positions outside the arena or
            velocities beyond the top speed.
        """
        low_n, n = self.config.count_range
        agent = np.asarray(agent, dtype=core.DTYPE)
        positions = np.asarray(positions, dtype=core.DTYPE)
        velocities = np.asarray(velocities, dtype=core.DTYPE)
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
        if not self._started:
            raise RuntimeError("call reset() before set_state()")
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
        if not self._started:
            raise RuntimeError("call reset() before render()")
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

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
