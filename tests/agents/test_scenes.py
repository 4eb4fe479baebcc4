"""Agents on every scene: empty arenas, the scene mix, collisions while learning, the
negative-action agent's choice among allowed actions and the shield."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.monitor import load_results

import neg_envs  # noqa: F401
from neg_agents.common.env_util import make_env
from neg_agents.common.evaluation import evaluate_agent
from neg_agents.common.planner import CollisionPlanner
from neg_agents.model_io import transfer_model
from neg_agents.neg_action_dqn import ForbiddingRule, NegActionDQN
from neg_agents.neg_reward_dqn import NegRewardDQN
from neg_agents.training import train_agent

TINY = {"learning_starts": 50, "buffer_size": 1_000, "batch_size": 16}


def train(algo: str = "neg-reward-dqn", **settings):
    """``train_agent`` on ``TINY`` hyperparameters and 2 natively batched envs, without
    evaluations, unless ``settings`` say otherwise."""
    defaults = {"n_envs": 2, "vec_env": "native", "eval_freq": 0, "hyperparams": TINY}
    return train_agent(algo, **{**defaults, **settings})


def test_an_empty_arena_trains_evaluates_transfers_and_the_planner_stands_still():
    result = train(
        env_kwargs={"num_obstacles": 0}, total_timesteps=200, eval_freq=100, eval_episodes=1
    )
    assert result.history and result.history[-1]["collisions_per_episode"] == 0
    empty = make_env("NegCollision-v0", 2, 0, {"num_obstacles": 0})
    planner = CollisionPlanner(empty)
    stats = evaluate_agent(planner, empty, 2).summary()
    assert stats["return"] == 0.0 and stats["moves_per_episode"] == 0.0
    # A policy trained with obstacles acts in an empty arena, and the other way round.
    crowded = make_env("NegCollision-v0", 2, 0, {"num_obstacles": 12})
    for env in (empty, crowded):
        moved = transfer_model(result.model, env)
        assert evaluate_agent(moved.policy, env, 2).summary()["episode_length"] == 500


def test_a_policy_trained_on_the_mix_acts_in_every_named_scene():
    result = train(env_id="NegCollisionMix-v0", total_timesteps=100)
    for env_id, kwargs in (
        ("NegCollision-v0", {}),
        ("NegCollisionCrowd-v0", {}),
        ("NegCollision-v0", {"num_obstacles": 0}),
    ):
        env = make_env(env_id, 1, 0, kwargs)
        moved = transfer_model(result.model, env)
        obs = env.reset()
        # Same parameters, another observation layout: the extractor reads the scene's geometry.
        assert th.equal(
            moved.policy.q_net.q_net[0].weight, result.model.policy.q_net.q_net[0].weight
        )
        actions, _ = moved.predict(obs, deterministic=True)
        assert actions.shape == (1,)


def test_collisions_while_learning_are_every_training_episodes_collisions(tmp_path):
    # 2 envs x 100 steps = 2 episodes of 50 steps each: every step belongs to a finished episode.
    result = train(
        "dqn",
        env_kwargs={"num_obstacles": 60, "max_episode_steps": 50},
        total_timesteps=200,
        vec_env="dummy",
        eval_freq=200,
        eval_episodes=1,
        log_dir=str(tmp_path),
    )
    episodes = load_results(str(tmp_path))
    assert len(episodes) == 4
    assert result.train_collisions == episodes["cumulative_collisions"].sum() > 0
    # The learning curve carries the count so far at each evaluation.
    assert [row["train_collisions"] for row in result.history][-1] == result.train_collisions
    assert result.train_collisions_per_1k == pytest.approx(1000 * result.train_collisions / 200)


def test_the_negative_action_rule_stays_whenever_staying_is_allowed():
    rule = ForbiddingRule(margin=0.05, num_forbidden=1, prefer=4)
    q_values = th.tensor(
        [
            [-0.10, -0.50, -0.12, -0.30, -0.13],  # stay 0.03 below the best: allowed
            [-0.10, -0.50, -0.12, -0.30, -0.20],  # stay 0.10 below the best: forbidden
            [-0.20, -0.20, -0.20, -0.20, -0.20],  # a tie: all but the worst (by rank) allowed
        ]
    )
    forbidden = rule(q_values)
    assert forbidden[:2].tolist() == [
        [False, True, False, True, False],
        [False, True, False, True, True],
    ]
    assert forbidden[2].sum() == 1 and not forbidden[2, 0]  # the best (first) is never forbidden
    weights = rule.policy_weights(q_values)
    assert weights[0].tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert weights[1].tolist() == pytest.approx([0.5, 0.0, 0.5, 0.0, 0.0])
    th.manual_seed(0)
    chosen = [rule.choose(~rule(q_values)).tolist() for _ in range(50)]
    assert all(row[0] == 4 for row in chosen)
    assert {row[1] for row in chosen} == {0, 2}
    # The source's rule (no preference) samples uniformly among the allowed actions.
    uniform = ForbiddingRule(margin=0.05, num_forbidden=1)
    assert {uniform.choose(~uniform(q_values[:1])).item() for _ in range(60)} == {0, 2, 4}


def test_prefer_must_be_an_action_of_the_env():
    with pytest.raises(ValueError, match="prefer must be an action in"):
        ForbiddingRule(prefer=4).check_actions(4)
    with pytest.raises(ValueError, match="prefer must be None or an action index"):
        ForbiddingRule(prefer=-1)


def test_the_shield_only_ever_takes_actions_the_env_allows():
    env = make_env("NegCollision-v0", 4, 0, {"num_obstacles": 80}, "native")
    model = NegRewardDQN("MlpPolicy", env, shield=True, seed=0, **TINY)
    model._last_obs = env.reset()
    for timesteps in (0, 10_000):  # warm-up, then epsilon-greedy (eps 1 at the start)
        model.num_timesteps = timesteps
        for _ in range(20):
            masks = np.stack(env.env_method("action_masks"))
            actions, _ = model._sample_action(TINY["learning_starts"], None, env.num_envs)
            assert masks[np.arange(4), actions].all()
            model._last_obs, *_ = env.step(actions)
    # predict with masks: the best allowed action; refused masks name the problem.
    obs = env.reset()
    only_stay = np.zeros((4, 5), dtype=bool)
    only_stay[:, 4] = True
    assert model.predict(obs, deterministic=True, action_masks=only_stay)[0].tolist() == [4] * 4
    assert model.policy.predict(obs, action_masks=only_stay)[0].tolist() == [4] * 4
    with pytest.raises(ValueError, match="at least one True"):
        model.predict(obs, action_masks=np.zeros((4, 5), dtype=bool))


def test_the_negative_action_agent_shielded_keeps_both_rules():
    """With the env's masks, the agent's own rule ranks and chooses among the allowed actions
    only: the env's forbidden best action is never taken, and stay is still preferred."""
    env = make_env("NegCollision-v0", 2, 0, {"num_obstacles": 80}, "native")
    model = NegActionDQN("MlpPolicy", env, shield=True, seed=0, margin=0.05, prefer=4, **TINY)
    q_values = th.tensor([[-0.10, -0.50, -0.12, -0.30, -0.13], [-0.10, -0.50, -0.12, -0.30, -0.13]])
    model.policy.q_net.forward = lambda obs: q_values[: obs.shape[0]]  # type: ignore[method-assign]
    obs = env.reset()
    masks = np.ones((2, 5), dtype=bool)
    masks[1, 4] = False  # the env forbids staying in the second scene
    for deterministic in (True, False):
        actions, _ = model.predict(obs, deterministic=deterministic, action_masks=masks)
        assert actions[0] in (0, 4) and actions[1] in (0, 2)
        assert actions[0] == (0 if deterministic else 4)
    masks[:, 0] = False  # forbid the best: the rule now judges by the allowed actions' best
    actions, _ = model.predict(obs, deterministic=True, action_masks=masks)
    assert actions.tolist() == [2, 2]
    # The policy alone (what evaluations call) follows the same two rules.
    assert model.policy.predict(obs, deterministic=True, action_masks=masks)[0].tolist() == [2, 2]
    model.exploration_rate = 1.0  # exploring still samples among the env's allowed actions
    for _ in range(20):
        actions, _ = model.predict(obs, deterministic=False, action_masks=masks)
        assert masks[np.arange(2), actions].all()


def test_training_with_the_shield_makes_fewer_collisions_than_without():
    runs = {
        shield: train(
            env_kwargs={"num_obstacles": 40},
            total_timesteps=2_000,
            n_envs=4,
            hyperparams={**TINY, "shield": shield},
        ).train_collisions
        for shield in (False, True)
    }
    assert runs[True] * 3 < runs[False]


def test_gym_make_of_a_scene_with_no_obstacles_has_an_empty_observation_block():
    env = gym.make("NegCollision-v0", num_obstacles=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2,)
