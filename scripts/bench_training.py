"""Training speed: env steps per second of training for the DQN agents, side by side with today's
path, and the env and the policy's forward alone as upper bounds.

    python scripts/bench_training.py                 # table printed and in runs/agents/training_speed.md
    python scripts/bench_training.py --device cuda --threads 4
    python scripts/bench_training.py --agent-n-envs 32 --hyperparams batch_size=512   # + a schedule

Today's path, the baseline of the speed-up columns, is what ``negdl-train --algo dqn`` ran in
negdl 0.1: SB3's ``DQN`` with ``reference_extractor`` on negdl 0.1's schedule. Rates leave out
building the model and the exploration decay (the policy acts on 95 % of the steps after it).
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

import neg_envs  # registers the ids
from neg_agents.algos import MAIN_ALGO
from neg_agents.common.env_util import make_env
from neg_agents.common.extractors import collision_extractor_kwargs
from neg_agents.common.reference_extractor import ReferenceObstacleSetExtractor
from neg_agents.hyperparams import EXTRACTOR_KWARGS, N_ENVS, hyperparams_for
from neg_agents.training import TrainConfig, train_agent
from negdl.checks import check_int, check_number
from negdl.cli import check_out_file, parse_options, run_main
from negdl.devices import resolve_device
from negdl.results import cpu_description, machine_description, write_text_atomic

ENV_ID = "NegCollision-v0"
#: The row every speed-up is measured against.
TODAY = "today's path (SB3 DQN, negdl 0.1 extractor and schedule)"
#: negdl 0.1's update schedule: its parallel envs and the hyperparameters that differ from today's.
TODAY_N_ENVS, TODAY_HYPERPARAMS = 16, {"batch_size": 256, "gradient_steps": 1}


class Rate(NamedTuple):
    """A rate per wall-clock second and per second of this process's CPU time."""

    wall: float
    cpu: float


@dataclass
class Args:
    """Env steps per second of training: today's path, SB3's DQN and the negdl agents, with upper bounds."""

    total_timesteps: int = 25_000
    """env steps each training row trains for per repetition (the rate is over the steps after the exploration decay, the last 80 %)"""
    repeats: int = 3
    """repetitions; rows are interleaved within each and the table shows the median"""
    seed: int = 0
    """seed of the models and envs"""
    n_envs: int = N_ENVS
    """parallel envs (the natively batched env), as negdl-train's --n-envs"""
    device: str = "cpu"
    """torch device of the models: cpu, cuda or auto (the envs always run on the CPU)"""
    threads: int = 1
    """torch CPU threads (0: torch's default)"""
    hyperparams: tuple[str, ...] = ()
    """an update schedule to measure as well, as name=value (e.g. batch_size=512): adds a neg-reward-dqn row trained with these overrides"""
    agent_n_envs: int | None = None
    """parallel envs of the schedule row (when not given, --n-envs)"""
    bound_seconds: float = 1.0
    """time spent on each upper bound per repetition"""
    out: str = "runs/agents/training_speed.md"
    """also write the markdown report to this file (the README's copy is docs/agents/training_speed.md: scripts/update_docs.py)"""

    def __post_init__(self) -> None:
        check_int("--total-timesteps", self.total_timesteps, 1)
        check_int("--repeats", self.repeats, 1)
        check_int("--seed", self.seed, 0, 2**32 - 1)
        check_int("--n-envs", self.n_envs, 1)
        check_int("--threads", self.threads, 0)
        if self.agent_n_envs is not None:
            check_int("--agent-n-envs", self.agent_n_envs, 1)
        check_number("--bound-seconds", self.bound_seconds, 0, 3600, low_open=True)
        resolve_device(self.device)
        parse_options(self.hyperparams, "hyperparameter")
        check_out_file("--out", self.out)


class SteadyTimer(BaseCallback):
    """Clocks training (wall and CPU time) from the first vector step at or after ``start_at``
    env steps to its end."""

    def __init__(self, start_at: int) -> None:
        super().__init__()
        self.start_at = start_at
        self.start: tuple[float, float, int] | None = None
        self.end: tuple[float, float, int] | None = None

    def _on_step(self) -> bool:
        if self.start is None and self.num_timesteps >= self.start_at:
            self.start = (time.perf_counter(), time.process_time(), self.num_timesteps)
        return True

    def _on_training_end(self) -> None:
        self.end = (time.perf_counter(), time.process_time(), self.num_timesteps)

    def rates(self) -> Rate:
        """Env steps per wall and per CPU second from start to end (nan if it never started)."""
        if self.start is None or self.end is None or self.end[2] <= self.start[2]:
            return Rate(float("nan"), float("nan"))
        steps = self.end[2] - self.start[2]
        return Rate(steps / (self.end[0] - self.start[0]), steps / (self.end[1] - self.start[1]))


