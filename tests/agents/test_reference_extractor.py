"""The current ObstacleSetExtractor computes what negdl 0.1's (the frozen reference) computed."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from neg_agents.common.extractors import ObstacleSetExtractor, collision_extractor_kwargs
from neg_agents.common.reference_extractor import ReferenceObstacleSetExtractor


def scene_observations(env: gym.Env, n: int, seed: int) -> torch.Tensor:
    """Observations of a random walk, resets included: obstacles near and far, walls close."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    rows = [obs]
    for _ in range(n - 1):
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(4)))
        if terminated or truncated:
            obs, _ = env.reset()
        rows.append(obs)
    return torch.as_tensor(np.stack(rows))


@pytest.fixture(params=["absolute", "nearest"])
def env(request):
    """A scene of 8 obstacles in each layout negdl 0.1's extractor reads."""
    env = gym.make("NegCollision-v0", num_obstacles=8, observation=request.param)
    yield env
    env.close()


@pytest.fixture(params=["sum", "max", "sum+max"])
def pooling(request):
    return request.param


def extractor_pair(space: gym.spaces.Box, env: gym.Env, pooling: str) -> tuple:
    """The reference and the current extractor on ``space`` for ``env``, with the same weights."""
    kwargs = collision_extractor_kwargs(env.unwrapped.config, hidden=16, pooling=pooling)
    reference = ReferenceObstacleSetExtractor(space, **kwargs)
    current = ObstacleSetExtractor(space, **kwargs)
    current.load_state_dict(reference.state_dict())
    return reference, current


def test_current_extractor_matches_the_reference(env, pooling):
    reference, current = extractor_pair(env.observation_space, env, pooling)
    obs = scene_observations(env, 300, seed=1)
    want = reference(obs)
    assert want.shape == (300, reference.features_dim) and want.abs().sum() > 0
    torch.testing.assert_close(current(obs), want, rtol=1e-5, atol=1e-6)
    # and the gradients a training step takes through it
    want.square().sum().backward()
    current(obs).square().sum().backward()
    for name, parameter in reference.named_parameters():
        torch.testing.assert_close(
            dict(current.named_parameters())[name].grad, parameter.grad, rtol=1e-4, atol=1e-6
        )


def test_fast_forward_matches_on_permuted_obstacles_and_the_general_forward(env, pooling):
    reference, current = extractor_pair(env.observation_space, env, pooling)
    obs = scene_observations(env, 200, seed=2)
    lead, per = current.lead, current.per_obstacle
    slots = obs[:, lead:].reshape(len(obs), -1, per)
    permuted = torch.cat(
        [obs[:, :lead], slots[:, torch.randperm(slots.shape[1])].reshape(len(obs), -1)], dim=1
    )
    want = reference(obs)
    with torch.no_grad():
        torch.testing.assert_close(current(permuted), want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(current.general_forward(obs), current(obs), rtol=1e-5, atol=1e-6)


def test_fast_forward_matches_with_no_obstacle_in_reach_or_none_at_all(pooling):
    env = gym.make("NegCollision-v0", num_obstacles=6)
    for space in (env.observation_space, gym.spaces.Box(0.0, 1.0, (2,))):
        reference, current = extractor_pair(space, env, pooling)
        obs = torch.as_tensor(np.stack([space.sample() for _ in range(50)]))
        obs[:10, :2] = 0.05  # agent in a corner
        if obs.shape[1] > 2:
            obs[:10, 2:].reshape(10, -1, 4)[..., :2] = 0.95  # every obstacle far away
        out = current(obs)
        # negdl 0.1's extractor fails on 0 obstacles: there the general forward is the reference
        want = reference(obs) if obs.shape[1] > 2 else current.general_forward(obs)
        torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-6)
        assert torch.all(out[:10, :-4] == 0)
