"""The env's rules at their exact boundaries, in the single env, the batched env and the masks.

Every number here is a binary fraction (exact in float64), so "exactly at the contact distance"
really is exact: contact is ``distance < agent_radius + obstacle_radius``, strictly, with
unequal radii so that a distance computed from one radius alone shows.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import neg_envs  # noqa: F401  (registers the ids)
from neg_envs import NegCollisionEnv
from neg_envs.collision_core import DOWN, LEFT, RIGHT, STAY, UP

AGENT_RADIUS = 0.0625  # 1/16
OBSTACLE_RADIUS = 0.03125  # 1/32
CONTACT = 0.09375  # 3/32: their sum, exactly
STEP = 0.03125  # 1/32
JUST = 2.0**-20
CENTRE = np.array([0.5, 0.5])

#: Obstacles around an agent at the centre, and whether each touches it (agent staying).
SCENE = [
    ((0.5 + CONTACT, 0.5), False),  # exactly at the contact distance, to the right
    ((0.5, 0.5 - CONTACT + JUST), True),  # just inside, below
    ((0.5 - 0.078125, 0.5), True),  # 5/64: inside the sum, beyond twice the obstacle radius
    ((0.5 + 0.0625, 0.5 + 0.0625), True),  # diagonal: 0.0884, inside the sum
    ((0.5, 0.5 + 0.109375), False),  # 7/64: beyond the sum, within twice the agent radius
    ((0.5 - 0.109375, 0.5 - 0.109375), False),  # far
]
# A 3-4-5 triangle exactly at the contact distance: (9 + 16) / 1024 == (5/32)**2 exactly.
DIAGONAL_RADII = {"agent_radius": 0.09375, "obstacle_radius": 0.0625}  # sum 5/32


def hand_placed(env_kwargs: dict, positions) -> NegCollisionEnv:
    env = NegCollisionEnv(num_obstacles=len(positions), obstacle_speed=0.0, **env_kwargs)
    env.reset(seed=0)
    env.set_state(CENTRE, np.array(positions, dtype=float), np.zeros((len(positions), 2)))
    return env


def batched(env_kwargs: dict, positions, num_envs: int = 2):
    """A batched env whose every scene holds the agent at the centre and these obstacles."""
    vector = gym.make_vec(
        "NegCollision-v0",
        num_envs=num_envs,
        num_obstacles=len(positions),
        obstacle_speed=0.0,
        **env_kwargs,
    )
    vector.reset(seed=0)
    obstacles = np.concatenate([np.array(positions, dtype=float).T, np.zeros((2, len(positions)))])
    simulation = vector.unwrapped.simulation
    for scene in range(num_envs):
        simulation.place(scene, CENTRE, obstacles)
    simulation.update_distances()
    return vector


KWARGS = {"agent_radius": AGENT_RADIUS, "obstacle_radius": OBSTACLE_RADIUS, "agent_step": STEP}


def test_contact_is_strictly_closer_than_the_sum_of_the_radii():
    positions = [position for position, _ in SCENE]
    touching = sum(touches for _, touches in SCENE)
    env = hand_placed({**KWARGS, "collision_penalty": 1.0, "move_penalty": 0.0}, positions)
    _, reward, _, _, info = env.step(STAY)
    assert info["collisions"] == touching == 3 and reward == -3.0
    vector = batched({**KWARGS, "collision_penalty": 1.0, "move_penalty": 0.0}, positions)
    _, rewards, _, _, info = vector.step(np.array([STAY, STAY]))
    assert info["collisions"].tolist() == [3, 3] and rewards.tolist() == [-3.0, -3.0]


@pytest.mark.parametrize("offset, touches", [(0.0, False), (-JUST, True)])
def test_contact_on_a_3_4_5_diagonal_exactly_at_and_just_inside_the_distance(offset, touches):
    position = [(0.5 + 0.09375 + offset, 0.5 + 0.125)]  # (3/32, 4/32) from the agent
    env = hand_placed(DIAGONAL_RADII, position)
    assert env.step(STAY)[4]["collisions"] == touches
    vector = batched(DIAGONAL_RADII, position)
    assert vector.step(np.array([STAY, STAY]))[4]["collisions"].tolist() == [touches] * 2


def test_masks_use_the_same_strict_contact_distance():
    """After UP an obstacle sits exactly at the contact distance (no contact, UP allowed);
    after DOWN another sits just inside it (a contact, DOWN forbidden)."""
    positions = [(0.5, 0.5 + STEP + CONTACT), (0.5, 0.5 - STEP - CONTACT + 2.0**-10)]
    one_step = {**KWARGS, "mask_horizon": 1}
    env = hand_placed(one_step, positions)
    expected = [True, False, True, True, True]  # up, down, left, right, stay
    assert env.action_masks().tolist() == expected
    assert batched(one_step, positions).action_masks().tolist() == [expected, expected]
    # What the masks predicted is what the steps do.
    for action, contacts in ((UP, 0), (DOWN, 1)):
        assert hand_placed(KWARGS, positions).step(action)[4]["collisions"] == contacts


@pytest.mark.parametrize(
    "agent, into_wall",
    [
        ((AGENT_RADIUS, 0.5), LEFT),
        ((1 - AGENT_RADIUS, 0.5), RIGHT),
        ((0.5, AGENT_RADIUS), DOWN),
        ((0.5, 1 - AGENT_RADIUS), UP),
    ],
)
def test_a_move_into_a_wall_is_charged_the_move_penalty(agent, into_wall):
    """The agent against a wall stays where it is when it moves into it, and still pays
    ``move_penalty``: a needless move is a move (the env's docstring)."""
    kwargs = {**KWARGS, "collision_penalty": 1.0, "move_penalty": 0.125}
    env = NegCollisionEnv(num_obstacles=0, **kwargs)
    env.reset(seed=0)
    env.set_state(np.array(agent), np.zeros((0, 2)), np.zeros((0, 2)))
    _, reward, _, _, info = env.step(into_wall)
    assert env.agent_position.tolist() == list(agent)
    assert reward == -0.125 and info["moved"] is True
    assert env.step(STAY)[1] == 0.0  # staying is free
    vector = gym.make_vec("NegCollision-v0", num_envs=2, num_obstacles=0, **kwargs)
    vector.reset(seed=0)
    vector.unwrapped.simulation.place(0, np.array(agent), np.zeros((4, 0)))
    _, rewards, _, _, info = vector.step(np.array([into_wall, STAY]))
    assert rewards.tolist() == [-0.125, 0.0] and info["moved"].tolist() == [True, False]
    np.testing.assert_array_equal(vector.unwrapped.simulation.agent[0], agent)
