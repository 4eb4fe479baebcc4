"""NegCollisionVectorEnv: exact equivalence with the single env, autoreset, subprocess ids."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import SubprocVecEnv

import neg_envs  # noqa: F401  (registers the ids)
from neg_envs import NegCollisionVectorEnv


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"observation": "nearest", "k_nearest": 5, "num_obstacles": 30},
        {"terminate_on_collision": True, "num_obstacles": 40},
        {"obstacle_speed": (0.0, 0.08), "num_obstacles": 15, "allow_stay": False},
    ],
)
def test_each_sub_env_reproduces_the_single_env(kwargs):
    num_envs, horizon = 4, 60
    vector = gym.make_vec("NegCollision-v0", num_envs=num_envs, max_episode_steps=horizon, **kwargs)
    assert isinstance(vector, NegCollisionVectorEnv)
    singles = [
        gym.make("NegCollision-v0", max_episode_steps=horizon, **kwargs) for _ in range(num_envs)
    ]
    vector_obs, _ = vector.reset(seed=11)
    for i, env in enumerate(singles):
        obs, _ = env.reset(seed=11 + i)
        np.testing.assert_array_equal(obs, vector_obs[i])
    rng = np.random.default_rng(0)
    episodes_ended = 0
    for _ in range(3 * horizon):
        actions = rng.integers(vector.single_action_space.n, size=num_envs)
        vector_obs, rewards, terminated, truncated, info = vector.step(actions)
        for i, env in enumerate(singles):
            obs, reward, term, trunc, single_info = env.step(int(actions[i]))
            assert reward == rewards[i]
            assert (term, trunc) == (terminated[i], truncated[i])
            assert single_info["collisions"] == info["collisions"][i]
            assert single_info["cumulative_collisions"] == info["cumulative_collisions"][i]
            if term or trunc:
                episodes_ended += 1
                np.testing.assert_array_equal(obs, info["final_obs"][i])
                assert info["_final_obs"][i]
                assert info["final_info"]["episode_return"][i] == pytest.approx(
                    env.unwrapped.episode_return
                )
                obs, _ = env.reset()
            np.testing.assert_array_equal(obs, vector_obs[i])
    assert episodes_ended >= num_envs * 2


def test_truncation_and_same_step_autoreset():
    vector = NegCollisionVectorEnv(num_envs=3, max_episode_steps=5)
    vector.reset(seed=0)
    for step in range(1, 11):
        obs, _, terminated, truncated, info = vector.step(np.full(3, 4))
        assert not terminated.any()
        assert truncated.all() == (step % 5 == 0)
        if step % 5 == 0:
            np.testing.assert_array_equal(obs[:, :2], 0.5)  # new episode: agent back at the centre
            assert info["_final_obs"].all()


def test_reset_seeds_and_mask():
    vector = NegCollisionVectorEnv(num_envs=3)
    a, _ = vector.reset(seed=[1, 2, 3])
    b, _ = vector.reset(seed=1)
    np.testing.assert_array_equal(a, b)
    vector.step(np.zeros(3, dtype=np.int64))
    moved, _ = vector.reset(options={"reset_mask": np.array([False, True, False])})
    assert moved[1, 1] == 0.5 and moved[0, 1] > 0.5


@pytest.mark.parametrize(
    "actions, error, message",
    [
        (np.zeros(4, dtype=np.int64), ValueError, r"shape \(3,\)"),
        (np.array([0, 1, 5]), ValueError, r"must be in \[0, 5\)"),
        (np.array([0, -1, 2]), ValueError, r"must be in \[0, 5\)"),
        (np.array([0.0, 1.0, 2.0]), TypeError, "must be integers"),
    ],
)
def test_invalid_vector_actions(actions, error, message):
    vector = NegCollisionVectorEnv(num_envs=3)
    vector.reset(seed=0)
    with pytest.raises(error, match=message):
        vector.step(actions)


def test_invalid_vector_configuration():
    with pytest.raises(ValueError, match=r"num_envs must be an? (integer|finite number) in"):
        NegCollisionVectorEnv(num_envs=0)
    with pytest.raises(
        ValueError, match=r"max_episode_steps must be an? (integer|finite number) in"
    ):
        NegCollisionVectorEnv(num_envs=2, max_episode_steps=0)
    with pytest.raises(ValueError, match=r"num_obstacles must be an? (integer|finite number) in"):
        gym.make_vec("NegCollision-v0", num_envs=2, num_obstacles=-3)
    with pytest.raises(ValueError, match="does not render"):
        NegCollisionVectorEnv(num_envs=2, render_mode="rgb_array")
    with pytest.raises(ValueError, match="does not render"):
        NegCollisionVectorEnv(num_envs=2, window_size=256)
    with pytest.raises(
        TypeError,
        match=r"unknown NegCollision parameter\(s\) \['speed'\]; accepted: .*obstacle_speed",
    ):
        gym.make_vec("NegCollision-v0", num_envs=2, speed=0.1)


@pytest.mark.parametrize("env_id", ["NegCollision-v0", "neg_envs:NegCollision-v0"])
def test_ids_resolve_in_subprocess_workers(env_id):
    venv = make_vec_env(env_id, n_envs=2, seed=0, vec_env_cls=SubprocVecEnv)
    try:
        venv.reset()
        _, rewards, _, _ = venv.step(np.array([0, 1]))
        assert (rewards <= 0).all()
    finally:
        venv.close()


def test_unknown_reset_options_are_rejected():
    vector = NegCollisionVectorEnv(num_envs=2)
    with pytest.raises(
        ValueError,
        match=r"unknown reset option\(s\) \['resetmask'\].*accepted options: 'reset_mask'",
    ):
        vector.reset(seed=0, options={"resetmask": np.array([True, False])})
    vector.reset(seed=0, options={"reset_mask": np.array([True, True])})


def test_info_flags_only_the_sub_envs_it_describes():
    # final_info flagged ("_collisions" ...) every sub-env, not only those whose episode ended,
    # and a masked reset's info flagged sub-envs it did not reset (their counts shown as 0);
    # SyncVectorEnv flags only the sub-envs each entry is about.
    vector = NegCollisionVectorEnv(num_envs=3, max_episode_steps=2, num_obstacles=2)
    _, info = vector.reset(seed=0)
    assert info["_collisions"].all()
    vector.step(np.zeros(3, dtype=np.int64))
    _, info = vector.reset(options={"reset_mask": np.array([False, True, False])})
    for key in ("collisions", "cumulative_collisions", "moved", "cost"):
        np.testing.assert_array_equal(info[f"_{key}"], [False, True, False])
    _, _, _, truncated, info = vector.step(np.zeros(3, dtype=np.int64))
    np.testing.assert_array_equal(truncated, [True, False, True])
    assert info["_collisions"].all()  # this step's info: every sub-env stepped
    final = info["final_info"]
    for key in ("collisions", "cumulative_collisions", "moved", "cost", "episode_return"):
        np.testing.assert_array_equal(final[f"_{key}"], [True, False, True])
