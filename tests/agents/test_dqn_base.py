# ruff: noqa: NPY002  (SB3 draws its minibatches and exploration from numpy's legacy global generator)
"""NegDQNBase's own training step, replay sampling and acting path against stable-baselines3's.

NegDQNBase.train replaces SB3's DQN.train with a leaner loop; these tests hold it to SB3's update
exactly: the same parameters after several steps from the same start and the same minibatches,
for SB3's DQN semantics (greedy bootstrap), NegRewardDQN (clamp head) and NegActionDQN (its own
bootstrap value, through the hook SB3's train is run with here).
"""

import copy

import numpy as np
import pytest
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.dqn.policies import QNetwork

from neg_agents import make_env
from neg_agents.common.dqn_base import NegDQNBase
from neg_agents.common.replay import fast_path_applies, sample_replay
from neg_agents.neg_action_dqn import NegActionDQN
from neg_agents.neg_reward_dqn import NegRewardDQN

from .conftest import TINY

AGENTS = (NegDQNBase, NegRewardDQN, NegActionDQN)


def parameters(model) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in model.policy.parameters()])


class TargetColumn:
    """Stands in for the target network inside SB3's ``DQN.train``: one column holding the
    model's bootstrap value, so SB3's max over it is exactly ``next_state_values``."""

    def __init__(self, model, target_network):
        self.model, self.target_network = model, target_network

    def __call__(self, next_observations):
        self.model.q_net_target = self.target_network
        try:
            return self.model.next_state_values(next_observations).reshape(-1, 1)
        finally:
            self.model.q_net_target = self


def sb3_train(model, gradient_steps: int, batch_size: int) -> None:
    """SB3's own ``DQN.train`` on ``model``, bootstrapping on the model's ``next_state_values``,
    then the model's mode after training (NegRewardDQN acts in evaluation mode)."""
    target_network = model.q_net_target
    model.q_net_target = TargetColumn(model, target_network)
    try:
        DQN.train(model, gradient_steps, batch_size)
    finally:
        model.q_net_target = target_network
    if isinstance(model, NegRewardDQN):
        model.policy.set_training_mode(False)


def twin_models(algo_class, env_kwargs, plain_adam: bool):
    """Two identical models with identical replay buffers, neither trained yet."""
    env = make_env("NegCollision-v0", 2, seed=0, env_kwargs=env_kwargs, vec_env="native")
    params = {**TINY, "learning_starts": 10_000}
    model = algo_class("MlpPolicy", env, seed=0, **params)
    model.learn(400)  # fills the buffer (200 rows x 2 envs), no gradient step yet
    twin = algo_class("MlpPolicy", env, seed=1, **params)
    twin.policy.load_state_dict(model.policy.state_dict())
    twin.replay_buffer = copy.deepcopy(model.replay_buffer)
    twin.set_logger(model.logger)
    if plain_adam:  # SB3's optimizer as SB3 builds it: torch's default Adam
        for each in (model, twin):
            each.policy.optimizer = torch.optim.Adam(each.policy.parameters(), lr=1e-3)
    else:
        twin.policy.optimizer = torch.optim.Adam(twin.policy.parameters(), lr=1e-3)
    return model, twin, env


@pytest.mark.parametrize("algo_class", AGENTS)
def test_train_changes_the_parameters_exactly_as_sb3_dqn_train(algo_class, small_env_kwargs):
    model, twin, env = twin_models(algo_class, small_env_kwargs, plain_adam=True)
    before = parameters(model)
    for seed in (1, 2):
        np.random.seed(seed)
        model.train(gradient_steps=4, batch_size=32)
        np.random.seed(seed)
        sb3_train(twin, gradient_steps=4, batch_size=32)
    after = parameters(model)
    assert not np.array_equal(before, after)  # the steps did change the parameters
    np.testing.assert_array_equal(after, parameters(twin))
    assert model._n_updates == twin._n_updates == 8
    assert model.policy.training is twin.policy.training
    assert model.q_net.training is twin.q_net.training
    assert not model.q_net_target.training
    env.close()


