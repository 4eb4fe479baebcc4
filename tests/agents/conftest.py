import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env

import neg_envs  # noqa: F401

# Small MLPs on a shared CPU: one thread is fastest and keeps results reproducible.
torch.set_num_threads(1)

#: Hyperparameters that make a few hundred steps exercise replay, training and target updates.
TINY = {
    "learning_starts": 64,
    "batch_size": 16,
    "buffer_size": 1_000,
    "train_freq": 1,
    "gradient_steps": 1,
    "target_update_interval": 100,
    "policy_kwargs": {"net_arch": [16]},
}


@pytest.fixture
def small_env_kwargs() -> dict:
    return {"num_obstacles": 3}


@pytest.fixture
def vec_env(small_env_kwargs):
    env = make_vec_env("NegCollision-v0", n_envs=2, seed=0, env_kwargs=small_env_kwargs)
    yield env
    env.close()


@pytest.fixture
def single_env(small_env_kwargs):
    env = gym.make("NegCollision-v0", **small_env_kwargs)
    yield env
    env.close()


def round_trip(algo, env, tmp_path, learn: int = 0, n_obs: int = 64, **hyperparams):
    """Build agent ``algo`` on ``env`` as training does (``TINY`` and ``hyperparams``), train it
    ``learn`` steps, save the run and load it back; check what every agent must keep: the
    n-step replay settings and its greedy actions. Returns the model, the loaded model and the
    observations used."""
    from dataclasses import asdict

    from neg_agents.model_io import load_agent, save_run
    from neg_agents.training import TrainConfig, build_model

    config = TrainConfig(algo, env_kwargs={"num_obstacles": 3}, hyperparams={**TINY, **hyperparams})
    model = build_model(config, env)
    if learn:
        model.learn(learn)
    loaded = load_agent(save_run(model, asdict(config), tmp_path))
    assert loaded.replay_buffer_class is model.replay_buffer_class
    assert (
        loaded.replay_buffer_kwargs
        == model.replay_buffer_kwargs
        == {"n_steps": 3, "gamma": model.gamma}
    )
    space = model.observation_space
    obs = np.stack([space.sample() for _ in range(n_obs)])
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )
    return model, loaded, obs
