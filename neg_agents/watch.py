"""Watch an agent (or a baseline) play: a pygame window, or a GIF/MP4 file for machines without a
screen, written frame by frame; the short evaluation videos of training go the same way. The
command is ``negdl-watch`` (``neg_agents/cli/watch.py``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
from stable_baselines3.common.type_aliases import PolicyPredictor

import neg_envs
from neg_agents.algos import AlgoSpec, get_algo
from neg_agents.common.env_util import check_env_options, collision_config
from neg_agents.hyperparams import AGENT_DEVICE
from neg_agents.model_io import load_policy
from neg_agents.video import check_video_capture, check_video_path, open_video
from neg_envs.episodes import Episode, play_episodes
from negdl.checks import check_int
from negdl.cli import check_out_file


@dataclass(frozen=True)
class WatchOptions:
    """How ``watch_agent`` plays: episodes, pacing, where the frames go (``negdl-watch``'s flags).

    :param output: write the rollout to this .gif or .mp4 file (MP4: negdl[video]) instead of
        opening a window.
    :param episodes: episodes to play; episode k uses seed seed + k.
    :param max_steps: stop an episode after this many steps (0: play it to its end).
    :param seed: seed of the env (episode k uses seed + k) and of a random baseline.
    :param deterministic: greedy actions; None: the way the agent is evaluated.
    :param fps: frames per second of the window or file.
    :param size: side of the drawn arena in pixels, 64 to 4096 (None: the env's window_size,
        512); the HUD band adds a little height.
    :param device: torch device for the model: cpu (the default; small MLPs), cuda or auto.
    """

    output: str | None = None
    episodes: int = 1
    max_steps: int = 0
    seed: int = 0
    deterministic: bool | None = None
    fps: int = 30
    size: int | None = None
    device: str = AGENT_DEVICE


def watch_agent(
    algo: str,
    model_path: str | Path | None = None,
    env_id: str = "NegCollision-v0",
    env_kwargs: dict[str, Any] | None = None,
    options: WatchOptions = WatchOptions(),
) -> list[Episode]:
    """Play episodes of ``algo`` on screen, or into ``options.output`` (``.gif``/``.mp4``,
    written frame by frame, so memory stays flat); return them.

    :param algo: the agent name (``neg_agents.ALGOS``); random and stay need no model.
    :param model_path: the saved model of a trained agent.
    :param options: episodes, seed, pacing, output file, size and device (``WatchOptions``).
    """
    check_int("episodes", options.episodes, 1)
    check_int("max_steps", options.max_steps, 0)
    check_int("fps", options.fps, 1, 1000)
    check_int("seed", options.seed, 0)
    env_kwargs = dict(env_kwargs or {})
    if options.size is not None:
        env_kwargs["window_size"] = check_int("size", options.size, 64, 4096)
    if options.output is not None:
        check_out_file("output", options.output)
        check_video_path(options.output)
    spec = get_algo(algo)
    check_env_options(env_id, env_kwargs).close()

    def policy(env: gym.Env) -> PolicyPredictor:
        return load_policy(algo, model_path, env, options.seed, options.device)

    return play_agent(policy, spec, env_id, env_kwargs, options)


def play_agent(
    agent: PolicyPredictor | Callable[[gym.Env], PolicyPredictor],
    spec: AlgoSpec,
    env_id: str,
    env_kwargs: dict[str, Any] | None,
    options: WatchOptions,
) -> list[Episode]:
    """Play ``options.episodes`` episodes of ``agent`` acting as ``spec`` says (as it was
    trained: ``negative_actions``, ``action_masks``, ``deterministic`` unless ``options`` says)
    in ``env_id``, on screen or into ``options.output``; return them.

    :param agent: anything with SB3's ``predict``, or a function of the env that makes one (the
        planner reads the env it acts in).
    """
    output, fps = options.output, options.fps
    # Where the frames go decides the render mode, whatever env_kwargs (e.g. a run's) say.
    render_mode = "rgb_array" if output else "human"
    env = gym.make(env_id, **{**(env_kwargs or {}), "render_mode": render_mode})
    if not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise ValueError(
            f"{spec.name} acts in envs with discrete actions; {env_id} has {env.action_space}"
        )
    if collision_config(env) is None:  # each episode counts the collisions and moves it made
        env.close()
        raise ValueError(
            f"agents are watched on NegCollision envs, whose steps report collisions and moves; "
            f"{env_id} is not one"
        )
    # On the instance: the class's metadata dict is shared by every env.
    env.unwrapped.metadata = {**env.unwrapped.metadata, "render_fps": fps}
    if spec.negative_actions:
        env = neg_envs.NegativeActionWrapper(env)
    try:
        predictor = agent if hasattr(agent, "predict") else agent(env)
        act = spec.actor(predictor, env, options.deterministic)
        play = functools.partial(
            play_episodes, env, act, options.episodes, options.seed, options.max_steps
        )
        if output is None:
            return list(play())
        with closing(open_video(output, fps)) as video:
            # An rgb_array env (made so above) renders each frame as an array.
            return list(play(lambda: video.append(cast(np.ndarray, env.render()))))
    finally:
        env.close()


def record_evaluation_video(
    agent: PolicyPredictor | Callable[[gym.Env], PolicyPredictor],
    spec: AlgoSpec,
    env_id: str,
    env_kwargs: dict[str, Any] | None,
    folder: str | Path,
    name_prefix: str,
    *,
    seed: int = 0,
    max_steps: int = 200,
) -> Path:
    """Play one evaluation episode of ``agent`` (at most ``max_steps`` steps, seeded ``seed``)
    in ``env_id`` with ``env_kwargs`` as :func:`play_agent` does into the MP4 file
    ``<folder>/<name_prefix>-episode-0.mp4``; return it."""
    check_video_capture()
    check_int("max_steps", max_steps, 1)
    path = Path(folder) / f"{name_prefix}-episode-0.mp4"
    play_agent(
        agent, spec, env_id, env_kwargs, WatchOptions(str(path), seed=seed, max_steps=max_steps)
    )
    return path
