"""Rendering: rgb_array frames and a headless human window (tests/conftest.py sets SDL to dummy)."""

import gymnasium as gym
import numpy as np
import pytest

import neg_envs  # noqa: F401
from neg_envs import NegCollisionEnv
from neg_envs.rendering import BIRD_BODY, BLACK, CONTACT, HUD_BACKGROUND, HUD_TEXT, OBSTACLE


def pixels_of(frame: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    return np.all(frame == colour, axis=-1)


def test_rgb_array_frame_shape_and_contact_highlight():
    env = NegCollisionEnv(
        num_obstacles=1, obstacle_speed=0.0, render_mode="rgb_array", window_size=200
    )
    env.reset(seed=0)
    env.set_state([0.5, 0.5], [[0.2, 0.2]], [[0.0, 0.0]])
    frame = env.render()
    band = env.unwrapped._renderer.hud_height
    assert frame.shape == (200 + band, 200, 3) and frame.dtype == np.uint8
    assert not pixels_of(frame, CONTACT).any() and pixels_of(frame, OBSTACLE).sum() > 50
    env.set_state([0.5, 0.5], [[0.52, 0.5]], [[0.0, 0.0]])
    frame = env.render()
    assert pixels_of(frame, CONTACT).sum() > 50  # the touching obstacle is marked
    env.close()


def test_hud_has_a_band_that_nothing_else_enters():
    env = NegCollisionEnv(num_obstacles=3, obstacle_speed=0.0, render_mode="rgb_array")
    env.reset(seed=0)
    # The agent against the top wall, obstacles on it and at the top edge under the HUD text.
    top = 1 - env.config.agent_radius
    env.set_state([0.05, top], [[0.06, 0.99], [0.3, 1.0], [0.5, 0.97]], np.zeros((3, 2)))
    frame = env.render()
    band = env.unwrapped._renderer.hud_height
    hud, arena = frame[:band], frame[band:]
    assert pixels_of(hud, HUD_TEXT).sum() > 20  # the text is there
    shades = hud.reshape(-1, 3)
    # Only the band's own colours (text anti-aliasing gives greys between them).
    assert (shades.max(axis=1) == shades.min(axis=1)).all()
    assert (shades[:, 0] >= HUD_BACKGROUND[0]).all()
    for colour in (OBSTACLE, CONTACT, BIRD_BODY):
        assert pixels_of(arena, colour).any() and not pixels_of(hud, colour).any()
    env.close()


def test_roles_differ_in_lightness_and_shape_not_only_in_hue():
    """What a colour-blind viewer relies on: distinct lightness, and black rims on the agent
    and on obstacles in contact (none on a free obstacle)."""

    def grey(colour):
        return 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]

    shades = sorted(grey(c) for c in (OBSTACLE, CONTACT, BIRD_BODY))
    assert min(np.diff(shades)) >= 25
    env = NegCollisionEnv(
        num_obstacles=2, obstacle_speed=0.0, render_mode="rgb_array", obstacle_radius=0.05
    )
    env.reset(seed=0)
    env.set_state([0.5, 0.5], [[0.56, 0.5], [0.15, 0.15]], np.zeros((2, 2)))
    frame = env.render()[env.unwrapped._renderer.hud_height :]
    size = frame.shape[1]

    def black_in(x0: float, x1: float, y0: float, y1: float) -> int:
        rows = slice(round((1 - y1) * size), round((1 - y0) * size))
        return int(pixels_of(frame[rows, round(x0 * size) : round(x1 * size)], BLACK).sum())

    assert black_in(0.08, 0.22, 0.08, 0.22) == 0  # a free obstacle has no rim
    # The touching obstacle's far side, away from the bird and its outline: a black rim.
    assert black_in(0.58, 0.64, 0.42, 0.58) > 20
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


@pytest.mark.parametrize("first_mode", ["rgb_array", "human"])
def test_closing_one_env_leaves_the_others_rendering(first_mode):
    # close() quit pygame's font and display modules for the whole process, so every other
    # env's next render() raised "pygame.error: Library not initialized".
    from neg_envs import rendering

    users = dict(rendering._users)  # renderers other tests left open count too
    first = gym.make("NegCollision-v0", render_mode=first_mode)
    other = gym.make("NegCollision-v0", render_mode="rgb_array", window_size=64)
    first.reset(seed=0)
    other.reset(seed=0)
    first.render()
    reference = other.render()
    first.close()
    first.close()
    np.testing.assert_array_equal(other.render(), reference)
    other.close()
    assert rendering._users == users


@pytest.mark.parametrize("mode", ["rgb_array", "human"])
def test_render_after_pygame_was_quit_elsewhere(mode):
    # gymnasium.utils.play.play(env) ends with pygame.quit() without closing the env, so a
    # second play(env), or any later render, raised "Library not initialized"; and a font kept
    # across pygame.quit() and a new pygame.init() crashes the process (hence a subprocess).
    import subprocess
    import sys
    from pathlib import Path

    script = f"""
import gymnasium as gym, numpy as np, pygame, neg_envs
first = gym.make("NegCollision-v0", render_mode={mode!r})
other = gym.make("NegCollision-v0", render_mode="rgb_array", window_size=128)
first.reset(seed=0)
other.reset(seed=0)
first.render()
frame = other.render()
for restart in (pygame.font.init, pygame.display.init):
    pygame.quit()
    first.render()
    assert np.array_equal(other.render(), frame)
    restart()
    first.render()
    assert np.array_equal(other.render(), frame)
first.close()
other.close()
print("rendered")
"""
    repo = Path(__file__).resolve().parents[2]  # this checkout's neg_envs, not an installed one
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=repo, timeout=120
    )
    assert result.returncode == 0 and "rendered" in result.stdout, result.stderr[-2000:]
