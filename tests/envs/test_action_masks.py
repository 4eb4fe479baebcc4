"""action_masks(): the documented rule, checked against what a step really does."""

from dataclasses import asdict

import gymnasium as gym
import numpy as np
import pytest

import neg_envs  # noqa: F401
from neg_envs import NegativeActionWrapper, NegCollisionEnv
from neg_envs.collision_core import LEFT, RIGHT, STAY, UP


def random_state(env: NegCollisionEnv, rng: np.random.Generator) -> None:
    """Put the agent anywhere (often against a wall) and crowd obstacles around it."""
    n = env.config.num_obstacles
    r = env.config.agent_radius
    agent = rng.uniform(r, 1 - r, size=2)
    wall = rng.integers(4)  # pin the agent to a wall (or a corner) half of the time
    if wall < 2:
        agent[wall] = r if rng.random() < 0.5 else 1 - r
    near = agent + rng.normal(scale=0.05, size=(n, 2))
    positions = np.clip(near, 0.03, 0.97)
    velocities = rng.uniform(-0.01, 0.01, size=(n, 2))
    env.set_state(agent, positions, velocities)


def outcomes(env: NegCollisionEnv) -> tuple[np.ndarray, np.ndarray]:
    """Per action: the collisions of really stepping a copy of the state, and whether the agent
    moved."""
    collisions, moved = [], []
    state = (env.agent_position, env.obstacle_positions, env.obstacle_velocities)
    for action in range(env.action_space.n):
        probe = NegCollisionEnv(**asdict(env.config))
        probe.reset(seed=0)
        probe.set_state(*state)
        _, _, _, _, info = probe.step(action)
        collisions.append(info["collisions"])
        moved.append(not np.array_equal(state[0], probe.agent_position))
    return np.array(collisions), np.array(moved)


@pytest.mark.parametrize("allow_stay", [True, False])
def test_masks_follow_the_rule_on_random_states(allow_stay):
    env = NegCollisionEnv(num_obstacles=8, allow_stay=allow_stay, mask_horizon=1)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    forbade_a_wall = forbade_a_contact = False
    for _ in range(150):
        random_state(env, rng)
        mask = env.action_masks()
        collisions, moved = outcomes(env)
        useful = moved.copy()
        if allow_stay:
            useful[STAY] = True
        expected = useful & (collisions == collisions[useful].min())
        np.testing.assert_array_equal(mask, expected)
        assert mask.dtype == np.bool_ and mask.any()
        forbade_a_wall |= bool((~useful).any())
        forbade_a_contact |= bool((useful & ~mask).any())
    assert forbade_a_wall and forbade_a_contact  # both parts of the rule were exercised


def assert_batched_masks_match_singles(
    kwargs: dict, num_envs: int, seed: int, rng: np.random.Generator, steps: int
) -> None:
    """Along a random walk, the batched env's masks are those of single envs seeded ``seed + i``."""
    vec = gym.make_vec("NegCollision-v0", num_envs=num_envs, **kwargs)
    singles = [gym.make("NegCollision-v0", **kwargs) for _ in range(num_envs)]
    vec.reset(seed=seed)
    for i, env in enumerate(singles):
        env.reset(seed=seed + i)
    for _ in range(steps):
        masks = vec.action_masks()
        assert masks.shape == (num_envs, 5)
        for i, env in enumerate(singles):
            np.testing.assert_array_equal(masks[i], env.unwrapped.action_masks())
        actions = rng.integers(5, size=num_envs)
        vec.step(actions)
        for env, action in zip(singles, actions, strict=True):
            env.step(int(action))


def test_batched_masks_match_the_single_envs():
    assert_batched_masks_match_singles({"num_obstacles": 30}, 6, 3, np.random.default_rng(1), 60)


def test_no_obstacles_forbids_only_wall_moves():
    env = NegCollisionEnv(num_obstacles=0)
    env.reset(seed=0)
    assert env.action_masks().all()
    env.set_state([env.config.agent_radius, 0.5], np.zeros((0, 2)), np.zeros((0, 2)))
    assert env.action_masks().tolist() == [True, True, False, True, True]


