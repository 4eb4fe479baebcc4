"""Configuration and vectorised physics shared by the single and the batched collision env.

``CollisionSimulation`` holds ``B`` scenes and steps them; both envs are thin Gymnasium shells
around it (the single env with ``B = 1`` and ``step_one``), so a sub-env of the batched env
reproduces the single env's trajectory bit for bit. World: the unit square, ``y`` up. No pygame.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Any

import numpy as np
from gymnasium import spaces

from negdl.checks import check_bool, check_choice, check_int, check_number

#: Action indices. ``STAY`` exists only when ``allow_stay`` is true.
UP, DOWN, LEFT, RIGHT, STAY = 0, 1, 2, 3, 4
#: Unit displacement of each action, indexed by action.
MOVES = np.array([[0.0, 1.0], [0.0, -1.0], [-1.0, 0.0], [1.0, 0.0], [0.0, 0.0]], dtype=np.float64)

OBSERVATION_MODES = ("absolute", "nearest", "nearest_radii")
MAX_OBSTACLES = 100_000
MAX_RADIUS = 0.1
MAX_SPEED = 0.1
MAX_K_NEAREST = 1024
MAX_MASK_HORIZON = 50
#: Steps ``action_masks()`` looks ahead unless told; the one-step mask lets an agent step where
#: every action soon touches an obstacle; with 8 steps rather than 5 the generalist collided less.
DEFAULT_MASK_HORIZON = 8
#: Obstacles start at least this many contact distances away from the agent.
SPAWN_CLEARANCE = 2.0
#: State is float64 so the single env can move its agent with Python floats, bit-identical to
#: the batched env's numpy arithmetic; observations are float32.
DTYPE = np.float64
OBS_DTYPE = np.float32


def validate_action(action: Any, n: int, start: int = 0) -> int:
    """``action`` as an ``int`` in ``[start, start + n)``: a Python or numpy integer, or an
    integer array of size one (what SB3's ``predict`` returns); bools and floats are refused."""
    if type(action) is int and start <= action < start + n:  # the common case, checked first
        return action
    if isinstance(action, np.ndarray):
        if action.size != 1:
            raise ValueError(
                f"action must be a single integer, got an array of shape {action.shape}"
            )
        action = action.reshape(()).item()  # a float or bool array's item is refused below
    return check_int("action", action, start, start + n - 1)


def check_reset_options(options: Any, accepted: Sequence[str], env_name: str) -> None:
    """Refuse ``reset(options=...)`` that is not a dict or has a key not in ``accepted`` (a
    typo would otherwise pass silently, as Gymnasium envs usually ignore unknown options)."""
    if options is None:
        return
    if not isinstance(options, dict):
        raise TypeError(f"reset options must be a dict or None, got {type(options).__name__}")
    unknown = sorted(set(options) - set(accepted), key=str)
    if unknown:
        allowed = ", ".join(repr(key) for key in accepted) or "none"
        raise ValueError(
            f"unknown reset option(s) {unknown} for {env_name}; accepted options: {allowed}"
        )


def check_seed(seed: Any) -> int | None:
    """``seed`` if it is None or an integer >= 0 (what ``reset(seed=...)`` accepts)."""
    return None if seed is None else check_int("seed", seed, 0)


def checked_value_or_range(
    name: str, value: Any, check: Callable[[str, Any], Any], collapse: bool = True
) -> Any:
    """``check(name, value)``, or for a ``(low, high)`` pair each end checked and ``low <=
    high`` (collapsed to one value when both ends are equal, unless ``collapse`` is False)."""
    if not isinstance(value, (tuple, list)):
        return check(name, value)
    if len(value) != 2:
        raise ValueError(f"{name} as a range must be (low, high), got {value!r}")
    low, high = check(f"{name}[0]", value[0]), check(f"{name}[1]", value[1])
    if low > high:
        raise ValueError(f"{name} range needs low <= high, got {value!r}")
    return low if collapse and low == high else (low, high)


_count = functools.partial(check_int, low=0, high=MAX_OBSTACLES)
_radius = functools.partial(check_number, low=0.0, high=MAX_RADIUS, low_open=True)
_speed = functools.partial(check_number, low=0.0, high=MAX_SPEED)
_ranged = functools.partial(checked_value_or_range, check=_radius)
_penalty = functools.partial(check_number, low=0.0, high=1e6)
#: How ``CollisionConfig`` checks each field (all but ``max_density``), in this order.
_FIELD_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "num_obstacles": functools.partial(checked_value_or_range, check=_count),
    "obstacle_radius": _ranged,
    "agent_radius": _ranged,
    "agent_step": functools.partial(check_number, low=0.0, high=MAX_SPEED, low_open=True),
    "obstacle_speed": functools.partial(checked_value_or_range, check=_speed, collapse=False),
    "collision_penalty": _penalty,
    "move_penalty": _penalty,
    "terminate_on_collision": check_bool,
    "allow_stay": check_bool,
    "observation": functools.partial(check_choice, choices=OBSERVATION_MODES),
    "k_nearest": functools.partial(check_int, low=1, high=MAX_K_NEAREST),
    "mask_horizon": functools.partial(check_int, low=1, high=MAX_MASK_HORIZON),
}


