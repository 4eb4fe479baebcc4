"""negdl-train: train one negative agent and save the model, the exact config, TensorBoard logs,
monitor.csv, evaluations.npz and checkpoints, in a folder of its own.

    negdl-train                                   # negative-reward DQN on NegCollision-v0, ~2 CPU minutes
    negdl-train --algo neg-action-dqn --env-kwargs num_obstacles=30 --vec-env native
    negdl-train --algo maskable-ppo --capture-video   # needs negdl[contrib] and negdl[video]

Each run gets a new folder, ``runs/train/<algo>/<env-id>_<n>`` (rl-zoo3's layout), printed at
the start and the end; nothing is overwritten unless ``--run-name NAME --overwrite`` says so.
Ctrl-C saves the model so far, marked ``"interrupted": true`` (docs/guide/reliability.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated

import torch
import tyro

import neg_envs  # noqa: F401  (registers the env ids)
from neg_agents.algos import get_algo
from neg_agents.common.env_util import check_env_options
from neg_agents.run_dirs import new_run_dir
from neg_agents.training import TrainConfig, train_and_save
from negdl.checks import check_int
from negdl.cli import check_out_dir, run_main
from negdl.interrupt import StopOnSignal


@dataclass
class Args:
    """Train a negative agent (or SB3's DQN) and save it with the config that made it."""

    # negdl-train's defaults where they differ from the library's: a progress bar.
    train: Annotated[TrainConfig, tyro.conf.OmitArgPrefixes] = TrainConfig(progress_bar=True)
    """the run's settings (``neg_agents.TrainConfig``), each its own flag"""
    out_dir: str = "runs/train"
    """runs go to <out_dir>/<algo>/<env_id>_<n>/, n counting up from 1 (model.zip, config.json, monitor.csv, evaluations.npz, tensorboard/)"""
    run_name: str | None = None
    """name the run's folder <out_dir>/<algo>/<run_name>/ instead of numbering it"""
    overwrite: bool = False
    """replace an earlier run of the same --run-name (without it, an existing one is an error)"""
    checkpoint_dir: str | None = None
    """checkpoint folder; when not given, <run dir>/checkpoints"""
    checkpoint_freq: int = 0
    """save a checkpoint every this many env steps (0: none)"""
    torch_threads: int = 1
    """torch CPU threads (0: torch's default); the MLPs are small, extra threads mostly wait on each other"""

    def __post_init__(self) -> None:
        check_int("torch_threads", self.torch_threads, 0)
        check_int("checkpoint_freq", self.checkpoint_freq, 0)


def run(args: Args) -> Path:
    """Train as ``args`` says in a new run folder; return the folder."""
    config = args.train
    check_out_dir("--out-dir", args.out_dir)
    check_out_dir("--tensorboard-dir", config.tensorboard_log)
    check_out_dir("--checkpoint-dir", args.checkpoint_dir)
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    check_env_options(config.env_id, config.env_kwargs).close()  # before making a folder
    run_dir = new_run_dir(args.out_dir, config.algo, config.env_id, args.run_name, args.overwrite)
    print(f"training {config.algo} on {config.env_id}: run folder {run_dir}", flush=True)
    preferred = get_algo(config.algo).vec_env_for(config.env_id, config.env_kwargs)
    config = replace(
        config,
        vec_env=config.vec_env or preferred,
        log_dir=str(run_dir),
        tensorboard_log=config.tensorboard_log or str(run_dir / "tensorboard"),
    )
    extra = {name: value for name, value in asdict(args).items() if name != "train"}
    with StopOnSignal("negdl-train") as stop:
        result = train_and_save(
            config,
            run_dir,
            args.checkpoint_freq,
            args.checkpoint_dir,
            extra,
            lambda: stop.requested,
        )
    saved = f"the run in {run_dir} (model.zip, config.json)"
    if result.interrupted:
        stop.exit(
            f"saved the model after {result.model.num_timesteps:,} of {config.total_timesteps:,} "
            f'steps: {saved} (config.json says "interrupted": true)'
        )
    print(f"saved {saved} after {result.summary()}")
    return run_dir


def main(argv: Sequence[str] | None = None) -> None:
    run_main("negdl-train", Args, run, argv)


if __name__ == "__main__":
    main()
