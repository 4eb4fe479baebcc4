"""Rendering: rgb_array frames and a headless human window (tests/conftest.py sets SDL to dummy)."""

import gymnasium as gym
import numpy as np
import pytest

import neg_envs  # noqa: F401
from neg_envs import NegCollisionEnv
from neg_envs.rendering import CONTACT


def test_rgb_array_frame_shape_and_contact_highlight():
    env = NegCollisionEnv(
        num_obstacles=1, obstacle_speed=0.0, render_mode="rgb_array", window_size=200
    )
    env.reset(seed=0)
    env.set_state([0.5, 0.5], [[0.2, 0.2]], [[0.0, 0.0]])
    frame = env.render()
    assert frame.shape == (200, 200, 3) and frame.dtype == np.uint8
    assert not np.all(frame == CONTACT, axis=-1).any()
    env.set_state([0.5, 0.5], [[0.52, 0.5]], [[0.0, 0.0]])
    frame = env.render()
    assert np.all(frame == CONTACT, axis=-1).sum() > 50  # the touching obstacle is drawn red
    env.close()


def test_frames_follow_the_state():
    env = gym.make("NegCollision-v0", render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    for _ in range(10):
        env.step(0)
    assert not np.array_equal(first, env.render())


def test_human_mode_runs_headless():
    env = gym.make("NegCollision-v0", render_mode="human")
    env.reset(seed=0)
    for _ in range(3):
        env.step(1)
    assert env.render() is None
    env.close()


def test_render_without_mode_warns():
    env = NegCollisionEnv()
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None