def _bounds(value: Any) -> tuple[Any, Any]:
    return value if isinstance(value, tuple) else (value, value)


@dataclass(frozen=True)
class CollisionConfig:
    """Validated parameters of a ``NegCollision`` environment; a bad one raises ``ValueError``
    or ``TypeError`` naming it and its range.

    ``num_obstacles``, ``obstacle_radius`` and ``agent_radius`` also take a ``(low, high)``
    range: every episode then draws its count and radii from them (from the env's seeded RNG).
    A varying count needs a fixed-size observation (``"nearest"`` or ``"nearest_radii"``, empty
    slots flagged), varying radii ``"nearest_radii"``, which shows them.

    :param num_obstacles: number of obstacles N, 0 to 100,000, or a range.
    :param obstacle_radius: obstacle radius in world units, (0, 0.1], or a range.
    :param obstacle_speed: obstacle speed in world units per step, [0, 0.1], or a range from
        which each obstacle draws its own.
    :param agent_radius: agent radius, (0, 0.1], or a range.
    :param agent_step: distance the agent moves per action, (0, 0.1].
    :param collision_penalty: punishment per obstacle in contact per step, >= 0.
    :param move_penalty: punishment per move, >= 0.
    :param terminate_on_collision: end the episode at the first collision.
    :param observation: ``"absolute"`` (the source's layout, size 2 + 4N), ``"nearest"`` (the k
        nearest obstacles, egocentric, size 2 + 5k) or ``"nearest_radii"`` (the same with the
        two radii in front, size 4 + 5k); layouts in :meth:`observation_space`.
    :param k_nearest: obstacles the nearest layouts show, 1 to 1024.
    :param allow_stay: keep the stay action (False gives the source's four moves).
    :param mask_horizon: steps ``action_masks()`` looks ahead, 1 to 50 (1: the one-step mask).
    :param max_density: for varying scenes, the largest share of the arena the obstacles'
        contact discs may cover, (0, 1]: the count drawn is capped to fit (None: no cap).
    """

    num_obstacles: int | tuple[int, int] = 10
    obstacle_radius: float | tuple[float, float] = 0.03
    obstacle_speed: float | tuple[float, float] = 0.01
    agent_radius: float | tuple[float, float] = 0.02
    agent_step: float = 0.02
    collision_penalty: float = 1.0
    move_penalty: float = 0.01
    terminate_on_collision: bool = False
    observation: str = "absolute"
    k_nearest: int = 8
    allow_stay: bool = True
    mask_horizon: int = DEFAULT_MASK_HORIZON
    max_density: float | None = None

    def __post_init__(self) -> None:
        for name, check in _FIELD_CHECKS.items():
            object.__setattr__(self, name, check(name, getattr(self, name)))
        if self.max_density is not None:
            if not self.varies:
                raise ValueError(
                    f"max_density={self.max_density!r} caps the obstacle count of scenes that "
                    "vary per episode, but num_obstacles and both radii are fixed; give one as a "
                    "(low, high) range, or pass max_density=None (NegCollisionMix-v0 sets it, "
                    "so fixing its scene needs max_density=None too)"
                )
            density = check_number("max_density", self.max_density, 0.0, 1.0, low_open=True)
            object.__setattr__(self, "max_density", density)
        if isinstance(self.num_obstacles, tuple) and self.observation == "absolute":
            raise ValueError(
                f"num_obstacles={self.num_obstacles} varies per episode, but the 'absolute' "
                "observation has one slot per obstacle; use observation='nearest' or "
                "'nearest_radii' (fixed size, empty slots flagged)"
            )
        radii = [
            n for n in ("obstacle_radius", "agent_radius") if isinstance(getattr(self, n), tuple)
        ]
        if radii and self.observation != "nearest_radii":
            raise ValueError(
                f"{' and '.join(radii)} vary per episode, but the {self.observation!r} observation "
                "does not show the radii; use observation='nearest_radii'"
            )

    @cached_property
    def speed_range(self) -> tuple[float, float]:
        """Lowest and highest obstacle speed (world units per step)."""
        return _bounds(self.obstacle_speed)

    @cached_property
    def num_actions(self) -> int:
        return 5 if self.allow_stay else 4

    @cached_property
    def count_range(self) -> tuple[int, int]:
        """Fewest and most obstacles a scene has."""
        return _bounds(self.num_obstacles)

    @cached_property
    def max_obstacles(self) -> int:
        """Obstacle slots every scene's arrays have."""
        return self.count_range[1]

    @cached_property
    def obstacle_radius_range(self) -> tuple[float, float]:
        return _bounds(self.obstacle_radius)

    @cached_property
    def agent_radius_range(self) -> tuple[float, float]:
        return _bounds(self.agent_radius)

    @cached_property
    def varies(self) -> bool:
        """Whether scenes differ per episode in count or radii (not only in placement)."""
        return any(
            isinstance(value, tuple)
            for value in (self.num_obstacles, self.obstacle_radius, self.agent_radius)
        )

    @cached_property
    def contact_distance(self) -> float:
        """Agent radius + obstacle radius: the largest of any scene when the radii vary."""
        return self.agent_radius_range[1] + self.obstacle_radius_range[1]

    @cached_property
    def velocity_divisor(self) -> float:
        """The top speed, so observed velocities lie in [-1, 1] (a division, not a product with
        ``1 / top``, which overflows for a subnormal top speed)."""
        top = self.speed_range[1]
        return top if top > 0 else 1.0

    @cached_property
    def obstacle_obs_divisor(self) -> np.ndarray:
        """Divisor ``(4, 1, 1)`` from the obstacle planes (x, y, vx, vy) to their observation."""
        return np.array([1.0, 1.0, self.velocity_divisor, self.velocity_divisor])[:, None, None]

    @cached_property
    def agent_obs_size(self) -> int:
        """Leading observation values: x, y (and the two radii in ``nearest_radii``)."""
        return 4 if self.observation == "nearest_radii" else 2

    @cached_property
    def obs_size(self) -> int:
        if self.observation == "absolute":
            return 2 + 4 * self.max_obstacles
        return self.agent_obs_size + 5 * self.k_nearest

    def scene(
        self, num_obstacles: int, obstacle_radius: float, agent_radius: float
    ) -> CollisionConfig:
        """This config with one scene's count and radii fixed (what a planner needs)."""
        if not self.varies:
            return self
        return replace(
            self,
            num_obstacles=int(num_obstacles),
            obstacle_radius=float(obstacle_radius),
            agent_radius=float(agent_radius),
            max_density=None,
        )

    def observation_space(self) -> spaces.Box:
        """Finite bounds of one observation.

        ``absolute``: agent (x, y) in [0, 1], then per obstacle (x, y) in [0, 1] and its velocity
        (dx, dy) / top speed in [-1, 1].
        ``nearest``: agent (x, y), then for the ``k_nearest`` closest obstacles, nearest first,
        (present, rel_x, rel_y, dx, dy): present is 1 (0 for padding, all fields 0), rel_* =
        obstacle - agent in [-1, 1], velocity as above.
        ``nearest_radii``: like ``nearest`` with the agent's and the obstacles' radius divided
        by ``MAX_RADIUS`` after (x, y), in (0, 1]: for configs whose radii vary per episode.
        """
        low = np.full(self.obs_size, -1.0, dtype=OBS_DTYPE)
        high = np.ones(self.obs_size, dtype=OBS_DTYPE)
        low[: self.agent_obs_size] = 0.0
        if self.observation == "absolute":
            low[2:].reshape(self.max_obstacles, 4)[:, :2] = 0.0
        else:
            low[self.agent_obs_size :].reshape(self.k_nearest, 5)[:, 0] = 0.0
        return spaces.Box(low, high, dtype=OBS_DTYPE)

    def action_space(self) -> spaces.Discrete:
        return spaces.Discrete(self.num_actions)

    @cached_property
    def agent_moves(self) -> np.ndarray:
        """Displacement of each action, ``(num_actions, 2)``."""
        return MOVES[: self.num_actions] * self.agent_step


