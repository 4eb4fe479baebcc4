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


def dense_forward(extractor: ObstacleSetExtractor, obs: torch.Tensor) -> torch.Tensor:
    """The extractor's output from its features of every slot (``obstacle_features``), without
    skipping the obstacles out of reach: the definition its forward computes."""
    features = extractor.obstacle_features(obs)
    _, reach, agent_radius = extractor.geometry(obs)
    reach = reach[:, None] if torch.is_tensor(reach) else reach
    embedded = extractor.embed(torch.clamp(features[..., :-1], -reach, reach)) * features[..., -1:]
    pooled = []
    if extractor.pooling in ("sum", "sum+max"):
        pooled.append(embedded.sum(dim=1))
    if extractor.pooling in ("max", "sum+max"):
        pooled.append(embedded.amax(dim=1) if extractor.num_slots else embedded.sum(dim=1))
    agent = obs[:, :2]
    walls = torch.cat([agent - agent_radius, 1.0 - agent_radius - agent], 1) / extractor.agent_step
    reach = reach[:, 0] if torch.is_tensor(reach) else reach
    return torch.cat([*pooled, torch.clamp(walls, max=reach)], dim=1)


def test_forward_matches_on_permuted_obstacles_and_the_dense_definition(env, pooling):
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
        torch.testing.assert_close(dense_forward(current, obs), current(obs), rtol=1e-5, atol=1e-6)


def test_fast_forward_matches_with_no_obstacle_in_reach_or_none_at_all(pooling):
    env = gym.make("NegCollision-v0", num_obstacles=6)
    for space in (env.observation_space, gym.spaces.Box(0.0, 1.0, (2,))):
        space.seed(0)
        reference, current = extractor_pair(space, env, pooling)
        obs = torch.as_tensor(np.stack([space.sample() for _ in range(50)]))
        obs[:10, :2] = 0.05  # agent in a corner
        if obs.shape[1] > 2:
            obs[:10, 2:].reshape(10, -1, 4)[..., :2] = 0.95  # every obstacle far away
        out = current(obs)
        # negdl 0.1's extractor fails on 0 obstacles: there the dense definition is the reference
        want = reference(obs) if obs.shape[1] > 2 else dense_forward(current, obs)
        # the two sum in different orders: float32 rounding, as in the permuted test
        torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)
        assert torch.all(out[:10, :-4] == 0)


def test_scene_radii_read_from_the_observation_give_the_fixed_scene_features(pooling):
    """``nearest_radii`` reads the contact distance from each observation: on a scene whose
    radii it reads, it computes what the ``nearest`` layout computes with them fixed, in one
    batch that mixes that scene with another."""
    kwargs = {"num_obstacles": 12, "k_nearest": 8}
    fixed = gym.make("NegCollision-v0", observation="nearest", **kwargs)
    mixed = gym.make("NegCollisionMix-v0")
    radii_env = gym.make("NegCollision-v0", observation="nearest_radii", **kwargs)
    _, nearest = extractor_pair(fixed.observation_space, fixed, pooling)
    radii = ObstacleSetExtractor(
        radii_env.observation_space,
        **collision_extractor_kwargs(radii_env.unwrapped.config, hidden=16, pooling=pooling),
    )
    radii.load_state_dict(nearest.state_dict())
    obs = scene_observations(radii_env, 100, seed=3)
    other = scene_observations(mixed, 100, seed=4)[:, : obs.shape[1]]
    both = torch.cat([obs, other])
    without_radii = torch.cat([obs[:, :2], obs[:, 4:]], dim=1)
    with torch.no_grad():
        out = radii(both)
        torch.testing.assert_close(out[:100], nearest(without_radii), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out, dense_forward(radii, both), rtol=1e-5, atol=1e-5)
