"""Scenes that vary per episode: count and radii drawn from ranges, seeded, the same in the
single and the batched env, observed in a fixed-size space."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest

import neg_envs
from neg_envs.collision_core import MAX_RADIUS, CollisionConfig

MIX = {
    "num_obstacles": (0, 12),
    "obstacle_radius": (0.01, 0.05),
    "agent_radius": (0.01, 0.03),
    "observation": "nearest_radii",
    "k_nearest": 4,
}


def scenes(env: gym.Env, seed: int, episodes: int) -> list[tuple[int, float, float]]:
    """(count, obstacle radius, agent radius) of each episode from ``reset(seed=seed)`` on."""
    found = []
    for k in range(episodes):
        env.reset(seed=seed if k == 0 else None)
        config = env.unwrapped.scene_config
        found.append((config.num_obstacles, config.obstacle_radius, config.agent_radius))
    return found


def test_each_episode_draws_its_scene_from_the_ranges_and_the_seed_fixes_them():
    env = gym.make("NegCollision-v0", **MIX)
    first = scenes(env, seed=7, episodes=30)
    assert scenes(env, seed=7, episodes=30) == first
    assert scenes(env, seed=8, episodes=30) != first
    counts = {count for count, _, _ in first}
    assert len(counts) > 5 and min(counts) >= 0 and max(counts) <= 12
    assert all(0.01 <= r <= 0.05 and 0.01 <= a <= 0.03 for _, r, a in first)
    # The env shows exactly the scene's obstacles, and the radii it drew.
    obs, _ = env.reset(seed=3)
    config = env.unwrapped.scene_config
    assert env.unwrapped.obstacle_positions.shape == (config.num_obstacles, 2)
    assert obs[2] == pytest.approx(config.agent_radius / MAX_RADIUS)
    assert obs[3] == pytest.approx(config.obstacle_radius / MAX_RADIUS)
    present = obs[4:].reshape(4, 5)[:, 0]
    assert present.tolist() == [1.0] * min(4, config.num_obstacles) + [0.0] * max(
        0, 4 - config.num_obstacles
    )


def test_the_batched_env_draws_and_steps_the_same_scenes_as_single_envs():
    vector = gym.make_vec(
        "NegCollision-v0", num_envs=3, vectorization_mode="vector_entry_point", **MIX
    )
    singles = [gym.make("NegCollision-v0", max_episode_steps=500, **MIX) for _ in range(3)]
    obs, _ = vector.reset(seed=11)
    for i, env in enumerate(singles):
        assert np.array_equal(env.reset(seed=11 + i)[0], obs[i])
    rng = np.random.default_rng(0)
    for step in range(1100):  # two episode ends: new scenes drawn on both sides
        actions = rng.integers(0, 5, size=3)
        obs, rewards, _, truncated, _ = vector.step(actions)
        for i, env in enumerate(singles):
            single_obs, reward, _, done, _ = env.step(int(actions[i]))
            if done:
                single_obs, _ = env.reset()
            assert np.array_equal(single_obs, obs[i]) and reward == rewards[i], (step, i)
            assert vector.observation_space.contains(obs)


def test_contacts_follow_each_scenes_own_radii():
    env = gym.make("NegCollision-v0", **MIX)
    env.reset(seed=0)
    config = env.unwrapped.scene_config
    reach = config.agent_radius + config.obstacle_radius
    # One obstacle just inside and one just outside this scene's contact distance.
    env.unwrapped.set_state(
        np.array([0.5, 0.5]),
        np.array([[0.5 + 0.99 * reach, 0.5], [0.5, 0.5 - 1.01 * reach]]),
        np.zeros((2, 2)),
    )
    _, reward, _, _, info = env.step(4)
    assert info["collisions"] == 1 and reward == -1.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_obstacles": (5, 10)}, "use observation='nearest' or 'nearest_radii'"),
        (
            {"obstacle_radius": (0.01, 0.02), "observation": "nearest"},
            "use observation='nearest_radii'",
        ),
        ({"num_obstacles": (10, 5), "observation": "nearest"}, "low <= high"),
        (
            {"agent_radius": (0.01, 0.5), "observation": "nearest_radii"},
            "agent_radius[1] must be a finite number in",
        ),
        ({"num_obstacles": (1, 2, 3), "observation": "nearest"}, "must be (low, high)"),
    ],
)
def test_bad_ranges_are_refused_with_the_fix(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        CollisionConfig(**options)


def test_an_equal_range_is_a_fixed_scene():
    config = CollisionConfig(num_obstacles=(7, 7), obstacle_radius=(0.02, 0.02))
    assert config.num_obstacles == 7 and config.obstacle_radius == 0.02 and not config.varies


def test_the_mix_is_registered_and_spans_the_named_scenes():
    config = gym.make("NegCollisionMix-v0").unwrapped.config
    assert config.varies and config.observation == "nearest_radii"
    crowd = gym.make("NegCollisionCrowd-v0").unwrapped.config
    assert config.k_nearest == crowd.k_nearest
    assert config.obstacle_radius_range[0] <= crowd.obstacle_radius <= 0.03
    assert "NegCollisionMix-v0" in neg_envs.ENV_IDS


def test_max_density_caps_the_count_to_what_the_radii_leave_room_for():
    kwargs = {**MIX, "num_obstacles": (0, 400), "max_density": 0.2}
    env = gym.make("NegCollision-v0", **kwargs)
    drawn = scenes(env, seed=5, episodes=200)
    densities = [n * np.pi * (r + a) ** 2 for n, r, a in drawn]
    assert max(densities) <= 0.2
    # The cap binds (without it counts up to 400 would be drawn) but still lets dense scenes in.
    assert max(densities) > 0.15 and max(n for n, _, _ in drawn) < 400
    assert scenes(gym.make("NegCollision-v0", **kwargs), seed=5, episodes=200) == drawn


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_density": 0.3}, "vary per episode"),
        ({**MIX, "max_density": 0.0}, "max_density"),
        ({**MIX, "max_density": 1.5}, "max_density"),
    ],
)
def test_max_density_is_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make("NegCollision-v0", **kwargs)


def test_fixing_the_mix_scene_says_max_density_comes_with_it():
    # The mix registers max_density=0.4; fixing its count and radii raised "... or leave it
    # None" about a parameter the user never gave.
    fixed = {"num_obstacles": 10, "obstacle_radius": 0.03, "agent_radius": 0.02}
    with pytest.raises(ValueError, match=r"max_density=0\.4 .*pass max_density=None"):
        gym.make("NegCollisionMix-v0", **fixed)
    env = gym.make("NegCollisionMix-v0", max_density=None, **fixed)
    assert env.reset(seed=0)[0].shape == env.observation_space.shape
