"""Does an update schedule learn what another learns? The main job trained on each schedule over
the same seeds, its speed, and its results on the same validation episodes.

    python scripts/schedule_check.py        # negdl 0.1's schedule, two gradient steps, the defaults
    python scripts/schedule_check.py --env-id NegCollisionMix-v0 --total-timesteps 500000

A schedule is a list of hyperparameter overrides (``name=value``, SB3's DQN names; ``n_envs=N``
sets the parallel envs), ``""`` being the defaults of ``neg_agents.hyperparams``. Each run is
evaluated on the same ``--episodes`` validation episodes (reset seeds from ``--episode-seed``,
500,000: neither the bench's test episodes, from 1,000,000, nor any run's training or learning
curve episodes), which is where a schedule may be chosen. Writes a markdown table (one row per
schedule and seed, then the mean per schedule) to ``--out``, rewritten after every run.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from statistics import fmean

import torch

import neg_envs  # noqa: F401  (registers the ids)
from neg_agents.algos import MAIN_ALGO, get_algo
from neg_agents.hyperparams import N_ENVS, N_TIMESTEPS
from neg_agents.training import TrainConfig, train_agent
from negdl.checks import check_int
from negdl.cli import check_out_file, parse_options, run_main
from negdl.results import machine_description, mean_std, write_text_atomic

#: Parallel envs of the validation evaluation (the episodes are split evenly over them).
EVAL_ENVS = 20


@dataclass
class Args:
    """Train the main job on several update schedules and compare them on validation episodes."""

    schedules: tuple[str, ...] = (
        "n_envs=16 batch_size=256 gradient_steps=1",
        "gradient_steps=2",
        "",
    )
    """update schedules, each a space-separated list of name=value overrides ("": the defaults)"""
    algo: str = MAIN_ALGO
    """agent to train"""
    env_id: str = "NegCollision-v0"
    """scene to train on and validate on (NegCollisionMix-v0: the generalist)"""
    seeds: tuple[int, ...] = (0, 1, 2)
    """training seeds, the same for every schedule"""
    total_timesteps: int = N_TIMESTEPS
    """env steps per run"""
    episodes: int = 200
    """validation episodes per run"""
    episode_seed: int = 500_000
    """reset seed of the first validation episode"""
    threads: int = 1
    """torch CPU threads (0: torch's default)"""
    out: str = "runs/agents/schedule_check.md"
    """markdown report (docs/agents/schedule_check.md is scripts/update_docs.py's copy)"""

    def __post_init__(self) -> None:
        if not self.schedules or not self.seeds:
            raise ValueError("--schedules and --seeds each need at least one value")
        for seed in self.seeds:
            check_int("--seeds", seed, 0, 2**32 - 1)
        check_int("--total-timesteps", self.total_timesteps, 1)
        for schedule in self.schedules:  # a bad name or value fails now, not after hours
            train_config(self, schedule, self.seeds[0])
        check_int("--episodes", self.episodes, 1)
        check_int("--episode-seed", self.episode_seed, 0, 2**32 - 1)
        check_int("--threads", self.threads, 0)
        check_out_file("--out", self.out)


def train_config(args: Args, schedule: str, seed: int) -> TrainConfig:
    """The run of ``schedule`` with ``seed`` (constructing it checks the schedule's values)."""
    hyperparams = parse_options(schedule.split(), "schedule item")
    n_envs = hyperparams.pop("n_envs", N_ENVS)
    return TrainConfig(
        algo=args.algo,
        env_id=args.env_id,
        seed=seed,
        total_timesteps=args.total_timesteps,
        n_envs=n_envs,
        hyperparams=hyperparams,
        eval_freq=0,
    )


def run_one(args: Args, schedule: str, seed: int) -> dict[str, float]:
    """Train on ``schedule`` with ``seed``; its speed and validation results."""
    result = train_agent(train_config(args, schedule, seed))
    result.model.get_env().close()
    spec = get_algo(args.algo)
    env = spec.make_env(args.env_id, min(EVAL_ENVS, args.episodes), args.episode_seed)
    # The policy, as the bench evaluates it: the agent's own rule, without its training
    # exploration (a model's predict explores with its final epsilon unless deterministic).
    stats = spec.evaluate(result.model.policy, env, args.episodes).summary()
    env.close()
    return {"steps_per_s": result.steps_per_s, "train_s": result.train_time_s, **stats}


def report(args: Args, rows: list[tuple[str, int, dict[str, float]]], minutes: float) -> str:
    """The markdown report: settings, then one row per run and the mean per schedule."""
    lines = [
        f"Machine: {machine_description(torch.device('cpu'))}; runs one at a time, "
        f"{minutes:.1f} min in all, load average {os.getloadavg()[0]:.1f} at the end (other "
        f"processes slow env steps/s, not the results). {args.algo} on {args.env_id}, {args.total_timesteps:,} env steps "
        f"per run; each run evaluated on the same {args.episodes} validation episodes (reset "
        f"seeds from {args.episode_seed:,}); return ± 95% confidence half-width over episodes.",
        "",
        "| schedule | seed | env steps/s | training s | return | collisions / episode | moves / episode |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for schedule, seed, row in rows:
        lines.append(
            f"| {schedule or 'defaults'} | {seed} | {row['steps_per_s']:,.0f} | "
            f"{row['train_s']:.1f} | {row['return']:.3f} ± {row['return_ci95']:.3f} | "
            f"{row['collisions_per_episode']:.3f} | {row['moves_per_episode']:.1f} |"
        )
    lines += [
        "",
        "| schedule | seeds | env steps/s | return (mean ± std over seeds) | collisions / episode |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for schedule in args.schedules:
        done = [row for name, _, row in rows if name == schedule]
        if done:
            lines.append(
                f"| {schedule or 'defaults'} | {len(done)} | "
                f"{fmean(row['steps_per_s'] for row in done):,.0f} | "
                f"{mean_std([row['return'] for row in done], 3)} | "
                f"{fmean(row['collisions_per_episode'] for row in done):.3f} |"
            )
    return "\n".join(lines) + "\n"


def main(args: Args) -> None:
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows: list[tuple[str, int, dict[str, float]]] = []
    for seed in args.seeds:
        for schedule in args.schedules:
            rows.append((schedule, seed, run_one(args, schedule, seed)))
            text = report(args, rows, (time.perf_counter() - start) / 60)
            write_text_atomic(args.out, text)
            print(f"{schedule or 'defaults'}, seed {seed}: done", flush=True)
    print(text, end="")


if __name__ == "__main__":
    run_main("schedule_check.py", Args, main)
