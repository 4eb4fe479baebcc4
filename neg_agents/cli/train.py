"""negdl-train: train one negative agent and save the model, the exact config, TensorBoard logs,
monitor.csv, evaluations.npz and checkpoints, in a folder of its own.

    negdl-train                                   # negative-reward DQN on NegCollision-v0, ~2 CPU minutes
    negdl-train --algo neg-action-dqn --env-kwargs num_obstacles=30 --vec-env native
    negdl-train --algo maskable-ppo --capture-video   # needs negdl[contrib] and negdl[video]

Each run gets a new folder, ``runs/train/<algo>/<env-id>_<n>`` (rl-zoo3's layout), printed at
the start and the end; nothing is overwritten unless ``--run-name NAME --overwrite`` says so.
Ctrl-C (or SIGTERM) stops training at the next step and saves the model so far with its
config.json, marked ``"interrupted": true``; the command then exits with status 130 (143). A
second Ctrl-C aborts at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

import neg_envs  # noqa: F401  (registers the env ids)
from neg_agents.algos import ALGOS, get_algo
from neg_agents.common.env_util import check_env_options, preferred_vec_env
from neg_agents.hyperparams import AGENT_DEVICE, N_ENVS, N_TIMESTEPS
from neg_agents.run_dirs import new_run_dir
from neg_agents.training import TrainConfig, train_and_save
from negdl.cli import check_out_dir, parse_options, run_main
from negdl.interrupt import StopOnSignal


@dataclass
class Args:
    """Train a negative agent (or SB3's DQN) and save it with the config that made it."""

    algo: str = "neg-reward-dqn"
    """agent to train: neg-reward-dqn, neg-action-dqn, maskable-ppo (negdl[contrib]), dqn-negative-actions or dqn"""
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
    vec_env: str | None = None
    """how to step the envs: dummy (in process), subproc (one process each) or native (batched NegCollisionVectorEnv); when not given, native where the env has it and the agent acts on it directly, else dummy"""
    hyperparams: tuple[str, ...] = ()
    """overrides of the default hyperparameters as name=value, e.g. learning_rate=5e-4 gamma=0.9"""
    out_dir: str = "runs/train"
    """runs go to <out_dir>/<algo>/<env_id>_<n>/, n counting up from 1 (model.zip, config.json, monitor.csv, evaluations.npz, tensorboard/)"""
    run_name: str | None = None
    """name the run's folder <out_dir>/<algo>/<run_name>/ instead of numbering it"""
    overwrite: bool = False
    """replace an earlier run of the same --run-name (without it, an existing one is an error)"""
    tensorboard_dir: str | None = None
    """TensorBoard folder; when not given, <run dir>/tensorboard"""
    checkpoint_dir: str | None = None
    """checkpoint folder; when not given, <run dir>/checkpoints"""
    checkpoint_freq: int = 0
    """save a checkpoint every this many env steps (0: none)"""
    eval_freq: int = 10_000
    """evaluate every this many env steps, logged as eval/* (0: none)"""
    eval_episodes: int = 10
    """episodes per evaluation"""
    capture_video: bool = False
    """record short evaluation videos into <run dir>/videos/ with Gymnasium's RecordVideo (needs negdl[video])"""
    video_freq: int = 50_000
    """env steps between videos with --capture-video (0: only one, at the end); one is always recorded at the end"""
    video_length: int = 200
    """steps per video"""
    progress_bar: bool = True
    """show a progress bar"""
    device: str = AGENT_DEVICE
    """torch device: cpu (the default: the agents' MLPs are too small for a GPU to pay off, CUDA ran at 0.8x the CPU's env steps/s on an H100 machine), cuda, or auto (CUDA when available)"""
    torch_threads: int = 1
    """torch CPU threads (0: torch's default); the MLPs are small, extra threads mostly wait on each other"""
    verbose: int = 0
    """SB3 verbosity (1 prints training stats)"""


def run(args: Args) -> Path:
    """Train as ``args`` says in a new run folder; return the folder."""
    spec = get_algo(args.algo)
    if not spec.trainable:
        trainable = [name for name, other in ALGOS.items() if other.trainable]
        raise ValueError(
            f"{args.algo} is a baseline that learns nothing; train one of: {', '.join(trainable)}"
        )
    if args.torch_threads < 0:
        raise ValueError(f"torch_threads must be >= 0, got {args.torch_threads}")
    for name in ("out_dir", "tensorboard_dir", "checkpoint_dir"):
        check_out_dir(f"--{name.replace('_', '-')}", getattr(args, name))
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    spec = get_algo(args.algo)
    env_kwargs = parse_options(args.env_kwargs, "env option")
    config = TrainConfig(
        algo=args.algo,
        env_id=args.env_id,
        env_kwargs=env_kwargs,
        total_timesteps=args.total_timesteps,
        seed=args.seed,
        n_envs=args.n_envs,
        vec_env=args.vec_env
        or preferred_vec_env(args.env_id, spec.negative_actions, spec.action_masks, env_kwargs),
        hyperparams=parse_options(args.hyperparams, "hyperparameter"),
        eval_freq=args.eval_freq,
        eval_episodes=args.eval_episodes,
        progress_bar=args.progress_bar,
        device=args.device,
        verbose=args.verbose,
        capture_video=args.capture_video,
        video_freq=args.video_freq,
        video_length=args.video_length,
    )
    check_env_options(config.env_id, config.env_kwargs).close()  # before making a folder
    run_dir = new_run_dir(args.out_dir, args.algo, args.env_id, args.run_name, args.overwrite)
    print(f"training {args.algo} on {args.env_id}: run folder {run_dir}", flush=True)
    config = replace(
        config,
        log_dir=str(run_dir),
        tensorboard_log=args.tensorboard_dir or str(run_dir / "tensorboard"),
    )
    with StopOnSignal("negdl-train") as stop:
        result = train_and_save(
            config,
            run_dir,
            args.checkpoint_freq,
            args.checkpoint_dir,
            extra=asdict(args),
            should_stop=lambda: stop.requested,
        )
    saved = f"the run in {run_dir} (model.zip, config.json)"
    if result.interrupted:
        stop.exit(
            f"saved the model after {result.model.num_timesteps:,} of {args.total_timesteps:,} "
            f'steps: {saved} (config.json says "interrupted": true)'
        )
    print(f"saved {saved} after {result.summary()}")
    return run_dir


def main(argv: Sequence[str] | None = None) -> None:
    run_main("negdl-train", Args, run, argv)


if __name__ == "__main__":
    main()
