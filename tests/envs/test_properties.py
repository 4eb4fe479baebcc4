"""Invariants of NegCollision for any valid configuration and action sequence (Hypothesis).

- Every reward is <= 0 and equals ``-(collision_penalty * contacts + move_penalty * moved)``,
  with the contacts counted here from the positions after the step and the documented radii,
  the agent's move and the obstacles' bounces recomputed here too; observations stay in the
  observation space.
- The batched env equals the single env scene by scene: sub-env i of
  ``gym.make_vec("NegCollision-v0", num_envs=n)`` reproduces ``gym.make`` reset with seed
  ``seed + i``, step by step, through terminations, time limits and autoresets.

Examples are derandomized (the same every run) and bounded so the module takes a few seconds.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neg_envs  # noqa: F401  (registers the ids)
from neg_envs import NegCollisionEnv, NegCollisionVectorEnv
from neg_envs.collision_core import MAX_K_NEAREST, MAX_RADIUS, MAX_SPEED, MOVES, STAY

PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

radius = st.floats(0.0, MAX_RADIUS, exclude_min=True)
#: Subnormal speeds included: the observation divides by the top speed (``1 / top`` overflowed).
speed = st.floats(0.0, MAX_SPEED)
#: CollisionConfig's documented ranges; radii up to the top so contacts happen often.
configs = st.fixed_dictionaries(
    {
        "num_obstacles": st.integers(0, 12),
        "obstacle_radius": radius,
        "agent_radius": radius,
        "agent_step": st.floats(0.0, MAX_SPEED, exclude_min=True),
        "obstacle_speed": st.one_of(speed, st.tuples(speed, speed).map(sorted).map(tuple)),
        "collision_penalty": st.one_of(st.just(0.0), st.floats(0.0, 1e6)),
        "move_penalty": st.one_of(st.just(0.0), st.floats(0.0, 1e6)),
        "terminate_on_collision": st.booleans(),
        "observation": st.sampled_from(["absolute", "nearest"]),
        "k_nearest": st.integers(1, min(16, MAX_K_NEAREST)),
        "allow_stay": st.booleans(),
    }
)
seeds = st.integers(0, 2**64)
#: Raw action draws, reduced modulo the config's number of actions.
action_draws = st.lists(st.integers(0, 4), min_size=1, max_size=30)


def expected_obstacles(positions: np.ndarray, velocities: np.ndarray, radius: float):
    """One step of straight-line motion with a reflection off each wall crossed."""
    positions, velocities = positions + velocities, velocities.copy()
    low, high = radius, 1.0 - radius
    for bound, crossed in ((low, positions < low), (high, positions > high)):
        positions[crossed] = 2 * bound - positions[crossed]
        velocities[crossed] = -velocities[crossed]
    return positions, velocities


@PROPERTY_SETTINGS
@given(config=configs, seed=seeds, draws=action_draws)
def test_rewards_are_punishments_computed_from_the_positions(config, seed, draws):
    env = NegCollisionEnv(**config)
    n_actions = env.action_space.n
    obs, _ = env.reset(seed=seed)
    assert env.observation_space.contains(obs)
    agent_radius, obstacle_radius = config["agent_radius"], config["obstacle_radius"]
    contact = agent_radius + obstacle_radius
    for draw in draws:
        action = draw % n_actions
        agent = env.agent_position
        positions, velocities = env.obstacle_positions, env.obstacle_velocities
        obs, reward, terminated, truncated, info = env.step(action)

        # The agent moves one step and stops at the walls; obstacles move and bounce.
        move = MOVES[action] * config["agent_step"]
        expected_agent = np.clip(agent + move, agent_radius, 1.0 - agent_radius)
        np.testing.assert_array_equal(env.agent_position, expected_agent)
        moved_to, bounced = expected_obstacles(positions, velocities, obstacle_radius)
        np.testing.assert_allclose(env.obstacle_positions, moved_to, rtol=0, atol=1e-15)
        np.testing.assert_array_equal(env.obstacle_velocities, bounced)

        # The punishment, from the positions after the step.
        gaps = env.obstacle_positions - env.agent_position
        contacts = int(np.count_nonzero((gaps**2).sum(axis=1) < contact**2))
        moved = action != STAY  # a move into a wall is still a move
        expected = -(config["collision_penalty"] * contacts + config["move_penalty"] * moved)
        assert reward <= 0.0
        assert reward == pytest.approx(expected, rel=1e-12, abs=0.0)
        assert info["collisions"] == info["cost"] == contacts
        assert info["moved"] == moved
        assert terminated == (config["terminate_on_collision"] and contacts > 0)
        assert not truncated
        assert env.observation_space.contains(obs)
        if terminated:
            obs, _ = env.reset()
            assert env.observation_space.contains(obs)


@PROPERTY_SETTINGS
@given(
    config=configs,
    seed=seeds,
    num_envs=st.integers(1, 4),
    horizon=st.integers(1, 30),
    steps=st.integers(1, 30),
    action_seed=st.integers(0, 2**32 - 1),
    heading=st.sampled_from([None, 0, 1, 2, 3]),
)
def test_the_batched_env_equals_the_single_env_scene_by_scene(
    config, seed, num_envs, horizon, steps, action_seed, heading
):
    vector = gym.make_vec("NegCollision-v0", num_envs=num_envs, max_episode_steps=horizon, **config)
    assert isinstance(vector, NegCollisionVectorEnv)
    singles = [
        gym.make("NegCollision-v0", max_episode_steps=horizon, **config) for _ in range(num_envs)
    ]
    batch, _ = vector.reset(seed=seed)
    assert vector.observation_space.contains(batch)
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(batch[i], env.reset(seed=seed + i)[0])
    rng = np.random.default_rng(action_seed)
    actions = rng.integers(vector.single_action_space.n, size=(steps, num_envs))
    if heading is not None:  # mostly one way, so agents reach the walls and push into them
        actions[rng.random(actions.shape) < 0.8] = heading
    for row in actions:
        batch, rewards, terminated, truncated, info = vector.step(row)
        assert vector.observation_space.contains(batch)
        for i, env in enumerate(singles):
            obs, reward, term, trunc, single_info = env.step(int(row[i]))
            assert rewards[i] == reward <= 0.0
            assert (terminated[i], truncated[i]) == (term, trunc)
            assert info["collisions"][i] == single_info["collisions"]
            assert info["cumulative_collisions"][i] == single_info["cumulative_collisions"]
            if term or trunc:
                np.testing.assert_array_equal(info["final_obs"][i], obs)
                obs, _ = env.reset()
            np.testing.assert_array_equal(batch[i], obs)
    vector.close()


@pytest.mark.parametrize("top", [5e-324, 1e-310])
def test_a_subnormal_top_speed_keeps_observations_in_their_space(top):
    env = NegCollisionEnv(num_obstacles=2, obstacle_speed=top)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs), obs
