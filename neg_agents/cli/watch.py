"""negdl-watch: roll out a saved agent in a pygame window, or into a GIF/MP4 file.

negdl-watch --model runs/train/neg-reward-dqn-NegCollision-v0-s0/model.zip
negdl-watch --model .../model.zip --output rollout.gif
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from neg_agents.model_io import resolve_run
from neg_agents.watch import watch_agent
from neg_envs.episodes import Episode
from negdl.cli import parse_options, run_main
from negdl.devices import resolve_device


@dataclass
class Args:
    """Roll out a saved agent (or a baseline) on screen or into a GIF/MP4 file."""

    model: str = "runs/train/neg-reward-dqn-NegCollision-v0-s0/model.zip"
    """saved model (.zip); the config.json beside it supplies algo, env id and env options"""
    algo: str | None = None
    """agent name, read from config.json when not given; random and stay need no model"""
    env_id: str | None = None
    """env id, read from config.json when not given (else NegCollision-v0)"""
    env_kwargs: tuple[str, ...] = ()
    """env options as name=value, read from config.json when not given"""
    output: str | None = None
    """write the rollout to this .gif or .mp4 file instead of opening a window"""
    episodes: int = 1
    """episodes to play"""
    max_steps: int = 0
    """stop an episode after this many steps (0: play it to its end)"""
    seed: int = 0
    """seed of the env (episode k uses seed + k)"""
    deterministic: bool | None = None
    """greedy actions; when not given, the way the agent is evaluated"""
    fps: int = 30
    """frames per second of the window or file"""
    device: str = "auto"
    """torch device for the model"""


def run(args: Args) -> list[Episode]:
    """Play the episodes and print what each one cost."""
    resolve_device(args.device)
    algo, env_id, env_kwargs = resolve_run(
        args.model, args.algo, args.env_id, parse_options(args.env_kwargs, "env option")
    )
    episodes = watch_agent(
        algo,
        args.model,
        env_id,
        env_kwargs,
        episodes=args.episodes,
        seed=args.seed,
        max_steps=args.max_steps,
        deterministic=args.deterministic,
        fps=args.fps,
        output=args.output,
        device=args.device,
    )
    for k, episode in enumerate(episodes):
        print(
            f"episode {k}: return {episode.total_return:.2f}, "
            f"collisions {episode.collisions}, steps {episode.steps}"
        )
    if args.output:
        frames = sum(episode.steps + 1 for episode in episodes)
        print(f"wrote {frames} frames to {args.output}")
    return episodes


def main(argv: Sequence[str] | None = None) -> None:
    run_main("negdl-watch", Args, run, argv)


if __name__ == "__main__":
    main()