def reference_policy_kwargs() -> dict[str, Any]:
    """negdl 0.1's policy arguments on the default scene, with the frozen extractor."""
    return {
        **hyperparams_for("dqn")["policy_kwargs"],
        "features_extractor_class": ReferenceObstacleSetExtractor,
        "features_extractor_kwargs": collision_extractor_kwargs(
            neg_envs.CollisionConfig(), **EXTRACTOR_KWARGS
        ),
    }


def training_rows(args: Args) -> dict[str, TrainConfig]:
    """Every training row's settings, by name: the defaults, then the schedule rows when
    ``--agent-n-envs`` or ``--hyperparams`` ask for one."""
    common = {
        "total_timesteps": args.total_timesteps,
        "seed": args.seed,
        "n_envs": args.n_envs,
        "vec_env": "native",
        "eval_freq": 0,
        "device": args.device,
    }
    rows = {
        TODAY: TrainConfig(
            "dqn",
            hyperparams={**TODAY_HYPERPARAMS, "policy_kwargs": reference_policy_kwargs()},
            **{**common, "n_envs": TODAY_N_ENVS},
        ),
        "dqn (SB3 DQN, current extractor)": TrainConfig("dqn", **common),
        "neg-reward-dqn": TrainConfig("neg-reward-dqn", **common),
        f"{MAIN_ALGO} (the main job)": TrainConfig(MAIN_ALGO, **common),
        "neg-action-dqn": TrainConfig("neg-action-dqn", **common),
    }
    agent_n_envs = args.agent_n_envs or args.n_envs
    schedule = list(args.hyperparams)
    if agent_n_envs != args.n_envs:
        schedule.insert(0, f"n_envs={agent_n_envs}")
    if schedule:
        overrides = parse_options(args.hyperparams, "hyperparameter")
        rows[f"neg-reward-dqn ({' '.join(schedule)})"] = TrainConfig(
            "neg-reward-dqn", hyperparams=overrides, **{**common, "n_envs": agent_n_envs}
        )
    return rows


def train_rate(config: TrainConfig) -> tuple[Rate, Any]:
    """Env steps per second of training after the exploration decay, and the trained model."""
    params = {**hyperparams_for(config.algo), **config.hyperparams}
    decayed = int(params["exploration_fraction"] * config.total_timesteps)
    timer = SteadyTimer(max(decayed, params["learning_starts"]))
    result = train_agent(config, callbacks=[timer])
    result.model.get_env().close()
    return timer.rates(), result.model


def env_steps_per_second(call: Callable[[], Any], env_steps: float, seconds: float) -> Rate:
    """How often ``call`` runs per wall and per CPU second, over about ``seconds`` (after one
    warm-up call), times the ``env_steps`` one call serves."""
    call()
    calls, start, cpu = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - start) < seconds:
        call()
        calls += 1
    return Rate(calls / elapsed * env_steps, calls / (time.process_time() - cpu) * env_steps)


def env_rate(args: Args) -> Rate:
    """Env steps per second of the training vec env alone, under uniformly random actions."""
    env = make_env(ENV_ID, args.n_envs, args.seed, vec_env="native")
    env.reset()
    actions = np.random.default_rng(args.seed).integers(4, size=(64, args.n_envs))
    batches = itertools.cycle(actions)
    rate = env_steps_per_second(lambda: env.step(next(batches)), args.n_envs, args.bound_seconds)
    env.close()
    return rate


