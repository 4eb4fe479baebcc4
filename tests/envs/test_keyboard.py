"""Keyboard play: the env's key mapping works with Gymnasium's play tool and scripts/play.py."""

import gymnasium as gym
import numpy as np
import pygame
import pytest

import neg_envs  # noqa: F401
from neg_envs.collision_core import DOWN, LEFT, RIGHT, STAY, UP
from neg_envs.keyboard import action_for_keys


@pytest.mark.parametrize("allow_stay", [True, False])
def test_every_mapped_key_gives_a_valid_action(allow_stay):
    env = gym.make("NegCollision-v0", render_mode="rgb_array", allow_stay=allow_stay)
    mapping = env.get_wrapper_attr("get_keys_to_action")()
    assert all(keys and all(isinstance(k, int) for k in keys) for keys in mapping)
    assert all(env.action_space.contains(action) for action in mapping.values())
    moves = {action: set() for action in (UP, DOWN, LEFT, RIGHT)}
    for keys, action in mapping.items():
        if action != STAY:
            moves[action] |= set(keys)
    assert moves == {
        UP: {pygame.K_UP, ord("w")},
        DOWN: {pygame.K_DOWN, ord("s")},
        LEFT: {pygame.K_LEFT, ord("a")},
        RIGHT: {pygame.K_RIGHT, ord("d")},
    }
    assert (mapping.get((pygame.K_SPACE,)) == STAY) is allow_stay


def test_held_keys_choose_the_action():
    mapping = gym.make("NegCollision-v0").get_wrapper_attr("get_keys_to_action")()
    assert action_for_keys([], mapping, STAY) == STAY
    assert action_for_keys([pygame.K_LEFT], mapping, STAY) == LEFT
    assert action_for_keys([ord("d")], mapping, STAY) == RIGHT
    assert action_for_keys([ord("x")], mapping, STAY) == STAY  # unmapped key
    assert action_for_keys([ord("x"), ord("s")], mapping, STAY) == DOWN


@pytest.mark.filterwarnings("ignore:.*matplotlib is not installed")  # play's optional TkAgg plots
def test_gymnasium_play_runs_the_game(monkeypatch):
    """``play(gym.make(...))`` finds the mapping and plays (headless, quit after a few frames)."""
    from gymnasium.utils import play as play_module

    frames = []
    calls = {"n": 0}
    real_get = pygame.event.get

    def quit_after_some_frames():
        calls["n"] += 1
        return [pygame.event.Event(pygame.QUIT)] if calls["n"] > 5 else real_get()

    monkeypatch.setattr(pygame.event, "get", quit_after_some_frames)
    env = gym.make("NegCollision-v0", render_mode="rgb_array", window_size=128)

    def record(obs_t, obs_tp1, action, reward, terminated, truncated, info):
        frames.append((action, reward))

    play_module.play(env, fps=1000, noop=STAY, callback=record)
    assert len(frames) >= 4 and all(action == STAY for action, _ in frames)
    assert all(reward <= 0 for _, reward in frames)
    assert np.isfinite([reward for _, reward in frames]).all()