def test_wrapper_mask_is_what_is_worth_naming():
    env = NegativeActionWrapper(NegCollisionEnv(num_obstacles=8, mask_horizon=1))
    env.reset(seed=0)
    rng = np.random.default_rng(2)
    named_some = named_all = False
    for _ in range(50):
        random_state(env.unwrapped, rng)
        # Worth naming as "do not": an action that really is needless or costs more contacts
        # than the best remaining one, found by stepping copies; every action when none is.
        collisions, moved = outcomes(env.unwrapped)
        useful = moved | (np.arange(len(moved)) == STAY)
        bad = ~useful | (collisions > collisions[useful].min())
        np.testing.assert_array_equal(env.action_masks(), bad if bad.any() else np.ones_like(bad))
        named_some |= bool(bad.any())
        named_all |= not bad.any()
    assert named_some and named_all  # both cases of the rule were exercised
    # Naming a forbidden action keeps it from running, as the wrapper's rule says.
    env.unwrapped.set_state([0.02, 0.98], np.full((8, 2), 0.5), np.zeros((8, 2)))
    assert env.action_masks().tolist() == [True, False, True, False, False]  # up, left: walls
    for _ in range(20):
        assert env.step(UP)[4]["executed_action"] != UP
    with pytest.raises(AttributeError, match="has no action_masks"):
        NegativeActionWrapper(gym.make("CartPole-v1")).action_masks()


def test_masks_need_a_reset():
    with pytest.raises(RuntimeError, match="reset"):
        NegCollisionEnv().action_masks()
    with pytest.raises(RuntimeError, match="reset"):
        gym.make_vec("NegCollision-v0", num_envs=2).action_masks()


def test_masked_moves_exclude_left_and_right_walls():
    env = NegCollisionEnv(num_obstacles=0)
    env.reset(seed=0)
    r = env.config.agent_radius
    env.set_state([1 - r, r], np.zeros((0, 2)), np.zeros((0, 2)))
    mask = env.action_masks()
    assert not mask[RIGHT] and mask[LEFT] and mask[UP] and mask[STAY]


def first_contact_by_stepping(env: NegCollisionEnv, action: int, horizon: int) -> int:
    """The first step (1..horizon) at which repeating ``action`` on a copy touches an obstacle,
    ``horizon + 1`` if none."""
    probe = NegCollisionEnv(**asdict(env.config))
    probe.reset(seed=0)
    probe.set_state(env.agent_position, env.obstacle_positions, env.obstacle_velocities)
    for step in range(1, horizon + 1):
        if probe.step(action)[4]["collisions"]:
            return step
    return horizon + 1


@pytest.mark.parametrize("horizon", [3, 8])
def test_lookahead_masks_follow_the_rule_on_random_states(horizon):
    """Of the one-step mask's actions, those that touch an obstacle soonest when repeated are
    forbidden too, checked by really stepping copies."""
    env = NegCollisionEnv(num_obstacles=8, mask_horizon=horizon)
    one_step = NegCollisionEnv(num_obstacles=8, mask_horizon=1)
    env.reset(seed=0)
    one_step.reset(seed=0)
    rng = np.random.default_rng(2)
    refined = 0
    for _ in range(60):
        random_state(env, rng)
        one_step.set_state(env.agent_position, env.obstacle_positions, env.obstacle_velocities)
        base = one_step.action_masks()
        first = np.array([first_contact_by_stepping(env, a, horizon) for a in range(5)])
        expected = base & (first == first[base].max())
        np.testing.assert_array_equal(env.action_masks(), expected)
        refined += int((expected != base).any())
    assert refined > 0  # the horizon forbade something the one-step mask allowed


def test_lookahead_masks_of_the_batched_env_match_the_single_envs():
    kwargs = {
        "num_obstacles": (0, 40),
        "obstacle_radius": (0.01, 0.04),
        "agent_radius": (0.01, 0.02),
    }
    kwargs |= {"observation": "nearest_radii", "k_nearest": 8, "mask_horizon": 6}
    assert_batched_masks_match_singles(kwargs, 4, 5, np.random.default_rng(3), 80)


def test_lookahead_sees_an_obstacle_placed_beyond_its_wall_bound():
    """set_state may put an obstacle closer to a wall than its radius; its first reflection then
    throws it back further than it moves in a step, here into contact at once."""
    env = NegCollisionEnv(num_obstacles=1, agent_step=0.001, obstacle_speed=0.001, mask_horizon=2)
    env.reset(seed=0)
    env.set_state([0.1, 0.5], [[0.0, 0.5]], [[-0.001, 0.0]])
    contacts, first = env.simulation.lookahead(2)
    for action in range(5):
        assert first[0, action] == first_contact_by_stepping(env, action, 2) == 1
        assert contacts[0, action] == 1
