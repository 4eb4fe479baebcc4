"""NegCollision-v0: API conformance, punishment-only rewards, physics, seeding, validation."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import neg_envs
from neg_envs import NegCollisionEnv
from neg_envs import collision_core as core

OPTION_COMBINATIONS = [
    {},
    {"observation": "nearest", "k_nearest": 4},
    {"observation": "nearest", "k_nearest": 16, "num_obstacles": 3},  # padding
    {"num_obstacles": 0},
    {"num_obstacles": 0, "observation": "nearest"},
    {"allow_stay": False},
    {"terminate_on_collision": True, "num_obstacles": 40},
    {"obstacle_speed": (0.0, 0.05), "num_obstacles": 25},
    {"collision_penalty": 0.0, "move_penalty": 0.0},
]


@pytest.mark.parametrize("env_id", list(neg_envs.ENV_IDS))
def test_registered_ids_pass_check_env(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    check_env(env.unwrapped)
    assert env.spec.max_episode_steps == 500


@pytest.mark.parametrize("kwargs", OPTION_COMBINATIONS)
def test_option_combinations_pass_check_env(kwargs):
    check_env(NegCollisionEnv(**kwargs), skip_render_check=True)


def test_module_prefixed_id_works():
    env = gym.make("neg_envs:NegCollision-v0")
    assert isinstance(env.unwrapped, NegCollisionEnv)


def test_reward_formula_and_truncation():
    env = gym.make("NegCollision-v0", num_obstacles=30, collision_penalty=2.0, move_penalty=0.5)
    env.reset(seed=3)
    total_collisions = 0
    for step in range(1, 501):
        action = step % 5
        _, reward, terminated, truncated, info = env.step(action)
        moved = action != core.STAY
        assert info["moved"] == moved
        assert reward == -(2.0 * info["collisions"] + 0.5 * moved)
        total_collisions += info["collisions"]
        assert info["cumulative_collisions"] == total_collisions
        assert not terminated
        assert truncated == (step == 500)
    assert total_collisions > 0  # 30 obstacles over 500 steps: the scene does get crowded


def test_collisions_counted_on_hand_placed_scene():
    env = NegCollisionEnv(
        num_obstacles=4, agent_radius=0.05, obstacle_radius=0.05, obstacle_speed=0.0
    )
    env.reset(seed=0)
    # contact distance 0.1: touching (0.09), touching (0.094), 0.11 away, far
    positions = [[0.5, 0.59], [0.42, 0.45], [0.5, 0.39], [0.8, 0.8]]
    env.set_state([0.5, 0.5], positions, np.zeros((4, 2)))
    _, reward, _, _, info = env.step(core.STAY)
    assert info["collisions"] == 2
    assert reward == -2.0
    _, _, _, _, info = env.step(core.UP)  # to (0.5, 0.52): above 0.07 away, left now 0.106
    assert info["collisions"] == 1 and type(info["collisions"]) is int
    assert info["cumulative_collisions"] == 3


def test_terminate_on_collision():
    env = NegCollisionEnv(num_obstacles=1, obstacle_speed=0.0, terminate_on_collision=True)
    env.reset(seed=0)
    env.set_state([0.5, 0.5], [[0.5, 0.53]], [[0.0, 0.0]])
    _, _, terminated, _, _ = env.step(core.STAY)
    assert terminated


def test_agent_stops_at_walls():
    env = NegCollisionEnv(num_obstacles=0, agent_radius=0.05, agent_step=0.1)
    env.reset(seed=0)
    for _ in range(10):
        env.step(core.RIGHT)
        env.step(core.DOWN)
    np.testing.assert_allclose(env.agent_position, [0.95, 0.05])
    for _ in range(10):
        env.step(core.LEFT)
        env.step(core.UP)
    np.testing.assert_allclose(env.agent_position, [0.05, 0.95])


def test_agent_moves_exactly_agent_step():
    env = NegCollisionEnv(num_obstacles=0, agent_step=0.02)
    env.reset(seed=0)
    env.step(core.RIGHT)
    env.step(core.UP)
    assert env.agent_position.tolist() == [0.5 + 0.02, 0.5 + 0.02]  # float64, no float32 rounding
    vector = gym.make_vec("NegCollision-v0", num_envs=2, num_obstacles=0)
    obs, _ = vector.reset(seed=0)
    obs, *_ = vector.step(np.array([core.RIGHT, core.DOWN]))
    np.testing.assert_array_equal(obs[:, :2], np.float32([[0.52, 0.5], [0.5, 0.48]]))


def test_obstacles_reflect_off_walls_and_stay_inside():
    env = NegCollisionEnv(num_obstacles=2, obstacle_radius=0.05, obstacle_speed=0.1)
    env.reset(seed=0)
    env.set_state([0.5, 0.5], [[0.9, 0.5], [0.5, 0.12]], [[0.1, 0.0], [0.0, -0.1]])
    env.step(core.STAY)
    # 0.9 + 0.1 = 1.0 passes the bound 0.95 by 0.05 and comes back to 0.90; likewise 0.02 -> 0.08.
    np.testing.assert_allclose(env.obstacle_positions, [[0.9, 0.5], [0.5, 0.08]], atol=1e-12)
    np.testing.assert_allclose(env.obstacle_velocities, [[-0.1, 0.0], [0.0, 0.1]])
    env = NegCollisionEnv(num_obstacles=300, obstacle_radius=0.02, obstacle_speed=(0.0, 0.1))
    env.reset(seed=1)
    for _ in range(300):
        env.step(core.STAY)
        positions = env.obstacle_positions
        assert positions.min() >= 0.02 and positions.max() <= 0.98


def test_obstacles_start_clear_of_agent():
    env = NegCollisionEnv(num_obstacles=2000, obstacle_radius=0.01)
    for seed in range(5):
        env.reset(seed=seed)
        distance = np.linalg.norm(env.obstacle_positions - env.agent_position, axis=1)
        assert distance.min() >= core.SPAWN_CLEARANCE * env.config.contact_distance


def test_same_seed_same_episode_and_fresh_arrays():
    def rollout(seed):
        env = gym.make("NegCollision-v0", num_obstacles=20)
        obs, _ = env.reset(seed=seed)
        observations, rewards = [obs], []
        for step in range(200):
            obs, reward, *_ = env.step(step % 5)
            observations.append(obs)
            rewards.append(reward)
        return np.array(observations), rewards, observations

    a, rewards_a, raw = rollout(5)
    b, rewards_b, _ = rollout(5)
    c, _, _ = rollout(6)
    np.testing.assert_array_equal(a, b)
    assert rewards_a == rewards_b
    assert not np.array_equal(a, c)
    assert not any(np.shares_memory(raw[i], raw[i + 1]) for i in range(len(raw) - 1))


def test_absolute_observation_layout():
    env = NegCollisionEnv(num_obstacles=2, obstacle_speed=0.02)
    env.reset(seed=0)
    env.set_state([0.3, 0.4], [[0.1, 0.2], [0.7, 0.8]], [[0.02, 0.0], [0.0, -0.01]])
    obs, *_ = env.step(core.STAY)
    expected = [0.3, 0.4, 0.12, 0.2, 1.0, 0.0, 0.7, 0.79, 0.0, -0.5]
    np.testing.assert_allclose(obs, expected, atol=1e-6)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)


def test_nearest_observation_sorted_egocentric_and_padded():
    env = NegCollisionEnv(num_obstacles=3, observation="nearest", k_nearest=4, obstacle_speed=0.01)
    env.reset(seed=0)
    env.set_state([0.5, 0.5], [[0.9, 0.5], [0.5, 0.6], [0.2, 0.5]], np.zeros((3, 2)))
    obs, *_ = env.step(core.STAY)
    slots = obs[2:].reshape(4, 5)
    np.testing.assert_allclose(obs[:2], [0.5, 0.5])
    np.testing.assert_allclose(slots[:, 0], [1, 1, 1, 0])  # present flags, padding last
    np.testing.assert_allclose(slots[:3, 1:3], [[0.0, 0.1], [-0.3, 0.0], [0.4, 0.0]], atol=1e-6)
    np.testing.assert_array_equal(slots[3], 0.0)
    assert env.observation_space.shape == (2 + 5 * 4,)


def test_nearest_observation_size_independent_of_obstacle_count():
    shapes = {
        NegCollisionEnv(num_obstacles=n, observation="nearest").observation_space.shape
        for n in (0, 5, 500)
    }
    assert shapes == {(2 + 5 * 8,)}


def test_four_action_variant():
    env = gym.make("NegCollision-v0", allow_stay=False)
    assert env.action_space == gym.spaces.Discrete(4)
    env.reset(seed=0)
    _, _, _, _, info = env.step(3)
    assert info["moved"]
    with pytest.raises(ValueError, match=r"action must be an integer in \[0, 3\]"):
        env.step(4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_obstacles": -1}, r"num_obstacles must be an? (integer|finite number) in"),
        ({"num_obstacles": 100_001}, r"num_obstacles must be an? (integer|finite number) in"),
        ({"num_obstacles": 2.5}, "num_obstacles must be an integer"),
        ({"obstacle_radius": 0.0}, r"obstacle_radius must be an? (integer|finite number) in"),
        ({"agent_radius": 0.5}, r"agent_radius must be an? (integer|finite number) in"),
        ({"agent_step": float("nan")}, r"agent_step must be an? (integer|finite number) in"),
        ({"obstacle_speed": -0.01}, r"obstacle_speed must be an? (integer|finite number) in"),
        ({"obstacle_speed": 0.2}, r"obstacle_speed must be an? (integer|finite number) in"),
        ({"obstacle_speed": (0.05, 0.01)}, "low <= high"),
        ({"obstacle_speed": (0.01,)}, "obstacle_speed as a range"),
        ({"collision_penalty": -1.0}, r"collision_penalty must be an? (integer|finite number) in"),
        ({"move_penalty": float("inf")}, r"move_penalty must be an? (integer|finite number) in"),
        ({"observation": "pixels"}, "observation must be one of"),
        ({"k_nearest": 0}, r"k_nearest must be an? (integer|finite number) in"),
        ({"allow_stay": "yes"}, "allow_stay must be True or False"),
        ({"terminate_on_collision": 1}, "terminate_on_collision must be True or False"),
        ({"render_mode": "ascii"}, "render_mode must be one of None, 'human'"),
        ({"window_size": 10}, r"window_size must be an? (integer|finite number) in"),
    ],
)
def test_invalid_parameters_name_the_parameter(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        NegCollisionEnv(**kwargs)


@pytest.mark.parametrize(
    "action, error, message",
    [
        (5, ValueError, r"action must be an integer in \[0, 4\]"),
        (-1, ValueError, r"action must be an integer in \[0, 4\]"),
        (1.0, TypeError, "action must be an integer"),
        (float("nan"), TypeError, "action must be an integer"),
        (True, TypeError, "action must be an integer"),
        ("up", TypeError, "action must be an integer"),
        (np.array([1, 2]), ValueError, "single integer, got an array of shape"),
        (np.array([0.5]), TypeError, "action must be an integer in .*, got float 0.5"),
    ],
)
def test_invalid_actions_raise(action, error, message):
    env = gym.make("NegCollision-v0")
    env.reset(seed=0)
    with pytest.raises(error, match=message):
        env.unwrapped.step(action)


def test_numpy_integer_actions_accepted():
    env = NegCollisionEnv()
    env.reset(seed=0)
    for action in (np.int64(1), np.array(2), np.array([3])):
        env.step(action)
    assert env.steps == 3


def test_step_before_reset_raises():
    with pytest.raises(RuntimeError, match="reset"):
        NegCollisionEnv().step(0)


def test_a_free_step_rewards_plus_zero():
    env = NegCollisionEnv(num_obstacles=0)
    env.reset(seed=0)
    _, reward, _, _, _ = env.step(core.STAY)
    assert reward == 0.0 and np.copysign(1.0, reward) == 1.0  # 0.0, never -0.0
    assert np.copysign(1.0, env.episode_return) == 1.0
    rewards = core.punishments(np.zeros(3, dtype=np.int64), np.zeros(3, dtype=bool), env.config)
    assert (np.copysign(1.0, rewards) == 1.0).all()


def test_unknown_reset_options_are_rejected():
    env = NegCollisionEnv()
    env.reset(seed=0, options={})  # empty options (what SB3 passes) are fine
    with pytest.raises(
        ValueError, match=r"unknown reset option\(s\) \['sed'\].*accepted options: none"
    ):
        env.reset(options={"sed": 1})
    with pytest.raises(TypeError, match="must be a dict"):
        env.reset(options=["reset_mask"])
    with pytest.raises(ValueError, match="unknown reset option"):
        gym.make("NegCollision-v0").reset(options={"difficulty": 2})  # through the wrappers too


@pytest.mark.parametrize("kwargs", [{}, dict(neg_envs.MIX_KWARGS)])
def test_copied_and_pickled_envs_continue_the_same_trajectory_on_their_own(kwargs):
    # copy.deepcopy(env) and pickle (AsyncVectorEnv.get_attr("simulation") too) raised "cannot
    # pickle memoryview objects"; and a copied view would not share its base's memory.
    import copy
    import pickle

    env = gym.make("NegCollision-v0", render_mode="rgb_array", window_size=64, **kwargs)
    env.reset(seed=3)
    env.render()
    for action in range(5):
        env.step(action)
    copies = [copy.deepcopy(env), pickle.loads(pickle.dumps(env))]
    for t in range(20):
        obs, reward, *_ = env.step(t % 5)
        for other in copies:
            other_obs, other_reward, *_ = other.step(t % 5)
            np.testing.assert_array_equal(other_obs, obs)
            assert other_reward == reward
            np.testing.assert_array_equal(
                other.unwrapped.action_masks(), env.unwrapped.action_masks()
            )
    for other in copies:
        np.testing.assert_array_equal(other.render(), env.render())
        other.close()
    vector = gym.make_vec("NegCollision-v0", num_envs=2, max_episode_steps=4, **kwargs)
    vector.reset(seed=0)
    vector_copy = copy.deepcopy(vector)
    for t in range(10):
        actions = np.array([t % 5, 4])
        np.testing.assert_array_equal(vector_copy.step(actions)[0], vector.step(actions)[0])