@pytest.mark.parametrize("algo_class", AGENTS)
def test_fused_adam_matches_torch_default_adam_within_rounding(algo_class, small_env_kwargs):
    model, twin, env = twin_models(algo_class, small_env_kwargs, plain_adam=False)
    assert model.policy.optimizer.defaults["fused"] is True
    for _ in range(3):
        np.random.seed(7)
        model.train(gradient_steps=5, batch_size=32)
        np.random.seed(7)
        sb3_train(twin, gradient_steps=5, batch_size=32)
    np.testing.assert_allclose(parameters(model), parameters(twin), rtol=1e-5, atol=1e-6)
    env.close()


def test_next_state_values_is_called_with_the_real_target_network(small_env_kwargs):
    class RecordingDQN(NegDQNBase):
        def next_state_values(self, next_observations):
            self.seen.append((next_observations.shape, type(self.q_net_target)))
            return torch.full((next_observations.shape[0],), -1.0)

    env = make_env("NegCollision-v0", 2, seed=0, env_kwargs=small_env_kwargs)
    model = RecordingDQN("MlpPolicy", env, seed=0, **TINY)
    model.seen = []
    model.learn(100)
    model.seen.clear()
    model.train(gradient_steps=3, batch_size=8)
    obs_dim = env.observation_space.shape[0]
    assert model.seen == [((8, obs_dim), QNetwork)] * 3
    assert model.q_net_target is model.policy.q_net_target
    env.close()


def filled_buffer(size: int, n_envs: int, n_steps: int, rows: int, seed: int) -> NStepReplayBuffer:
    env = make_env("NegCollision-v0", 1, seed=0, env_kwargs={"num_obstacles": 2})
    buffer = NStepReplayBuffer(
        size, env.observation_space, env.action_space, n_envs=n_envs, n_steps=n_steps, gamma=0.9
    )
    rng = np.random.default_rng(seed)
    shape = (n_envs, *env.observation_space.shape)
    for _ in range(rows):
        ended = rng.random(n_envs) < 0.2
        buffer.add(
            rng.random(shape, dtype=np.float32),
            rng.random(shape, dtype=np.float32),
            rng.integers(0, 4, size=(n_envs, 1)),
            -rng.random(n_envs, dtype=np.float32),
            ended,
            [{"TimeLimit.truncated": bool(e and rng.random() < 0.5)} for e in ended],
        )
    env.close()
    return buffer


# size, n_envs, n_steps, rows added: partly filled, just full, wrapped around several times.
BUFFERS = [(40, 2, 3, 7), (12, 3, 3, 12), (10, 1, 4, 37), (16, 2, 1, 50), (5, 3, 2, 91)]