def config_from(kwargs: dict[str, Any], own: str) -> CollisionConfig:
    """``CollisionConfig(**kwargs)``, an unknown name refused with the accepted ones (``own``:
    the env's other parameters)."""
    names = [field.name for field in fields(CollisionConfig)]
    unknown = sorted(set(kwargs) - set(names))
    if unknown:
        raise TypeError(
            f"unknown NegCollision parameter(s) {unknown}; accepted: {own}, {', '.join(names)}"
        )
    return CollisionConfig(**kwargs)


def step_info(collisions: Any, cumulative: Any, moved: Any) -> dict[str, Any]:
    """A step's info, of one scene (numbers) or every scene (``(B,)`` arrays); ``cost`` is the
    collisions as floats, for safe-RL tooling."""
    return {
        "collisions": collisions,
        "cumulative_collisions": cumulative,
        "moved": moved,
        "cost": collisions * 1.0,
    }


class SimulationEnv:
    """What both collision envs share: a ``config``, the ``simulation`` they wrap, and the
    refusal to act before the first ``reset``."""

    config: CollisionConfig
    _sim: CollisionSimulation
    _started = False

    @property
    def simulation(self) -> CollisionSimulation:
        """The simulation holding this env's state (scene ``i`` is sub-env ``i``), for planners
        and tools that read it; write only through the env (e.g. ``set_state``)."""
        return self._sim

    def _check_started(self, what: str) -> None:
        if not self._started:
            raise RuntimeError(f"call reset() before {what}()")


