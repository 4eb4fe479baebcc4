"""Draw one NegCollision frame as a PNG (the guide's picture): a seeded scene a few steps in,
one obstacle placed against the bird so that every role shows.

    python scripts/render_frame.py                # writes runs/envs/frame.png
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
from PIL import Image

import neg_envs  # noqa: F401  (registers the ids)
from negdl.checks import check_int
from negdl.cli import check_out_file, run_main


@dataclass
class Args:
    """Draw one frame of NegCollision-v0 with a contact, as a PNG."""

    out: str = "runs/envs/frame.png"
    """output PNG (the README's copy is docs/envs/frame.png: scripts/update_docs.py)"""
    seed: int = 0
    """seed of the scene"""
    steps: int = 12
    """steps taken (moving right) before the frame is drawn"""
    window_size: int = 512
    """side of the arena in pixels"""

    def __post_init__(self) -> None:
        check_out_file("--out", self.out)
        check_int("--seed", self.seed, 0)
        check_int("--steps", self.steps, 0, 499)
        check_int("--window-size", self.window_size, 64, 4096)


def main(args: Args) -> None:
    env = gym.make("NegCollision-v0", render_mode="rgb_array", window_size=args.window_size)
    env.reset(seed=args.seed)
    for _ in range(args.steps):
        env.step(3)
    scene = env.unwrapped
    positions = scene.obstacle_positions
    # Put the nearest obstacle just inside contact distance, up and to the right of the bird
    # (to the left once the bird is at the right wall, where that would leave the arena).
    nearest = int(np.argmin(((positions - scene.agent_position) ** 2).sum(axis=1)))
    offset = np.full(2, 0.9 * scene.config.contact_distance / np.sqrt(2))
    beyond = scene.agent_position + offset > 1.0 - scene.config.obstacle_radius
    offset[beyond] = -offset[beyond]
    positions[nearest] = scene.agent_position + offset
    scene.set_state(scene.agent_position, positions, scene.obstacle_velocities)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(env.render()).save(args.out)
    env.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    run_main("render_frame.py", Args, main)