@pytest.mark.parametrize(("size", "n_envs", "n_steps", "rows"), BUFFERS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sample_replay_draws_what_sb3s_n_step_buffer_draws(size, n_envs, n_steps, rows, seed):
    # Partly filled and wrapped-around buffers, episode ends and timeouts everywhere.
    buffer = filled_buffer(size, n_envs, n_steps, rows, seed)
    timeouts = buffer.timeouts.copy()
    np.random.seed(seed)
    expected = buffer.sample(16)
    state_after_sb3 = np.random.get_state()[1].copy()
    np.random.seed(seed)
    got = sample_replay(buffer, 16)
    # The same draws from numpy's global generator, so later draws stay in step too.
    np.testing.assert_array_equal(np.random.get_state()[1], state_after_sb3)
    for name in expected._fields:
        want, have = getattr(expected, name), getattr(got, name)
        assert have.dtype == want.dtype and have.shape == want.shape, name
        torch.testing.assert_close(have, want, rtol=0, atol=0, msg=name)
    np.testing.assert_array_equal(buffer.timeouts, timeouts)  # the buffer is left as it was


def test_sample_replay_leaves_other_buffers_to_sb3():
    env = make_env("NegCollision-v0", 1, seed=0, env_kwargs={"num_obstacles": 2})
    plain = ReplayBuffer(10, env.observation_space, env.action_space)
    assert not fast_path_applies(plain)
    assert not fast_path_applies(
        NStepReplayBuffer(10, env.observation_space, env.action_space), vec_normalize_env=object()
    )
    env.close()


@pytest.mark.parametrize("algo_class", AGENTS)
def test_predict_acts_as_sb3s_predict_and_still_refuses_bad_observations(
    algo_class, small_env_kwargs
):
    env = make_env("NegCollision-v0", 4, seed=0, env_kwargs=small_env_kwargs, vec_env="native")
    model = algo_class("MlpPolicy", env, seed=0, **TINY)
    model.learn(300)
    obs = np.stack([env.observation_space.sample() for _ in range(64)])
    assert model.lean_predict_applies(obs)
    for deterministic in (True, False):
        for eps in (0.0, 0.5):
            model.exploration_rate = eps
            np.random.seed(3), torch.manual_seed(3)
            lean = model.predict(obs, deterministic=deterministic)[0]
            np.random.seed(3), torch.manual_seed(3)
            model.policy.exploration_rate = 0.0 if deterministic else eps
            if isinstance(model, NegActionDQN):
                sb3 = model.policy.predict(obs, deterministic=deterministic)[0]
            else:
                sb3 = DQN.predict(model, obs, deterministic=deterministic)[0]
            model.policy.exploration_rate = 0.0
            np.testing.assert_array_equal(lean, sb3)
            assert lean.dtype == sb3.dtype
    single = model.predict(obs[0], deterministic=True)[0]
    assert single.shape == () and single == model.policy.predict(obs[0], deterministic=True)[0]
    bad = obs.copy()
    bad[5, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.predict(bad)
    with pytest.raises(ValueError, match="shape"):
        model.predict(obs[:, :-1])
    env.close()


def test_fast_extractor_trains_as_the_reference_and_seeds_reproduce_a_run(small_env_kwargs):
    from neg_agents.common.env_util import collision_config
    from neg_agents.common.extractors import ObstacleSetExtractor, collision_extractor_kwargs
    from neg_agents.common.reference_extractor import ReferenceObstacleSetExtractor

    def run(extractor_class=None):
        env = make_env("NegCollision-v0", 2, seed=0, env_kwargs=small_env_kwargs)
        policy_kwargs = dict(TINY["policy_kwargs"])
        if extractor_class is not None:
            config = collision_config(env)
            policy_kwargs["features_extractor_class"] = extractor_class
            policy_kwargs["features_extractor_kwargs"] = collision_extractor_kwargs(
                config, hidden=32, pooling="sum+max"
            )
        model = NegRewardDQN("MlpPolicy", env, seed=0, **{**TINY, "policy_kwargs": policy_kwargs})
        model.learn(300)
        env.close()
        return parameters(model)

    np.testing.assert_array_equal(run(), run())  # the same seed, the same run
    fast = run(ObstacleSetExtractor)
    np.testing.assert_allclose(fast, run(ReferenceObstacleSetExtractor), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("algo_class", [NegRewardDQN, NegActionDQN])
def test_the_shield_needs_an_env_with_action_masks(algo_class):
    """On an env without action_masks() shield=True died at the first step of learning with
    AttributeError: wrapper Monitor has no attribute 'action_masks'."""
    with pytest.raises(ValueError, match=r"has no action_masks\(\).*pass shield=False"):
        algo_class("MlpPolicy", make_env("CartPole-v1", 1, seed=0), shield=True, **TINY)
    # Batched, single and through NegativeActionWrapper, NegCollision envs have them.
    for env in (
        make_env("NegCollision-v0", 2, seed=0, vec_env="native"),
        make_env("NegCollision-v0", 1, seed=0, negative_actions=True),
    ):
        algo_class("MlpPolicy", env, shield=True, **TINY)