def simulation_bytes(cfg: CollisionConfig, batch: int) -> int:
    """Bytes ``batch`` scenes take: float64 planes, distances and scratch ``(7, B, N)``, and four
    float32 ``(B, obs_size)`` arrays (buffer, returned copy, batched space's low and high)."""
    return batch * (7 * cfg.max_obstacles * 8 + 4 * cfg.obs_size * 4 + 5 * 8)


def sample_scene(
    rng: np.random.Generator, cfg: CollisionConfig
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Draw a fresh scene: agent at the centre, obstacles uniform and clear of the agent.

    Returns ``agent (2,)``, ``obstacles (4, max_obstacles)`` (planes x, y, vx, vy) and the
    scene's ``(agent_radius, obstacle_radius)``. A varying scene draws its radii, then its count
    (its top lowered, never below the bottom, to fit ``max_density``); slots beyond the count
    are NaN, which no comparison counts as a contact or wall hit. Rejected obstacles are redrawn
    together, round by round, so the number of RNG draws depends only on the seed.
    """
    if cfg.varies:
        r = float(rng.uniform(*cfg.obstacle_radius_range))
        agent_r = float(rng.uniform(*cfg.agent_radius_range))
        low, high = cfg.count_range
        if cfg.max_density is not None:
            high = max(low, min(high, int(cfg.max_density / (math.pi * (r + agent_r) ** 2))))
        n = int(rng.integers(low, high + 1))
    else:
        n, r, agent_r = cfg.max_obstacles, float(cfg.obstacle_radius), float(cfg.agent_radius)  # type: ignore[arg-type]
    agent = np.full(2, 0.5, dtype=DTYPE)
    pos = rng.uniform(r, 1.0 - r, size=(n, 2))
    clearance2 = (SPAWN_CLEARANCE * (agent_r + r)) ** 2
    bad = ((pos - agent) ** 2).sum(axis=1) < clearance2
    while bad.any():
        pos[bad] = rng.uniform(r, 1.0 - r, size=(int(bad.sum()), 2))
        bad = ((pos - agent) ** 2).sum(axis=1) < clearance2
    heading = rng.uniform(0.0, 2.0 * np.pi, size=n)
    slow, fast = cfg.speed_range
    speed = rng.uniform(slow, fast, size=n) if fast > slow else np.full(n, slow)
    vel = speed * np.stack([np.cos(heading), np.sin(heading)])
    obstacles = np.concatenate([pos.T, vel])
    if n < cfg.max_obstacles:
        padding = np.full((4, cfg.max_obstacles - n), np.nan)
        obstacles = np.concatenate([obstacles, padding], axis=1)
    return agent, obstacles, (agent_r, r)


class CollisionSimulation:
    """State and physics of ``batch`` collision scenes, stepped together.

    ``agent`` is ``(B, 2)``; ``obstacles`` is ``(4, B, N)``: planes x, y, vx, vy (velocities in
    world units per step), so every op runs on contiguous memory. ``steps``,
    ``cumulative_collisions`` and ``episode_return`` ``(B,)`` count each scene's episode;
    ``counts``, ``agent_radius`` and ``obstacle_radius`` ``(B,)`` describe each scene (a scene's
    obstacles are its first ``counts[b]`` slots, the others NaN). Buffers and views are made
    once: at one scene numpy's per-call overhead, not arithmetic, is what a step costs.
    A copy or pickle (``copy.deepcopy(env)``) holds these arrays and makes its views anew.
    """

    #: The arrays that hold the state; buffers and views are made from them and ``cfg``.
    _STATE = (
        "agent",
        "obstacles",
        "dist2",
        "counts",
        "agent_radius",
        "obstacle_radius",
        "steps",
        "cumulative_collisions",
        "episode_return",
    )

    def __getstate__(self) -> dict[str, Any]:
        # The views (and the memoryviews, which cannot be pickled) are left out: copied, a
        # view would no longer share its base's memory.
        return {"cfg": self.cfg} | {name: getattr(self, name) for name in self._STATE}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["cfg"], len(state["agent"]))  # type: ignore[misc]
        for name in self._STATE:
            getattr(self, name)[...] = state[name]
        self.geometry_changed()

    def __init__(self, cfg: CollisionConfig, batch: int) -> None:
        n = cfg.max_obstacles
        self.cfg = cfg
        self.agent = np.zeros((batch, 2), dtype=DTYPE)
        self.obstacles = np.zeros((4, batch, n), dtype=DTYPE)
        self.dist2 = np.zeros((batch, n), dtype=DTYPE)
        self.counts = np.full(batch, n, dtype=np.int64)
        self.agent_radius = np.full(batch, cfg.agent_radius_range[1], dtype=DTYPE)
        self.obstacle_radius = np.full(batch, cfg.obstacle_radius_range[1], dtype=DTYPE)
        self._agent_planes = self.agent.T[:, :, None]  # (2, B, 1) view, broadcasts over obstacles
        self._diff = np.empty((2, batch, n), dtype=DTYPE)
        self._obs = np.empty((batch, cfg.obs_size), dtype=OBS_DTYPE)
        self._agent_fields = self._obs[:, :2]
        # The absolute observation's per-obstacle fields as (4, B, N) planes: one scaled copy fills them.
        if cfg.observation == "absolute":
            self._fields = self._obs[:, 2:].reshape(batch, n, 4).transpose(2, 0, 1)
        self._pos, self._vel = self.obstacles[:2], self.obstacles[2:]
        # Flat views of the (contiguous) position and velocity planes for fixing wall hits.
        self._flat_pos, self._flat_vel = self._pos.reshape(-1), self._vel.reshape(-1)
        self.steps = np.zeros(batch, dtype=np.int64)
        self.cumulative_collisions = np.zeros(batch, dtype=np.int64)
        self.episode_return = np.zeros(batch, dtype=DTYPE)
        # step_one works in Python floats: the moves as plain numbers, the counters through
        # memoryviews (Python-speed access to the same memory).
        self._move_list = cfg.agent_moves.tolist()
        self._counter_views = tuple(
            memoryview(counter)  # type: ignore[arg-type]  # numpy's stubs lack the buffer protocol
            for counter in (self.steps, self.cumulative_collisions, self.episode_return)
        )
        self.geometry_changed()

    def geometry_changed(self) -> None:
        """Recompute contact distances and wall bounds after a radius changed: plain numbers for
        a fixed config (the cheapest operands), ``(B, 1)`` columns for a varying one."""
        cfg = self.cfg
        agent_r: Any
        obstacle_r: Any
        if cfg.varies:
            agent_r, obstacle_r = self.agent_radius[:, None], self.obstacle_radius[:, None]
        else:
            agent_r, obstacle_r = cfg.agent_radius, cfg.obstacle_radius
        self._contact2 = (agent_r + obstacle_r) ** 2
        self._walls = ((obstacle_r, np.less), (1.0 - obstacle_r, np.greater))
        self._agent_low, self._agent_high = agent_r, 1.0 - agent_r
        first = float(self.agent_radius[0])
        self._agent_bounds = (first, 1.0 - first)  # step_one's, in Python floats

    def scene_config(self, index: int) -> CollisionConfig:
        """The config of scene ``index`` as it is now: count and radii fixed to the scene's."""
        return self.cfg.scene(
            self.counts[index], self.obstacle_radius[index], self.agent_radius[index]
        )

    def place(
        self,
        index: int | np.ndarray,
        agent: np.ndarray,
        obstacles: np.ndarray,
        radii: tuple[float, float] | None = None,
    ) -> None:
        """Put scene(s) ``index`` into the state (e.g. from ``sample_scene``), counters kept;
        ``radii`` is ``(agent_radius, obstacle_radius)`` for a varying config (None: unchanged),
        the count is the number of non-NaN positions. Call ``update_distances`` afterwards."""
        self.agent[index] = agent
        self.obstacles[:, index] = obstacles
        if self.cfg.varies:
            self.counts[index] = np.count_nonzero(~np.isnan(obstacles[0]), axis=-1)
            if radii is not None:
                self.agent_radius[index], self.obstacle_radius[index] = radii

    def reset_scenes(
        self, indices: Sequence[int] | np.ndarray, rngs: Sequence[np.random.Generator]
    ) -> None:
        """Start a new episode in each scene of ``indices``, scene ``indices[k]`` drawn from
        ``rngs[k]``."""
        for index, rng in zip(indices, rngs, strict=True):
            self.place(index, *sample_scene(rng, self.cfg))
        if self.cfg.varies:
            self.geometry_changed()
        self.steps[indices] = 0
        self.cumulative_collisions[indices] = 0
        self.episode_return[indices] = 0.0
        self.update_distances()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Advance every scene one step with validated ``actions`` ``(B,)``; update the counters
        and return ``(collisions, moved, rewards, terminated)``, each ``(B,)``."""
        agent = self.agent
        agent += self.cfg.agent_moves[actions]
        np.maximum(agent, self._agent_low, out=agent)
        np.minimum(agent, self._agent_high, out=agent)
        self.move_obstacles()
        self.update_distances()
        collisions = self.contacts().sum(axis=-1)
        moved = actions != STAY
        rewards = punishments(collisions, moved, self.cfg)
        self.steps += 1
        self.cumulative_collisions += collisions
        self.episode_return += rewards
        terminated = (collisions > 0) & self.cfg.terminate_on_collision
        return collisions, moved, rewards, terminated

    def step_one(self, action: int) -> tuple[int, bool, float, bool]:
        """``step`` for a single scene in Python scalars: the same float64 arithmetic, so the
        same trajectory, without numpy's per-call overhead on one-element arrays."""
        low, high = self._agent_bounds
        dx, dy = self._move_list[action]
        agent = self.agent
        x, y = agent[0].tolist()
        agent[0, 0] = min(max(x + dx, low), high)
        agent[0, 1] = min(max(y + dy, low), high)
        self.move_obstacles()
        self.update_distances()
        # A whole-array count is several times cheaper than contacts().sum() for one scene.
        collisions = int(np.count_nonzero(self.dist2 < self._contact2))
        moved = action != STAY
        reward = punishments(collisions, moved, self.cfg)
        steps, cumulative_collisions, episode_return = self._counter_views
        steps[0] += 1
        cumulative_collisions[0] += collisions
        episode_return[0] += reward
        return collisions, moved, reward, self.cfg.terminate_on_collision and collisions > 0

    def move_obstacles(self) -> None:
        """Advance obstacles, reflecting those that cross a wall (speeds and radii are at most
        0.1, so one reflection suffices). Few cross in a step: only those are fixed."""
        self._pos += self._vel
        for bound, beyond in self._walls:
            crossed = beyond(self._pos, bound)
            if np.count_nonzero(crossed):  # cheaper than flatnonzero when nothing crossed
                hit = np.flatnonzero(crossed)
                if not isinstance(bound, float):  # one bound per scene: flat index -> scene
                    batch, n = self.dist2.shape
                    bound = bound[(hit // n) % batch, 0]
                self._flat_pos[hit] = 2 * bound - self._flat_pos[hit]
                self._flat_vel[hit] = -self._flat_vel[hit]

    def update_distances(self) -> np.ndarray:
        """Recompute and return the squared agent-obstacle distances ``dist2`` ``(B, N)``."""
        diff = np.subtract(self._pos, self._agent_planes, out=self._diff)
        np.multiply(diff, diff, out=diff)
        return np.add(diff[0], diff[1], out=self.dist2)

    def contacts(self) -> np.ndarray:
        """Boolean ``(B, N)``: which obstacles touch their agent (after ``update_distances``)."""
        return self.dist2 < self._contact2

    def allowed_actions(self) -> np.ndarray:
        """The action mask of every scene, ``(B, num_actions)`` bool (the rule is in
        ``NegCollisionEnv.action_masks``); at least one action is always allowed."""
        cfg = self.cfg
        low, high = np.asarray(self._agent_low)[..., None], np.asarray(self._agent_high)[..., None]
        targets = np.clip(self.agent[:, None, :] + cfg.agent_moves, low, high)
        useful = ~np.all(targets == self.agent[:, None, :], axis=-1)
        if cfg.allow_stay:
            useful[:, STAY] = True
        next_contacts, first = self.lookahead(cfg.mask_horizon)
        contacts = np.where(useful, next_contacts, np.iinfo(np.int64).max)
        allowed = contacts == contacts.min(axis=1, keepdims=True)
        if cfg.mask_horizon > 1:
            first = np.where(allowed, first, 0)
            allowed &= first == first.max(axis=1, keepdims=True)
        return allowed

    def lookahead(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """For the agent repeating each action: the contacts it makes at the next step, and the
        first of the next ``horizon`` steps at which it touches an obstacle (``horizon + 1``:
        none), each ``(B, num_actions)`` int; exact, the arithmetic of ``step`` on copies."""
        cfg = self.cfg
        low, high = self._agent_low, self._agent_high
        shape = (self.agent.shape[0], cfg.num_actions)
        contacts = np.zeros(shape, dtype=np.int64)
        first = np.full(shape, horizon + 1, dtype=np.int64)
        # Only obstacles that can reach the agent within the horizon matter: the fewest slots
        # holding every such obstacle of every scene, gathered nearest first. One that set_state
        # put beyond its wall bound (at most its radius) jumps back at its first reflection, by
        # up to twice that per axis; 1e-9: rounding.
        steps = horizon * (cfg.agent_step + cfg.speed_range[1])
        jump = 2 * math.sqrt(2) * cfg.obstacle_radius_range[1]
        reach = math.sqrt(np.max(self._contact2)) + steps + jump + 1e-9
        near = np.count_nonzero(self.dist2 < reach * reach, axis=1).max(initial=0)
        if near == 0:
            return contacts, first
        nearest = np.argpartition(self.dist2, near - 1, axis=1)[None, :, :near]
        positions = np.take_along_axis(self._pos, nearest, axis=2)
        velocities = np.take_along_axis(self._vel, nearest, axis=2)
        agents = np.repeat(self.agent[None], cfg.num_actions, axis=0)  # (A, B, 2)
        for step in range(1, horizon + 1):
            positions += velocities
            for bound, beyond in self._walls:  # move_obstacles' reflection
                crossed = beyond(positions, bound)
                np.subtract(2 * bound, positions, out=positions, where=crossed)
                np.negative(velocities, out=velocities, where=crossed)
            agents = np.minimum(np.maximum(agents + cfg.agent_moves[:, None, :], low), high)
            dx = positions[0][None] - agents[..., 0:1]  # (A, B, N)
            dy = positions[1][None] - agents[..., 1:2]
            touching = dx * dx + dy * dy < self._contact2
            if step == 1:
                contacts = np.count_nonzero(touching, axis=-1).T  # (B, A)
            first[np.any(touching, axis=-1).T & (first > horizon)] = step
        return contacts, first

    def observe(self) -> np.ndarray:
        """Fresh observations ``(B, obs_size)`` (layout in ``CollisionConfig.observation_space``)."""
        cfg, obs = self.cfg, self._obs
        self._agent_fields[...] = self.agent
        if cfg.observation == "absolute":
            np.divide(
                self.obstacles, cfg.obstacle_obs_divisor, out=self._fields, casting="same_kind"
            )
            return obs.copy()
        k, n, batch = cfg.k_nearest, cfg.max_obstacles, obs.shape[0]
        first = cfg.agent_obs_size
        if first == 4:
            obs[:, 2] = self.agent_radius / MAX_RADIUS
            obs[:, 3] = self.obstacle_radius / MAX_RADIUS
        slots = obs[:, first:].reshape(batch, k, 5)
        slots[...] = 0.0
        shown = min(k, n)
        if shown:
            if n > k:
                nearest = np.argpartition(self.dist2, k - 1, axis=1)[:, :k]
            else:
                nearest = np.broadcast_to(np.arange(n), (batch, n))
            # NaN (empty slots of a varying scene) sorts last.
            order = np.argsort(
                np.take_along_axis(self.dist2, nearest, axis=1), axis=1, kind="stable"
            )
            nearest = np.take_along_axis(nearest, order, axis=1)
            shown_slots = slots[:, :shown]
            shown_slots[..., 0] = 1.0
            picked = np.take_along_axis(self.obstacles, nearest[None], axis=2)  # (4, B, shown)
            shown_slots[..., 1:3] = np.moveaxis(picked[:2] - self._agent_planes, 0, -1)
            shown_slots[..., 3:5] = np.moveaxis(picked[2:] / cfg.velocity_divisor, 0, -1)
            if cfg.varies:
                np.nan_to_num(shown_slots, copy=False, nan=0.0)
                shown_slots[..., 0] = np.arange(shown) < self.counts[:, None]
        return obs.copy()


def punishments(num_contacts: Any, moved: Any, cfg: CollisionConfig) -> Any:
    """Reward, on scalars or arrays alike: ``-collision_penalty`` per touching obstacle,
    ``-move_penalty`` per move; a free step gives ``0.0``, not ``-0.0`` (``0.0 - x``)."""
    return 0.0 - (cfg.collision_penalty * num_contacts + cfg.move_penalty * moved)
