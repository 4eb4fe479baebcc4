"""Watch a saved agent: a pygame window, or a GIF/MP4 file for machines without a screen.

negdl-watch --model runs/train/neg-reward-dqn-NegCollision-v0-s0/model.zip
negdl-watch --model .../model.zip --output rollout.gif
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

import neg_envs
from neg_agents.algos import get_algo
from neg_agents.cli.options import parse_options, run_main
from neg_agents.common.env_util import check_env_options
from neg_agents.model_io import check_spaces, load_agent, read_config

VIDEO_SUFFIXES = (".gif", ".mp4")


@dataclass
class Args:
    """Roll out a saved agent (or a baseline) on screen or into a GIF/MP4 file."""

    model: str = "runs/train/neg-reward-dqn-NegCollision-v0-s0/model.zip"
    """saved model (.zip); the config.json beside it supplies algo, env id and env options"""
    algo: str | None = None
    """agent name (default: from config.json); the baselines (planner, random, stay) need no model"""
    env_id: str | None = None
    """env id (default: from config.json, else NegCollision-v0)"""
    env_kwargs: tuple[str, ...] = ()
    """env options as name=value (default: from config.json)"""
    output: str | None = None
    """write the rollout to this .gif or .mp4 file instead of opening a window"""
    episodes: int = 1
    """episodes to play"""
    max_steps: int = 0
    """stop an episode after this many steps (0: play it to its end)"""
    seed: int = 0
    """seed of the env (episode k uses seed + k)"""
    deterministic: bool | None = None
    """greedy actions (default: the way the agent is evaluated)"""
    fps: int = 30
    """frames per second of the window or file"""
    device: str = "auto"
    """torch device for the model"""


def resolve(args: Args) -> tuple[str, str, dict]:
    """Algorithm, env id and env options from the arguments, falling back on config.json."""
    baseline = args.algo is not None and not get_algo(args.algo).trainable
    config = None if baseline else read_config(args.model)
    algo = args.algo or (config or {}).get("algo")
    if algo is None:
        raise ValueError(
            f"no config.json beside {args.model}: pass --algo (and --env-id/--env-kwargs if not the defaults)"
        )
    env_id = args.env_id or (config or {}).get("env_id") or "NegCollision-v0"
    env_kwargs = (
        parse_options(args.env_kwargs, "env option")
        if args.env_kwargs
        else (config or {}).get("env_kwargs", {})
    )
    return algo, env_id, env_kwargs


def play(args: Args) -> list[dict[str, float]]:
    """Play the episodes; return each one's return and collisions."""
    if args.episodes < 1 or args.max_steps < 0 or args.fps < 1:
        raise ValueError("episodes and fps must be >= 1 and max_steps >= 0")
    if args.output is not None and Path(args.output).suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"output must end in one of {VIDEO_SUFFIXES}, got {args.output!r}")
    if args.output is not None and Path(args.output).suffix.lower() == ".mp4":
        check_mp4_writer()
    algo, env_id, env_kwargs = resolve(args)
    spec = get_algo(algo)
    check_env_options(env_id, env_kwargs).close()
    env = gym.make(env_id, render_mode="rgb_array" if args.output else "human", **env_kwargs)
    env.metadata["render_fps"] = args.fps
    if spec.negative_actions:
        env = neg_envs.NegativeActionWrapper(env)
    if spec.trainable:
        agent = load_agent(args.model, algo, device=args.device)
        check_spaces(agent, env, args.model)
        agent = agent.policy  # the policy on its own: no epsilon exploration
    else:
        agent = spec.make_baseline(env, args.seed)
    deterministic = spec.deterministic if args.deterministic is None else args.deterministic
    frames: list[np.ndarray] = []
    results = []
    for episode in range(args.episodes):
        obs, _ = env.reset(seed=args.seed + episode)
        total, collisions, steps, done = 0.0, 0, 0, False
        if args.output:
            frames.append(env.render())
        while not done and (args.max_steps == 0 or steps < args.max_steps):
            action, _ = agent.predict(obs, deterministic=deterministic)
            obs, reward, terminated, truncated, info = env.step(action)
            total, collisions, steps, done = (
                total + reward,
                collisions + info["collisions"],
                steps + 1,
                terminated or truncated,
            )
            if args.output:
                frames.append(env.render())
        print(f"episode {episode}: return {total:.2f}, collisions {collisions}, steps {steps}")
        results.append({"return": total, "collisions": collisions, "steps": steps})
    env.close()
    if args.output:
        write_video(frames, args.output, args.fps)
        print(f"wrote {len(frames)} frames to {args.output}")
    return results


def check_mp4_writer() -> None:
    """Fail before the rollout, not after it, when no MP4 encoder is installed."""
    import importlib.util

    if importlib.util.find_spec("imageio") is None or not any(
        importlib.util.find_spec(name) for name in ("imageio_ffmpeg", "av")
    ):
        raise ValueError(
            "writing MP4 needs imageio with ffmpeg: pip install 'negdl[video]'; or write a .gif"
        )


def write_video(frames: list[np.ndarray], path: str, fps: int) -> None:
    """GIF with Pillow (a core dependency); MP4 needs the ``video`` extra."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if path.lower().endswith(".gif"):
        from PIL import Image

        images = [Image.fromarray(frame) for frame in frames]
        images[0].save(
            path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0
        )
        return
    try:
        import imageio.v2 as imageio

        imageio.mimwrite(path, frames, fps=fps)
    except (ImportError, ValueError, RuntimeError) as error:
        raise ValueError(
            f"writing MP4 needs imageio with ffmpeg: pip install 'negdl[video]' ({error}); or write a .gif"
        ) from error


def main(argv: Sequence[str] | None = None) -> None:
    run_main("negdl-watch", Args, play, argv)


if __name__ == "__main__":
    main()
