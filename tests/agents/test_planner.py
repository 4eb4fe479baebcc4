import itertools

import gymnasium as gym
import numpy as np
import pytest

from neg_agents import CollisionPlanner, evaluate_agent, get_algo, make_env
from neg_agents.common.planner import axis_lattice, plan_costs
from neg_envs import NegativeActionWrapper

#: A hand-built scene: the agent in the middle, one obstacle closing in from the right, one
#: from above, one sitting still below-left; fast obstacles so that a few steps decide it. Its
#: only optimum is left, left, left, stay (cost 0.03); staying costs 5 collisions.
SCENE = {
    "agent": [0.5, 0.5],
    "positions": [[0.66, 0.5], [0.5, 0.63], [0.42, 0.42]],
    "velocities": [[-0.04, 0.0], [0.0, -0.04], [0.0, 0.0]],
}
STEPS = 4
SCENE_ENV = {"num_obstacles": 3, "obstacle_speed": 0.04}


def scene_env() -> gym.Env:
    env = gym.make("NegCollision-v0", **SCENE_ENV)
    env.reset(seed=0)
    env.unwrapped.set_state(**{key: np.array(value) for key, value in SCENE.items()})
    return env


def episode_cost(actions) -> float:
    env = scene_env()
    total = -sum(env.step(action)[1] for action in actions)
    env.close()
    return total


def brute_force() -> dict[tuple[int, ...], float]:
    """The cost of every action sequence of STEPS steps, run in the real env."""
    return {seq: episode_cost(seq) for seq in itertools.product(range(5), repeat=STEPS)}


@pytest.fixture(scope="module")
def all_costs() -> dict[tuple[int, ...], float]:
    return brute_force()


def test_plan_costs_equal_the_exact_optimum_of_each_first_action(all_costs):
    env = scene_env()
    planner = CollisionPlanner(env, horizon=STEPS)
    costs = planner.action_costs()[0]
    for action in range(5):
        best = min(cost for seq, cost in all_costs.items() if seq[0] == action)
        assert costs[action] == pytest.approx(best, abs=1e-9)
    # The scene is not trivial: staying collides, the one best plan does not.
    assert all_costs[(4,) * STEPS] == 5 and min(all_costs.values()) == pytest.approx(0.03)
    assert planner.predict(env.unwrapped.simulation.observe()[0])[0] == 2  # left


@pytest.mark.parametrize("horizon", [1, 2, 3])
def test_receding_horizon_never_beats_the_optimum_and_full_horizon_reaches_it(all_costs, horizon):
    optimum = min(all_costs.values())

    def rollout(horizon_at) -> float:
        env = scene_env()
        total = 0.0
        obs = env.unwrapped.simulation.observe()[0]
        for step in range(STEPS):
            action, _ = CollisionPlanner(env, horizon_at(step)).predict(obs)
            obs, reward, *_ = env.step(action)
            total -= reward
        return total

    assert rollout(lambda step: horizon) >= optimum - 1e-9
    assert rollout(lambda step: STEPS - step) == pytest.approx(optimum, abs=1e-9)


def test_zero_collisions_on_fixed_seeds_with_a_short_horizon():
    env = make_env("NegCollision-v0", 3, seed=0, vec_env="native")
    planner = CollisionPlanner(env, horizon=3)
    obs = env.reset()
    collisions = moves = 0
    for _ in range(150):
        actions, _ = planner.predict(obs)
        obs, _, _, infos = env.step(actions)
        collisions += sum(info["collisions"] for info in infos)
        moves += sum(info["moved"] for info in infos)
    assert collisions == 0
    assert moves < 150  # it stays when nothing threatens it
    env.close()


def test_the_bench_spec_builds_it_on_a_dummy_vec_env_and_evaluates_it():
    env = make_env("NegCollision-v0", 2, seed=5, env_kwargs={"num_obstacles": 4})
    planner = get_algo("planner").make_baseline(env, seed=0)
    stats = evaluate_agent(planner, env, 2).summary()
    assert stats["collisions_per_episode"] == 0
    env.close()


def test_axis_lattice_follows_the_env_clamp():
    positions, following = axis_lattice(0.03, 0.02, 0.02, 0.98, depth=3)
    # From 0.03: 0.01 clamps to 0.02, which then reaches 0.04, 0.06 (a shifted lattice).
    np.testing.assert_allclose(positions, [0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.09])
    start = int(np.flatnonzero(positions == 0.03)[0])
    assert positions[following[start, 0]] == 0.02 and following[start, 1] == start
    assert positions[following[0, 0]] == 0.02  # a move into the wall stays there


def test_plan_costs_count_moves_and_contacts():
    env = gym.make("NegCollision-v0", num_obstacles=1)
    config = env.unwrapped.config
    far = np.full((3, 2, 1), 0.95)
    costs = plan_costs(np.array([0.5, 0.5]), far, config, horizon=3)
    np.testing.assert_allclose(costs, [0.01, 0.01, 0.01, 0.01, 0.0])


def test_refuses_envs_it_cannot_read_or_control():
    with pytest.raises(TypeError, match="NegCollision envs"):
        CollisionPlanner(gym.make("CartPole-v1"))
    with pytest.raises(TypeError, match="NegativeActionWrapper"):
        CollisionPlanner(NegativeActionWrapper(gym.make("NegCollision-v0")))
    with pytest.raises(ValueError, match="horizon"):
        CollisionPlanner(gym.make("NegCollision-v0"), horizon=0)


def test_refuses_observations_from_another_env():
    env, other = gym.make("NegCollision-v0"), gym.make("NegCollision-v0")
    env.reset(seed=0)
    obs, _ = other.reset(seed=1)
    other.step(0)
    obs, *_ = other.step(0)
    with pytest.raises(ValueError, match="do not match"):
        CollisionPlanner(env).predict(obs)
