"""negdl-watch: roll out a saved agent in a pygame window, or into a GIF/MP4 file.

negdl-watch                                   # the latest run of the main job, in a window
negdl-watch --output rollout.gif --size 256   # written frame by frame: memory stays flat
negdl-watch --model runs/train/neg-action-dqn/NegCollision-v0_2 --output rollout.mp4
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from neg_agents.algos import MAIN_ALGO, get_algo
from neg_agents.model_io import resolve_run
from neg_agents.run_dirs import latest_run, model_file
from neg_agents.watch import WatchOptions, watch_agent
from neg_envs.episodes import Episode
from negdl.cli import parse_options, run_main
from negdl.devices import resolve_device


@dataclass
class Args:
    """Roll out a saved agent (or a baseline) on screen or into a GIF/MP4 file."""

    model: str | None = None
    """saved model (.zip) or run folder; when not given, the latest run of --algo on --env-id (else of the main job, neg-reward-dqn-shielded on NegCollision-v0) under --runs-dir. The config.json beside it supplies algo, env id and env options"""
    runs_dir: str = "runs/train"
    """where negdl-train put its runs, searched when --model is not given"""
    algo: str | None = None
    """agent name, read from config.json when not given; the baselines (planner, random, stay) need no model"""
    env_id: str | None = None
    """env id, read from config.json when not given (else NegCollision-v0)"""
    env_kwargs: tuple[str, ...] = ()
    """env options as name=value, on top of those in config.json"""
    watch: Annotated[WatchOptions, tyro.conf.OmitArgPrefixes] = WatchOptions()
    """how to play (``neg_agents.watch.WatchOptions``), each its own flag"""


def find_model(args: Args) -> Path | None:
    """The model to watch: ``--model`` (a file or a run folder), nothing for a baseline, else the
    latest run of ``--algo`` on ``--env-id`` (the main job's by default) under ``--runs-dir``."""
    if args.model is not None:
        return model_file(args.model)
    if args.algo is not None and not get_algo(args.algo).trainable:
        return None
    algo, env_id = args.algo or MAIN_ALGO, args.env_id or "NegCollision-v0"
    run = latest_run(args.runs_dir, algo, env_id)
    if run is None:
        raise FileNotFoundError(
            f"no finished run of {algo} on {env_id} under {args.runs_dir}; train one first "
            f"(negdl-train --algo {algo} --env-id {env_id}) or pass --model"
        )
    print(f"watching the latest run: {run}")
    return run / "model.zip"


def run(args: Args) -> list[Episode]:
    """Play the episodes and print what each one cost."""
    resolve_device(args.watch.device)
    model = find_model(args)
    algo, env_id, env_kwargs = resolve_run(
        model, args.algo, args.env_id, parse_options(args.env_kwargs, "env option")
    )
    episodes = watch_agent(algo, model, env_id, env_kwargs, args.watch)
    for k, episode in enumerate(episodes):
        print(
            f"episode {k}: return {episode.total_return:.2f}, "
            f"collisions {episode.collisions}, steps {episode.steps}"
        )
    if args.watch.output:
        frames = sum(episode.steps + 1 for episode in episodes)
        print(f"wrote {frames} frames to {args.watch.output}")
    return episodes


def main(argv: Sequence[str] | None = None) -> None:
    run_main("negdl-watch", Args, run, argv)


if __name__ == "__main__":
    main()
