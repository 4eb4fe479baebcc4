import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.torch_layers import FlattenExtractor

from neg_agents import NegActionDQN, NegRewardDQN, evaluate_agent, make_env
from neg_agents.common.env_util import collision_config
from neg_agents.common.extractors import (
    ObstacleSetExtractor,
    collision_extractor_kwargs,
    collision_policy_kwargs,
)
from neg_agents.model_io import transfer_model

from .conftest import TINY


def extractor_for(env: gym.Env, **overrides) -> ObstacleSetExtractor:
    torch.manual_seed(0)
    kwargs = collision_extractor_kwargs(env.unwrapped.config, hidden=16, **overrides)
    return ObstacleSetExtractor(env.observation_space, **kwargs)


def observations(env: gym.Env, seed: int) -> np.ndarray:
    obs, _ = env.reset(seed=seed)
    return np.stack([obs, *(env.step(action)[0] for action in (0, 3, 3, 1))])


@pytest.mark.parametrize("pooling", ["sum", "max", "sum+max"])
def test_output_does_not_change_when_obstacles_are_permuted(pooling):
    env = gym.make("NegCollision-v0", num_obstacles=6)
    extractor = extractor_for(env, pooling=pooling)
    obs = torch.as_tensor(observations(env, seed=0))
    slots = obs[:, 2:].reshape(len(obs), 6, 4)
    permuted = torch.cat([obs[:, :2], slots[:, torch.randperm(6)].reshape(len(obs), -1)], dim=1)
    assert not torch.equal(permuted, obs)
    torch.testing.assert_close(extractor(permuted), extractor(obs))


def test_both_layouts_of_the_same_scene_give_the_same_features():
    absolute = gym.make("NegCollision-v0", num_obstacles=5)
    nearest = gym.make("NegCollision-v0", num_obstacles=5, observation="nearest", k_nearest=8)
    a = extractor_for(absolute)
    b = extractor_for(nearest)
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(
        a(torch.as_tensor(observations(absolute, seed=3))),
        b(torch.as_tensor(observations(nearest, seed=3))),
        atol=1e-4,
        rtol=1e-4,
    )


def test_far_obstacles_add_nothing_so_the_count_can_change():
    env = gym.make("NegCollision-v0", num_obstacles=3)
    extractor = extractor_for(env)
    obs = torch.as_tensor(observations(env, seed=1))
    # Put the agent in a corner and one obstacle in the opposite corner, out of reach.
    obs[:, :2] = 0.05
    far = torch.tensor([0.95, 0.95, 0.0, 0.0]).repeat(len(obs), 1)
    more = torch.cat([obs, far], dim=1)
    bigger = ObstacleSetExtractor(
        gym.spaces.Box(-1, 1, (more.shape[1],)),
        **collision_extractor_kwargs(env.unwrapped.config, hidden=16),
    )
    bigger.load_state_dict(extractor.state_dict())
    torch.testing.assert_close(bigger(more), extractor(obs))


def test_layout_must_match_the_observation_size():
    env = gym.make("NegCollision-v0", num_obstacles=3)  # 2 + 4 * 3 = 14, not 2 + 5k
    with pytest.raises(ValueError, match="2 \\+ 5 \\* count"):
        ObstacleSetExtractor(env.observation_space, observation="nearest")
    with pytest.raises(ValueError, match="pooling"):
        ObstacleSetExtractor(env.observation_space, pooling="mean")


@pytest.mark.parametrize("observation", ["absolute", "nearest"])
def test_agents_default_to_the_extractor_with_the_env_layout(observation):
    env = gym.make("NegCollision-v0", num_obstacles=3, observation=observation, k_nearest=4)
    model = NegRewardDQN("MlpPolicy", env, **{**TINY, "policy_kwargs": None})
    extractor = model.q_net.features_extractor
    assert isinstance(extractor, ObstacleSetExtractor) and extractor.observation == observation
    assert model.policy_kwargs["features_extractor_kwargs"]["observation"] == observation


def test_other_envs_keep_a_flat_mlp_and_explicit_choices_are_kept():
    model = NegRewardDQN("MlpPolicy", "CartPole-v1", **{**TINY, "policy_kwargs": None})
    assert isinstance(model.q_net.features_extractor, FlattenExtractor)
    flat = {"features_extractor_class": FlattenExtractor, "net_arch": [8]}
    assert collision_policy_kwargs(flat, gym.make("NegCollision-v0")) == flat
    given = {"features_extractor_kwargs": {"hidden": 8}}
    kwargs = collision_policy_kwargs(given, gym.make("NegCollision-v0"), hidden=64)
    assert kwargs["features_extractor_kwargs"]["hidden"] == 8


@pytest.mark.parametrize("algo_class", [NegRewardDQN, NegActionDQN, DQN])
def test_a_policy_trained_at_one_count_runs_at_another_and_in_the_crowd(algo_class):
    train_env = make_env("NegCollision-v0", 2, seed=0, env_kwargs={"num_obstacles": 3})
    kwargs = collision_policy_kwargs(
        {"net_arch": [16]}, train_env, hidden=8
    )  # DQN gets what train_agent gives it
    model = algo_class("MlpPolicy", train_env, seed=0, **{**TINY, "policy_kwargs": kwargs})
    model.learn(100)
    for env_id, env_kwargs in (
        ("NegCollision-v0", {"num_obstacles": 7}),
        ("NegCollisionCrowd-v0", {"num_obstacles": 40}),
    ):
        env = make_env(env_id, 2, seed=1, env_kwargs=env_kwargs)
        moved = transfer_model(model, env)
        extractor = moved.q_net.features_extractor
        assert extractor.observation == env.get_attr("config")[0].observation
        for name, value in model.policy.state_dict().items():
            torch.testing.assert_close(moved.policy.state_dict()[name], value)
        assert evaluate_agent(moved.policy, env, 2).summary()["episode_length"] == 500
        env.close()


def test_transfer_needs_the_set_extractor():
    env = make_env("NegCollision-v0", 1, env_kwargs={"num_obstacles": 3})
    flat = NegRewardDQN(
        "MlpPolicy",
        env,
        **{**TINY, "policy_kwargs": {"features_extractor_class": FlattenExtractor}},
    )
    with pytest.raises(ValueError, match="ObstacleSetExtractor"):
        transfer_model(flat, make_env("NegCollision-v0", 1))


def test_collision_config_is_found_through_ids_wrappers_and_vec_envs():
    expected = gym.make("NegCollision-v0", num_obstacles=4).unwrapped.config
    for env in (
        gym.make("NegCollision-v0", num_obstacles=4),
        make_env("NegCollision-v0", 2, env_kwargs={"num_obstacles": 4}),
        make_env("NegCollision-v0", 2, env_kwargs={"num_obstacles": 4}, vec_env="native"),
    ):
        assert collision_config(env) == expected
    assert collision_config("NegCollisionCrowd-v0").num_obstacles == 300
    assert collision_config("CartPole-v1") is None and collision_config(None) is None


def test_collision_config_of_other_envs_in_worker_processes_is_none_and_keeps_them_alive():
    """get_attr of an attribute a SubprocVecEnv's env lacks ends its worker: negdl-train --algo
    dqn --env-id CartPole-v1 --vec-env subproc died there (exit 141, a worker's traceback)."""
    env = make_env("CartPole-v1", 1, seed=0, vec_env="subproc")
    try:
        assert collision_config(env) is None
        env.reset()
        env.step(np.zeros(1, dtype=int))  # the worker still answers
    finally:
        env.close()
