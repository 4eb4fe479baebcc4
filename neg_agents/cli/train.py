"""Train one negative agent and save the model, the exact config, TensorBoard logs and checkpoints.

negdl-train                                   # negative-reward DQN on NegCollision-v0, ~2 CPU minutes
negdl-train --algo neg-action-dqn --env-kwargs num_obstacles=30 --vec-env native
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import stable_baselines3
import torch
from stable_baselines3.common.callbacks import CheckpointCallback

import neg_envs  # noqa: F401  (registers the env ids)
from neg_agents.algos import ALGOS
from neg_agents.cli.options import parse_options, run_main
from neg_agents.hyperparams import N_ENVS, N_TIMESTEPS
from neg_agents.model_io import save_run
from neg_agents.training import train_agent


@dataclass
class Args:
    """Train a negative agent (or SB3's DQN) and save it with the config that made it."""

    algo: str = "neg-reward-dqn"
    """agent to train: neg-reward-dqn, neg-action-dqn, dqn-negative-actions or dqn"""
    env_id: str = "NegCollision-v0"
    """registered Gymnasium env id"""
    env_kwargs: tuple[str, ...] = ()
    """env options as name=value, e.g. num_obstacles=30 obstacle_speed=0.02"""
    total_timesteps: int = N_TIMESTEPS
    """env steps to train for, summed over the parallel envs"""
    seed: int = 0
    """seed of the model and the envs (env i gets seed + i)"""
    n_envs: int = N_ENVS
    """parallel training envs"""
    vec_env: str = "dummy"
    """how to step the envs: dummy (in process), subproc (one process each) or native (batched NegCollisionVectorEnv)"""
    hyperparams: tuple[str, ...] = ()
    """overrides of the default hyperparameters as name=value, e.g. learning_rate=5e-4 gamma=0.9"""
    out_dir: str = "runs/train"
    """the run goes to <out_dir>/<algo>-<env_id>-s<seed>/ (model.zip, config.json)"""
    tensorboard_dir: str | None = None
    """TensorBoard folder (default: <run dir>/tensorboard)"""
    checkpoint_dir: str | None = None
    """checkpoint folder (default: <run dir>/checkpoints)"""
    checkpoint_freq: int = 0
    """save a checkpoint every this many env steps (0: none)"""
    eval_freq: int = 10_000
    """evaluate every this many env steps, logged as eval/* (0: none)"""
    eval_episodes: int = 10
    """episodes per evaluation"""
    progress_bar: bool = True
    """show a progress bar"""
    device: str = "auto"
    """torch device: auto (CUDA when available), cpu or cuda"""
    torch_threads: int = 1
    """torch CPU threads (0: torch's default); the MLPs are small, extra threads mostly wait on each other"""
    verbose: int = 0
    """SB3 verbosity (1 prints training stats)"""


def run(args: Args) -> Path:
    """Train as ``args`` says; return the run folder."""
    if args.algo not in ALGOS or not ALGOS[args.algo].trainable:
        trainable = [name for name, spec in ALGOS.items() if spec.trainable]
        raise ValueError(
            f"unknown or untrainable algorithm {args.algo!r}; choose one of: {', '.join(trainable)}"
        )
    if args.checkpoint_freq < 0:
        raise ValueError(
            f"checkpoint_freq must be >= 0 (0: no checkpoints), got {args.checkpoint_freq}"
        )
    if args.n_envs < 1 or args.torch_threads < 0:
        raise ValueError(
            f"n_envs must be >= 1 and torch_threads >= 0, got {args.n_envs} and {args.torch_threads}"
        )
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    env_kwargs = parse_options(args.env_kwargs, "env option")
    hyperparams = parse_options(args.hyperparams, "hyperparameter")
    run_dir = Path(args.out_dir) / f"{args.algo}-{args.env_id}-s{args.seed}"
    callbacks = []
    if args.checkpoint_freq:
        callbacks.append(
            CheckpointCallback(
                save_freq=max(args.checkpoint_freq // args.n_envs, 1),
                save_path=args.checkpoint_dir or str(run_dir / "checkpoints"),
                name_prefix=args.algo,
            )
        )
    result = train_agent(
        args.algo,
        args.env_id,
        env_kwargs,
        args.total_timesteps,
        args.seed,
        args.n_envs,
        args.vec_env,
        hyperparams,
        tensorboard_log=args.tensorboard_dir or str(run_dir / "tensorboard"),
        eval_freq=args.eval_freq,
        eval_episodes=args.eval_episodes,
        callbacks=callbacks,
        progress_bar=args.progress_bar,
        device=args.device,
        verbose=args.verbose,
    )
    config = {
        **asdict(args),
        "env_kwargs": env_kwargs,
        "hyperparams": result.hyperparams,
        "negative_actions": ALGOS[args.algo].negative_actions,
        "wall_time_s": round(result.wall_time_s, 2),
        "train_time_s": round(result.train_time_s, 2),
        "env_steps_per_s": round(result.steps_per_s, 1),
        "final_eval": result.history[-1] if result.history else None,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "stable_baselines3": stable_baselines3.__version__,
        },
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    path = save_run(result.model, config, run_dir)
    result.model.get_env().close()
    summary = (
        f"saved {path} and {run_dir / 'config.json'} after {result.wall_time_s:.0f} s "
        f"({result.train_time_s:.0f} s training, the rest evaluating; {result.steps_per_s:.0f} env steps/s)"
    )
    if result.history:
        last = result.history[-1]
        summary += f"; last eval: return {last['return']:.2f}, collisions/episode {last['collisions_per_episode']:.2f}"
    print(summary)
    return run_dir


def main(argv: Sequence[str] | None = None) -> None:
    run_main("negdl-train", Args, run, argv)


if __name__ == "__main__":
    main()
