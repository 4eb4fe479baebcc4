from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.logger import configure

from neg_agents import ConstantAgent, RandomAgent, evaluate_agent, make_env
from neg_agents.common.callbacks import CollisionEvalCallback


def manual_stats(env_kwargs, seeds, action_fn):
    env = gym.make("NegCollision-v0", **env_kwargs)
    out = []
    for seed in seeds:
        env.reset(seed=seed)
        total, hits, moves, done = 0.0, 0, 0, False
        while not done:
            _, reward, terminated, truncated, info = env.step(action_fn())
            total, hits, moves, done = (
                total + reward,
                hits + info["collisions"],
                moves + info["moved"],
                terminated or truncated,
            )
        out.append((total, hits, moves))
    return out


def test_evaluate_agent_counts_what_the_env_reports(small_env_kwargs):
    env = make_env("NegCollision-v0", n_envs=2, seed=7, env_kwargs=small_env_kwargs)
    stay = ConstantAgent(env.observation_space, env.action_space, 4)
    stats = evaluate_agent(stay, env, n_episodes=2)
    expected = manual_stats(small_env_kwargs, [7, 8], lambda: 4)
    assert stats.collisions == [hits for _, hits, _ in expected]
    np.testing.assert_allclose(stats.returns, [total for total, _, _ in expected], rtol=1e-5)
    assert stats.moves == [0, 0] and stats.lengths == [500, 500]
    hits = [hits for _, hits, _ in expected]  # of the episodes played here by hand
    summary = stats.summary()
    assert summary["collisions_per_episode"] == (hits[0] + hits[1]) / 2
    assert summary["collision_free_share"] == ((hits[0] == 0) + (hits[1] == 0)) / 2
    assert summary["moves_per_episode"] == 0.0 and summary["episode_length"] == 500.0
    assert summary["return"] == pytest.approx((expected[0][0] + expected[1][0]) / 2, rel=1e-5)


def test_random_agent_is_seeded_and_uniform(single_env):
    a = RandomAgent(single_env.observation_space, single_env.action_space, seed=3)
    b = RandomAgent(single_env.observation_space, single_env.action_space, seed=3)
    obs = np.zeros((5000, *single_env.observation_space.shape), dtype=np.float32)
    actions = a.predict(obs)[0]
    np.testing.assert_array_equal(actions, b.predict(obs)[0])
    assert np.all(np.abs(np.bincount(actions, minlength=5) / 5000 - 0.2) < 0.03)
    single = a.predict(obs[0])[0]
    assert np.ndim(single) == 0 and single_env.action_space.contains(int(single))


def test_constant_agent_validates_its_action(single_env):
    with pytest.raises(ValueError, match="not in the action space"):
        ConstantAgent(single_env.observation_space, single_env.action_space, 7)


def test_eval_callback_rejects_bad_settings(vec_env):
    with pytest.raises(ValueError, match="eval_freq"):
        CollisionEvalCallback(vec_env, eval_freq=0)


@pytest.mark.parametrize("episode_seed", [31, None])
def test_eval_callback_replays_the_same_episodes_when_given_an_episode_seed(episode_seed):
    # A staying agent among 10 moving obstacles: its punishment depends on the scenes alone.
    env = make_env("NegCollision-v0", n_envs=2, seed=31)
    stay = ConstantAgent(env.observation_space, env.action_space, 4)
    model = SimpleNamespace(policy=stay, get_env=lambda: env, logger=configure(None, []))
    callback = CollisionEvalCallback(env, n_eval_episodes=4, episode_seed=episode_seed)
    callback.init_callback(model)  # type: ignore[arg-type]
    callback.evaluate()
    callback.evaluate()
    first, second = callback.episodes["results"]
    assert len(first) == 4 and len(set(first)) > 1  # scenes that differ
    # With the seed both evaluations play the same scenes; without it, the next ones.
    assert (first == second) == (episode_seed is not None)
    env.close()


def test_eval_callback_rejects_a_negative_episode_seed(vec_env):
    with pytest.raises(ValueError, match="episode_seed"):
        CollisionEvalCallback(vec_env, episode_seed=-1)


def test_evaluate_agent_asks_for_a_vec_env():
    """A single gym.Env died of AttributeError: 'TimeLimit' object has no attribute 'num_envs'."""
    env = gym.make("NegCollision-v0")
    with pytest.raises(TypeError, match=r"steps a VecEnv, e.g. neg_agents.make_env"):
        evaluate_agent(ConstantAgent(env.observation_space, env.action_space, 4), env, 1)
