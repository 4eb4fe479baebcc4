"""A planner that knows the collision world's exact state and dynamics: the limit agents are
measured against."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecEnvWrapper

from neg_agents.common.baselines import Predictor
from neg_agents.common.sb3_vec_env import SB3VecEnvAdapter
from neg_envs import NegativeActionWrapper
from neg_envs.collision import NegCollisionEnv
from neg_envs.collision_core import MOVES, STAY, CollisionConfig, CollisionSimulation, check_int
from neg_envs.collision_vector import NegCollisionVectorEnv

#: Steps the planner looks ahead unless told otherwise.
DEFAULT_HORIZON = 10
#: Two agent positions closer than this (in agent steps) are the same lattice point: different
#: orders of the same moves can round differently.
SAME_POSITION = 1e-6


def collision_simulations(
    env: gym.Env | gym.vector.VectorEnv | VecEnv,
) -> list[CollisionSimulation]:
    """The simulations that hold the state of ``env``'s scenes, in the order of its sub-envs:
    a ``NegCollision`` env (however wrapped), a ``NegCollisionVectorEnv``, or an in-process SB3
    ``VecEnv`` of either (``VecEnvWrapper``s such as ``VecMonitor`` included).

    :raises TypeError: for anything else (e.g. a ``SubprocVecEnv``, ``NegativeActionWrapper``).
    """
    while isinstance(env, VecEnvWrapper):
        env = env.venv
    if isinstance(env, SubprocVecEnv):
        raise TypeError(
            "the planner reads the simulation's state, which a SubprocVecEnv keeps in other "
            "processes; give it a DummyVecEnv (make_env(..., vec_env='dummy')) or the natively "
            "batched env (vec_env='native')"
        )
    if isinstance(env, DummyVecEnv):
        return [sim for sub_env in env.envs for sim in collision_simulations(sub_env)]
    if isinstance(env, SB3VecEnvAdapter):
        env = env.vector_env
    wrapper: Any = env
    while isinstance(wrapper, gym.Wrapper):
        if isinstance(wrapper, NegativeActionWrapper):
            raise TypeError(
                "the planner chooses the action to take; do not wrap its env in "
                "NegativeActionWrapper"
            )
        wrapper = wrapper.env
    unwrapped = getattr(env, "unwrapped", None)
    if isinstance(unwrapped, (NegCollisionEnv, NegCollisionVectorEnv)):
        return [unwrapped.simulation]
    raise TypeError(
        f"the planner needs NegCollision envs it can read, got {type(env).__name__}; "
        "e.g. gym.make('NegCollision-v0') or neg_agents.make_env('NegCollision-v0', ...)"
    )


def axis_lattice(
    start: float, step: float, low: float, high: float, depth: int
) -> tuple[np.ndarray, np.ndarray]:
    """The coordinates one axis of the agent can reach within ``depth`` moves from ``start``
    (clamped to ``[low, high]`` as the env does; coordinates closer than ``SAME_POSITION``
    steps merged), and where each move leads.

    :returns: ``positions`` ``(S,)`` sorted, and ``following`` ``(S, 3)``: the index of the
        position after a move by ``-step``, ``0``, ``+step``, or -1 beyond ``depth`` moves
        (only states reached late can need it, and those are never expanded).
    """
    tolerance = SAME_POSITION * step
    positions = np.array([start], dtype=np.float64)
    frontier = positions
    for _ in range(depth):
        candidates = np.unique(
            np.clip(np.concatenate([frontier - step, frontier + step]), low, high)
        )
        known = np.abs(candidates[:, None] - positions[None, :]).min(axis=1) <= tolerance
        candidates = candidates[~known]
        if candidates.size > 1:  # neighbours within tolerance: keep the first of each run
            candidates = candidates[np.concatenate([[True], np.diff(candidates) > tolerance])]
        if not candidates.size:
            break
        positions = np.concatenate([positions, candidates])
        frontier = candidates
    positions.sort()
    targets = np.clip(positions[:, None] + np.array([-step, 0.0, step]), low, high)
    index = np.clip(np.searchsorted(positions, targets), 1, len(positions) - 1)
    # The nearest of the two neighbours, if it is the same point.
    left, right = positions[index - 1], positions[index]
    nearest = np.where(np.abs(targets - left) <= np.abs(targets - right), index - 1, index)
    if len(positions) == 1:
        nearest = np.zeros_like(index)
    found = np.abs(positions[nearest] - targets) <= tolerance
    return positions, np.where(found, nearest, -1)


def plan_costs(
    agent: np.ndarray, future: np.ndarray, config: CollisionConfig, horizon: int
) -> np.ndarray:
    """Least total punishment over the next ``horizon`` steps after each first action,
    ``(num_actions,)``: dynamic programming over the product of the two axes' lattices
    (:func:`axis_lattice`), ``V_t(s) = min_a [move_cost(a) + contacts_{t+1}(s') + V_{t+1}(s')]``
    backwards from ``V_horizon = 0`` (the exact optimum when ``horizon`` covers the episode).

    :param agent: the agent's position ``(2,)``.
    :param future: the obstacles' positions after 1, ..., ``horizon`` steps, ``(horizon, 2, N)``.
    :param config: the env's parameters (radii, step, penalties, actions).
    :param horizon: steps to look ahead, >= 1.
    """
    radius = config.agent_radius
    if isinstance(radius, tuple):
        raise ValueError(f"plan_costs needs the scene's agent_radius, not the range {radius}")
    low, high = radius, 1.0 - radius
    xs, x_next = axis_lattice(agent[0], config.agent_step, low, high, horizon)
    ys, y_next = axis_lattice(agent[1], config.agent_step, low, high, horizon)
    # contacts[t, i, j]: obstacles touching an agent at (xs[i], ys[j]) after t + 1 steps, computed
    # as the env does (squared distance below the squared contact distance).
    dx2 = np.square(future[:, 0, None, :] - xs[None, :, None])
    dy2 = np.square(future[:, 1, None, :] - ys[None, :, None])
    contacts = (dx2[:, :, None, :] + dy2[:, None, :, :] < config.contact_distance**2).sum(axis=-1)
    actions = np.arange(config.num_actions)
    # Which of (-step, 0, +step) each action is along x and y.
    x_move, y_move = (MOVES[actions].astype(int) + 1).T
    move_cost = np.where(actions == STAY, 0.0, config.move_penalty)
    i0, j0 = int(np.flatnonzero(xs == agent[0])[0]), int(np.flatnonzero(ys == agent[1])[0])
    # Cost-to-go from every state, with an extra row and column of inf for "not in the lattice".
    value = np.zeros((len(xs) + 1, len(ys) + 1))
    value[-1, :] = value[:, -1] = np.inf
    for t in reversed(range(1, horizon)):
        value[:-1, :-1] += config.collision_penalty * contacts[t]
        choices = (
            move_cost[:, None, None]
            + value[x_next[:, x_move].T[:, :, None], y_next[:, y_move].T[:, None, :]]
        )
        value[:-1, :-1] = choices.min(axis=0)
    value[:-1, :-1] += config.collision_penalty * contacts[0]
    return move_cost + value[x_next[i0, x_move], y_next[j0, y_move]]


def preferred_action(costs: np.ndarray) -> int:
    """The cheapest action; on a tie, stay if it is among the cheapest, else the lowest index."""
    cheapest = np.flatnonzero(costs <= costs.min() + 1e-9)
    return STAY if STAY in cheapest else int(cheapest[0])


class CollisionPlanner(Predictor):
    """Receding-horizon planner that reads the exact state of the envs it acts in: the
    model-based limit in negdl's tables. At every step it predicts the obstacles ``horizon``
    steps ahead with the env's own physics, finds the least punishment for each first action
    (:func:`plan_costs`) and takes the cheapest (staying on ties). It follows SB3's ``predict``
    protocol; each observation must come from the envs it was built on (checked).

    :param env: the env(s) it acts in (see :func:`collision_simulations`).
    :param horizon: steps to look ahead, 1 to 500 (the episode length: the exact optimum).
        Cost grows about as horizon**3.
    """

    def __init__(
        self, env: gym.Env | gym.vector.VectorEnv | VecEnv, horizon: int = DEFAULT_HORIZON
    ) -> None:
        self.horizon = check_int("horizon", horizon, 1, 500)
        self.simulations = collision_simulations(env)
        configs = {sim.cfg for sim in self.simulations}
        if len(configs) != 1:
            raise ValueError("the planner's envs must share one CollisionConfig")
        self.config: CollisionConfig = configs.pop()
        super().__init__(self.config.observation_space(), self.config.action_space())
        self.num_scenes = sum(len(sim.agent) for sim in self.simulations)
        # Obstacles are moved with the env's own arithmetic on a scratch simulation.
        self._scratch = CollisionSimulation(self.config, self.num_scenes)
        # Farther than this an obstacle cannot touch the agent within the horizon.
        self._reach = self.config.contact_distance + self.horizon * (
            self.config.agent_step + self.config.speed_range[1]
        )

    def action_costs(self) -> np.ndarray:
        """``(B, num_actions)``: each scene's least punishment over the horizon per first action."""
        agents = np.concatenate([sim.agent for sim in self.simulations])
        obstacles = np.concatenate([sim.obstacles for sim in self.simulations], axis=1)
        scenes = [sim.scene_config(i) for sim in self.simulations for i in range(len(sim.agent))]
        scratch = self._scratch
        if self.config.varies:  # each scene's own radii bound its obstacles' reflections
            for name in ("agent_radius", "obstacle_radius"):
                getattr(scratch, name)[:] = np.concatenate(
                    [getattr(sim, name) for sim in self.simulations]
                )
            scratch.geometry_changed()
        # Obstacle positions after 1, ..., horizon steps, (horizon, 2, B, N).
        scratch.obstacles[...] = obstacles
        future = np.empty((self.horizon, *scratch.obstacles[:2].shape))
        for t in range(self.horizon):
            scratch.move_obstacles()
            future[t] = scratch.obstacles[:2]
        costs = np.empty((len(agents), self.config.num_actions))
        for b, agent in enumerate(agents):
            # Empty slots of a varying scene are NaN: never near.
            near = np.hypot(*(obstacles[:2, b] - agent[:, None])) <= self._reach + 1e-9
            costs[b] = plan_costs(agent, future[:, :, b, near], scenes[b], self.horizon)
        return costs

    def _actions(self, observations: np.ndarray, action_masks: np.ndarray | None) -> np.ndarray:
        """The planned action of every scene; the observations (``(B, obs_size)``, or the one
        scene's) only check that the planner reads the right envs, else ``ValueError``."""
        rows = observations.reshape(-1, self.config.obs_size)
        agents = np.concatenate([sim.agent for sim in self.simulations])
        if rows.shape != (self.num_scenes, self.config.obs_size) or not np.allclose(
            rows[:, :2], agents, atol=1e-5
        ):
            raise ValueError(
                f"observations of shape {observations.shape} do not match the current state of the "
                f"planner's {self.num_scenes} env(s): build the planner on the env it acts in and "
                "pass that env's latest observations"
            )
        return np.array([preferred_action(c) for c in self.action_costs()], dtype=np.int64)
