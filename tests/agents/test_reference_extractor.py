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


@pytest.mark.parametrize("observation", ["absolute", "nearest"])
@pytest.mark.parametrize("pooling", ["sum", "max", "sum+max"])
def test_current_extractor_matches_the_reference(observation, pooling):
    env = gym.make("NegCollision-v0", num_obstacles=8, observation=observation)
    kwargs = collision_extractor_kwargs(env.unwrapped.config, hidden=16, pooling=pooling)
    reference = ReferenceObstacleSetExtractor(env.observation_space, **kwargs)
    current = ObstacleSetExtractor(env.observation_space, **kwargs)
    current.load_state_dict(reference.state_dict())
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
    env.close()