def bound_rates(model: Any, args: Args) -> dict[str, Rate]:
    """Env steps per second if training did only the policy's forward at the acting batch
    (``n_envs``), at the training batch, or only its gradient steps (``model`` is trained, with
    a filled replay buffer)."""
    space, buffer, n_envs = model.observation_space, model.replay_buffer, model.n_envs
    rng = np.random.default_rng(args.seed)
    size = model.batch_size
    rows = rng.integers(0, buffer.buffer_size if buffer.full else buffer.pos, size=size)
    observations = buffer.observations[rows, rng.integers(0, buffer.n_envs, size=size)]
    acting = torch.as_tensor(observations[:n_envs].reshape(-1, *space.shape), device=model.device)
    training = torch.as_tensor(observations.reshape(-1, *space.shape), device=model.device)

    def rate(call: Callable[[], Any], env_steps: float) -> Rate:
        """``env_steps_per_second`` of ``call``, CUDA synchronised."""

        def synced() -> None:
            call()
            if model.device.type == "cuda":
                torch.cuda.synchronize()

        return env_steps_per_second(synced, env_steps, args.bound_seconds)

    @torch.no_grad()
    def forward(obs: torch.Tensor) -> None:
        model.q_net(obs)

    # Env steps served by one call: a vector step per acting forward, train_freq vector steps
    # per gradient_steps updates.
    per_update = n_envs * model.train_freq.frequency / model.gradient_steps
    return {
        f"policy forward, batch {n_envs} (acting)": rate(lambda: forward(acting), n_envs),
        f"policy forward, batch {size} (training)": rate(lambda: forward(training), per_update),
        f"gradient step alone, batch {size}": rate(lambda: model.train(1, size), per_update),
    }


def medians(rates: list[Rate]) -> list[float]:
    """The median wall-clock and CPU-second rate of ``rates``."""
    return [statistics.median(values) for values in zip(*rates, strict=True)]


def rate_cells(rates: list[Rate]) -> str:
    """The wall-clock and CPU-second columns of ``rates``: each median, its range in brackets."""
    return " | ".join(
        f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"
        for values in zip(*rates, strict=True)
    )


def report(
    args: Args,
    rates: dict[str, list[Rate]],
    bounds: dict[str, list[Rate]],
    minutes: float,
    load: tuple[float, float],
) -> str:
    """The markdown report: settings, machine, the training table and the upper bounds."""
    device = resolve_device(args.device)
    today = medians(rates[TODAY])
    lines = [
        f"Machine: {machine_description(device)}"
        f"{'' if device.type == 'cpu' else f'; envs on {cpu_description()}'}. "
        f"{args.repeats} interleaved repetitions, medians (range in brackets); "
        f"{args.total_timesteps:,} env steps per training row and repetition on negdl-train's "
        f"defaults, {args.n_envs} natively batched envs (today's path: "
        f"{TODAY_N_ENVS}, its schedule then), "
        f"{args.threads or torch.get_num_threads()} torch thread(s), device {device.type}; "
        f"{minutes:.1f} min in all; load average {load[0]:.1f} at the start, {load[1]:.1f} at "
        "the end. Per CPU second: env steps over this process's CPU time, which other processes "
        "on a loaded machine disturb much less than the wall clock (CUDA runs: read the wall "
        "clock).",
        "",
        "| training | env steps/s | per CPU second | x today's path (wall) | x today's path (CPU) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, values in rates.items():
        wall, cpu = (median / base for median, base in zip(medians(values), today, strict=True))
        lines.append(f"| {name} | {rate_cells(values)} | {wall:.2f}x | {cpu:.2f}x |")
    lines += [
        "",
        "Upper bounds (env steps/s if training did only this):",
        "",
        "| alone | env steps/s | per CPU second |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {name} | {rate_cells(values)} |" for name, values in bounds.items()]
    return "\n".join(lines) + "\n"


def main(args: Args) -> None:
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    start, load_start = time.perf_counter(), os.getloadavg()[0]
    rows = training_rows(args)
    rates: dict[str, list[Rate]] = {name: [] for name in rows}
    bounds: dict[str, list[Rate]] = {}
    names = list(rows)
    for repeat in range(args.repeats):
        # Each repetition starts at another row, so no row always runs first or after the same one.
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            rate, model = train_rate(rows[name])
            rates[name].append(rate)
            print(
                f"repetition {repeat + 1}/{args.repeats}: {name}: {rate.wall:,.0f} env steps/s "
                f"({rate.cpu:,.0f} per CPU second)",
                flush=True,
            )
            if name == TODAY or rows[name].algo == "neg-reward-dqn":
                label = "today's path" if name == TODAY else name
                for bound, value in bound_rates(model, args).items():
                    bounds.setdefault(f"{bound}: {label}", []).append(value)
        bounds.setdefault("env alone (random actions, same vec env)", []).append(env_rate(args))
    text = report(
        args, rates, bounds, (time.perf_counter() - start) / 60, (load_start, os.getloadavg()[0])
    )
    print(text, end="")
    if args.out:
        write_text_atomic(args.out, text)


if __name__ == "__main__":
    run_main("bench_training.py", Args, main)
