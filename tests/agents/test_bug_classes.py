"""Tests aimed at plausible one-line bugs that the other agent tests let through (issue 23):
bootstrapping from the online network, one seed for every sub-env, the wrong terminal
observation, and the forbidding rule's boundary."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import stable_baselines3.dqn.dqn as sb3_dqn
import torch

from neg_agents import NegActionDQN, NegRewardDQN, SB3VecEnvAdapter, forbidden_actions, make_env
from neg_agents.common import dqn_base

from .conftest import TINY

# -- TD targets come from the target network -------------------------------------------------


def hand_next_values(algo: type, q_target: torch.Tensor, margin: float) -> torch.Tensor:
    """V(s') by each agent's documented rule, written out from the target network's values."""
    if algo is NegRewardDQN:  # DQN's greedy value
        return q_target.max(dim=1).values
    values = []
    for row in q_target:  # NegActionDQN: mean over the actions not forbidden (num_forbidden=1)
        best = int(row.argmax())
        worst = min((a for a in range(len(row)) if a != best), key=lambda a: (row[a], a))
        allowed = [a for a in range(len(row)) if a != worst and row[a] >= row[best] - margin]
        values.append(row[allowed].mean())
    return torch.stack(values)


def make_online_and_target_differ(model) -> None:
    """Perturb the online network and lower its values by 5 (so a head that clamps at 0 cannot
    hide the difference); the target network keeps its weights."""
    with torch.no_grad():
        for parameter in model.q_net.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
        last = [module for module in model.q_net.modules() if isinstance(module, torch.nn.Linear)]
        last[-1].bias.sub_(5.0)


@pytest.mark.parametrize("algo", [NegActionDQN, NegRewardDQN])
def test_td_target_of_a_train_step_comes_from_the_target_network(algo, monkeypatch):
    """One real ``train`` step: the Huber loss's target must be r + (1 - done) * discount * V(s')
    with V from ``q_net_target``, not from the online ``q_net`` (equal right after construction,
    so the online and target networks are made to differ first)."""
    torch.manual_seed(0)
    env = make_env("NegCollision-v0", 2, seed=0, env_kwargs={"num_obstacles": 3})
    kwargs = {"margin": 0.05, "num_forbidden": 1} if algo is NegActionDQN else {}
    model = algo("MlpPolicy", env, seed=0, **{**TINY, "learning_starts": 32}, **kwargs).learn(64)
    make_online_and_target_differ(model)
    target_network = model.q_net_target
    sampled, targets = [], []
    sample = dqn_base.sample_replay
    monkeypatch.setattr(
        dqn_base,
        "sample_replay",
        lambda *a, **k: sampled.append(sample(*a, **k)) or sampled[-1],
    )
    huber = sb3_dqn.F.smooth_l1_loss
    monkeypatch.setattr(
        sb3_dqn.F, "smooth_l1_loss", lambda q, target: targets.append(target) or huber(q, target)
    )
    model.train(gradient_steps=1, batch_size=16)
    batch = sampled[0]
    with torch.no_grad():
        q_target = target_network(batch.next_observations)
        q_online = model.q_net(batch.next_observations)  # after the step: only for the contrast
    discounts = batch.discounts if batch.discounts is not None else model.gamma
    expected = batch.rewards + (1 - batch.dones) * discounts * hand_next_values(
        algo, q_target, 0.05
    ).reshape(-1, 1)
    torch.testing.assert_close(targets[0], expected)
    wrong = batch.rewards + (1 - batch.dones) * discounts * hand_next_values(
        algo, q_online, 0.05
    ).reshape(-1, 1)
    assert not torch.allclose(targets[0], wrong)  # the test can tell the two networks apart
    env.close()


# -- The forbidding rule's margin boundary ---------------------------------------------------


def test_an_action_exactly_margin_below_the_best_is_allowed_and_just_beyond_forbidden():
    """Binary fractions, so "exactly margin below" is exact in float32: -0.5 - 0.25 == -0.75."""
    beyond = float(np.nextafter(np.float32(-0.75), np.float32(-1.0)))
    q = torch.tensor([[-0.5, -0.75, beyond, -0.625]], dtype=torch.float32)
    assert q[0, 1].item() == -0.5 - 0.25 and q[0, 2].item() < -0.75
    np.testing.assert_array_equal(
        forbidden_actions(q, 0.25, 0).numpy(), [[False, False, True, False]]
    )
    # Margin 0: only actions as good as the best stay; an equal-valued one is not "below".
    q = torch.tensor([[-0.5, -0.5000001, -0.25, -0.25]], dtype=torch.float32)
    np.testing.assert_array_equal(
        forbidden_actions(q, 0.0, 0).numpy(), [[True, True, False, False]]
    )


# -- Sub-env seeds and terminal observations through SB3VecEnvAdapter -------------------------


def test_native_training_envs_seed_each_sub_env_like_the_dummy_path():
    """The default training path (``make_env(..., "native")``) must give sub-env i the seed
    ``seed + i``, exactly as SB3's ``make_vec_env`` does for the dummy path."""
    kwargs = {"num_obstacles": 4}
    native = make_env("NegCollision-v0", 3, seed=5, env_kwargs=kwargs, vec_env="native")
    dummy = make_env("NegCollision-v0", 3, seed=5, env_kwargs=kwargs, vec_env="dummy")
    first = native.reset()
    np.testing.assert_array_equal(first, dummy.reset())
    for i in range(3):
        single, _ = gym.make("NegCollision-v0", **kwargs).reset(seed=5 + i)
        np.testing.assert_array_equal(first[i], single)
    assert len({row.tobytes() for row in first}) == 3
    actions = np.array([0, 3, 4])
    for _ in range(5):
        np.testing.assert_array_equal(native.step(actions)[0], dummy.step(actions)[0])
    native.close()
    dummy.close()


@pytest.mark.parametrize("terminate", [False, True])
def test_terminal_observation_is_the_last_of_the_ended_episode(terminate):
    """SB3 bootstraps from ``info["terminal_observation"]`` at time limits: it must be the ended
    episode's last observation (what the single env returns at that step), not the next
    episode's first one, which the adapter returns as the step's observation."""
    kwargs = {"num_obstacles": 12, "obstacle_radius": 0.08, "terminate_on_collision": terminate}
    horizon, num_envs = 6, 3
    adapter = SB3VecEnvAdapter(
        gym.make_vec("NegCollision-v0", num_envs=num_envs, max_episode_steps=horizon, **kwargs)
    )
    singles = [gym.make("NegCollision-v0", max_episode_steps=horizon, **kwargs) for _ in range(3)]
    adapter.seed(2)
    obs = adapter.reset()
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(obs[i], env.reset(seed=2 + i)[0])
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(2 * horizon):
        actions = rng.integers(5, size=num_envs)
        obs, rewards, dones, infos = adapter.step(actions)
        for i, env in enumerate(singles):
            last, reward, terminated, truncated, _ = env.step(int(actions[i]))
            assert rewards[i] == np.float32(reward) and dones[i] == (terminated or truncated)
            if dones[i]:
                ended += 1
                np.testing.assert_array_equal(infos[i]["terminal_observation"], last)
                assert infos[i]["TimeLimit.truncated"] == (truncated and not terminated)
                last, _ = env.reset()
                assert not np.array_equal(infos[i]["terminal_observation"], last)
            else:
                assert "terminal_observation" not in infos[i]
            np.testing.assert_array_equal(obs[i], last)
    assert ended >= num_envs
    adapter.close()
