"""SB3VecEnvAdapter: the natively batched env through stable-baselines3's VecEnv interface."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import VecMonitor

from neg_agents import SB3VecEnvAdapter


def test_sb3_adapter_maps_truncation_the_sb3_way():
    vector = gym.make_vec("NegCollision-v0", num_envs=2, max_episode_steps=3)
    venv = VecMonitor(SB3VecEnvAdapter(vector))
    venv.seed(4)
    first = venv.reset()
    assert first.shape == (2, 42)
    for step in range(1, 4):
        obs, rewards, dones, infos = venv.step(np.array([0, 4]))
        assert rewards.dtype == np.float32 and (rewards <= 0).all()
        assert dones.all() == (step == 3)
        assert [info["moved"] for info in infos] == [True, False]
    for info in infos:
        assert info["TimeLimit.truncated"] is True
        assert info["terminal_observation"].shape == (42,)
        assert info["episode"]["l"] == 3
        np.testing.assert_allclose(info["episode"]["r"], info["episode_return"], rtol=1e-6)


def test_sb3_adapter_rejects_next_step_autoreset():
    with pytest.raises(ValueError, match="same-step autoreset"):
        SB3VecEnvAdapter(gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync"))
