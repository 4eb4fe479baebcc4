"""maskable-ppo (sb3-contrib's MaskablePPO, the contrib extra) and random-masked: agents that act
under the envs' action masks."""

import dataclasses

import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env

from neg_agents import algos, make_env
from neg_agents.common.evaluation import evaluate_agent
from neg_agents.training import TrainConfig, train_agent

needs_contrib = pytest.mark.skipif(
    not algos.ALGOS["maskable-ppo"].available, reason="sb3-contrib is the contrib extra"
)

#: A few hundred steps: short rollouts, one small epoch.
SMALL_PPO = {"n_steps": 64, "batch_size": 32, "n_epochs": 1, "policy_kwargs": {"net_arch": [16]}}


@needs_contrib
def test_maskable_ppo_trains_a_few_hundred_steps_and_acts_within_the_masks():
    import sb3_contrib

    env = make_vec_env("NegCollision-v0", n_envs=2, seed=0, env_kwargs={"num_obstacles": 3})
    model = sb3_contrib.MaskablePPO("MlpPolicy", env, seed=0, **SMALL_PPO).learn(256)
    assert model.num_timesteps >= 256
    obs = env.reset()
    for _ in range(50):
        masks = np.stack(env.env_method("action_masks"))
        actions, _ = model.predict(obs, action_masks=masks)
        assert masks[np.arange(2), actions].all()
        obs, *_ = env.step(actions)
    env.close()


@needs_contrib
@pytest.mark.parametrize("vec_env", ["dummy", "native"])
def test_train_agent_runs_maskable_ppo_with_masked_evaluations(vec_env):
    import sb3_contrib

    result = train_agent(
        "maskable-ppo",
        env_kwargs={"num_obstacles": 3},
        total_timesteps=256,
        n_envs=2,
        vec_env=vec_env,
        hyperparams=SMALL_PPO,
        eval_freq=128,
        eval_episodes=2,
    )
    assert isinstance(result.model, sb3_contrib.MaskablePPO)
    assert [row["timesteps"] for row in result.history] == [128, 256]
    result.model.get_env().close()


def test_batched_env_hands_sb3_one_mask_per_sub_env():
    env = make_env("NegCollision-v0", 3, seed=0, vec_env="native")
    env.reset()
    masks = env.env_method("action_masks")
    assert len(masks) == 3 and all(mask.shape == (5,) for mask in masks)
    assert env.env_method("action_masks", indices=[2])[0].tolist() == masks[2].tolist()
    env.close()


class Recorder:
    """A policy that records the masks it is given and picks the first allowed action."""

    def __init__(self) -> None:
        self.masks: list[np.ndarray] = []

    def predict(self, obs, deterministic=True, action_masks=None):
        self.masks.append(action_masks)
        return np.argmax(action_masks, axis=1), None


def test_evaluation_passes_the_envs_masks_to_maskable_agents():
    env = make_env("NegCollision-v0", 2, seed=0, env_kwargs={"num_obstacles": 3})
    agent = Recorder()
    evaluate_agent(agent, env, 2, action_masks=True)
    assert len(agent.masks) == 500 and all(
        m.shape == (2, 5) and m.any(axis=1).all() for m in agent.masks
    )
    env.close()


def test_a_missing_extra_is_named(monkeypatch):
    missing = dataclasses.replace(algos.ALGOS["maskable-ppo"], model_class=None)
    monkeypatch.setitem(algos.ALGOS, "maskable-ppo", missing)
    with pytest.raises(ValueError, match=r"pip install 'negdl\[contrib\]'"):
        algos.get_algo("maskable-ppo")


def test_masked_random_baseline_picks_uniformly_among_allowed_actions():
    from neg_agents.common.baselines import MaskedRandomAgent

    env = make_env("NegCollision-v0", 2, seed=0)
    agent = MaskedRandomAgent(env.observation_space, env.action_space, seed=0)
    masks = np.array([[True, False, True, False, False], [False, False, False, False, True]])
    actions = np.stack([agent.predict(None, action_masks=masks)[0] for _ in range(400)])
    assert set(actions[:, 0]) == {0, 2} and set(actions[:, 1]) == {4}
    assert 0.4 < (actions[:, 0] == 0).mean() < 0.6
    assert agent.predict(None, action_masks=masks[0])[0] in (0, 2)
    with pytest.raises(ValueError, match="needs action_masks"):
        agent.predict(np.zeros((2, 42)))
    stats = evaluate_agent(agent, env, 2, action_masks=True)
    assert len(stats.returns) == 2
    env.close()


@needs_contrib
def test_a_saved_maskable_ppo_loads_safely_and_acts_the_same(tmp_path):
    from dataclasses import asdict

    import gymnasium as gym

    from neg_agents.model_io import load_agent, save_run

    config = TrainConfig(
        "maskable-ppo", env_kwargs={"num_obstacles": 3}, total_timesteps=128, n_envs=2,
        hyperparams=SMALL_PPO, eval_freq=0,
    )  # fmt: skip
    result = train_agent(config)
    save_run(result.model, asdict(config), tmp_path)
    loaded = load_agent(
        tmp_path / "model.zip", "maskable-ppo", gym.make("NegCollision-v0", num_obstacles=3)
    )
    obs = np.stack([loaded.observation_space.sample() for _ in range(16)])
    np.testing.assert_array_equal(
        loaded.predict(obs, deterministic=True)[0], result.model.predict(obs, deterministic=True)[0]
    )
    result.model.get_env().close()
