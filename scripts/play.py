"""Play NegCollision yourself: arrow keys or WASD move the bird, space (or no key) stays, Esc quits.

python scripts/play.py --num-obstacles 20
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import pygame

import neg_envs  # registers the ids
from neg_envs.collision_core import STAY
from neg_envs.episodes import play_episodes
from neg_envs.keyboard import action_for_keys
from negdl.checks import check_int
from negdl.cli import run_main


@dataclass
class Args:
    """Play NegCollision with the arrow keys or WASD (space or no key: stay; Esc: quit)."""

    env_id: str = "NegCollision-v0"
    """registered environment id"""
    num_obstacles: int | None = None
    """number of moving obstacles; when not given, the env's own (10 for NegCollision-v0, 300 for
    NegCollisionCrowd-v0, a new count every episode for NegCollisionMix-v0)"""
    seed: int = 0
    """seed of the first episode"""
    episodes: int = 3
    """episodes to play"""
    max_steps: int = 0
    """stop an episode after this many steps (0: the env's own limit)"""

    def __post_init__(self) -> None:
        if self.env_id not in neg_envs.ENV_IDS:
            raise ValueError(
                f"--env-id {self.env_id!r} is not a NegCollision env; use one of {sorted(neg_envs.ENV_IDS)}"
            )
        check_int("--seed", self.seed, 0)
        check_int("--episodes", self.episodes, 1)
        check_int("--max-steps", self.max_steps, 0)
        if self.num_obstacles is not None:
            neg_envs.CollisionConfig(num_obstacles=self.num_obstacles)


def keyboard_player(keys_to_action: dict[tuple[int, ...], int]):
    """The player's policy, reading the window, not the observation: the held keys' action
    (STAY when none is held), None on quit."""
    relevant = sorted({key for keys in keys_to_action for key in keys})

    def chosen_action(obs: object) -> int | None:
        for event in pygame.event.get():
            if event.type == pygame.QUIT or (
                event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE
            ):
                return None
        pressed = pygame.key.get_pressed()
        return action_for_keys([key for key in relevant if pressed[key]], keys_to_action, STAY)

    return chosen_action


def main(args: Args) -> None:
    # Only an explicit --num-obstacles overrides the registered scene's count.
    scene = {} if args.num_obstacles is None else {"num_obstacles": args.num_obstacles}
    env = gym.make(args.env_id, render_mode="human", **scene)
    player = keyboard_player(env.get_wrapper_attr("get_keys_to_action")())
    for k, episode in enumerate(
        play_episodes(env, player, args.episodes, args.seed, args.max_steps)
    ):
        print(
            f"episode {k}: return {episode.total_return:.2f}, "
            f"collisions {episode.collisions}, steps {episode.steps}"
        )
    env.close()


if __name__ == "__main__":
    run_main("play.py", Args, main)
