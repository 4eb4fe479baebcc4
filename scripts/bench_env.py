"""Environment speed: env steps per second of NegCollision against CartPole-v1, on one core.

    python scripts/bench_env.py             # prints the table and writes runs/envs/bench_env.md

Configurations are measured round-robin and each keeps its best round, so a background load
hurts every row alike.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

import neg_envs  # noqa: F401  (registers the ids)
from negdl.checks import check_int, check_number
from negdl.cli import check_out_file, run_main
from negdl.results import cpu_description, write_text_atomic


@dataclass
class Args:
    """Env steps per second of NegCollision (single and batched) against CartPole-v1."""

    seconds: float = 1.0
    """time spent on each configuration per round"""
    rounds: int = 3
    """rounds over all configurations; the best round of each is reported"""
    seed: int = 0
    """seed for env resets and the random actions"""
    out: str = "runs/envs/bench_env.md"
    """also write the markdown table to this file (the README's copy is docs/envs/bench_env.md: scripts/update_docs.py)"""

    def __post_init__(self) -> None:
        check_number("--seconds", self.seconds, 0, 3600, low_open=True)
        check_int("--rounds", self.rounds, 1)
        check_int("--seed", self.seed, 0)
        check_out_file("--out", self.out)


def single_env_rate(env: gym.Env, seconds: float, seed: int) -> float:
    """Env steps per second of a ``gym.make`` env under random actions, resets included."""
    rng = np.random.default_rng(seed)
    actions = rng.integers(env.action_space.n, size=4096).tolist()
    env.reset(seed=seed)
    steps, start = 0, time.perf_counter()
    while True:  # at least one round of steps, however short ``seconds`` is (a rate of 0 divides)
        for action in actions[:512]:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        steps += 512
        actions = actions[512:] + actions[:512]
        if time.perf_counter() - start >= seconds:
            return steps / (time.perf_counter() - start)


def vector_env_rate(env: gym.vector.VectorEnv, seconds: float, seed: int) -> float:
    """Env steps per second (sub-env steps) of a batched env under random actions, autoresets included."""
    rng = np.random.default_rng(seed)
    actions = rng.integers(env.single_action_space.n, size=(64, env.num_envs))
    env.reset(seed=seed)
    calls, start = 0, time.perf_counter()
    while True:  # at least one call, however short ``seconds`` is
        env.step(actions[calls % 64])
        calls += 1
        if time.perf_counter() - start >= seconds:
            return calls * env.num_envs / (time.perf_counter() - start)


def main(args: Args) -> None:
    # (name, kind, env, obstacles per env)
    configs = [("CartPole-v1 (gym.make)", "single", gym.make("CartPole-v1"), 0)]
    for n in (10, 100, 500):
        env = gym.make("NegCollision-v0", num_obstacles=n)
        configs.append((f"NegCollision-v0 single, N={n}", "single", env, n))
    for b in (64, 1024):
        for n in (10, 500):
            env = gym.make_vec("NegCollision-v0", num_envs=b, num_obstacles=n)
            configs.append((f"NegCollision-v0 batched, B={b}, N={n}", "vector", env, n))
    best = {name: 0.0 for name, *_ in configs}
    for round_ in range(args.rounds):
        for name, kind, env, _ in configs:
            measure = single_env_rate if kind == "single" else vector_env_rate
            best[name] = max(best[name], measure(env, args.seconds, args.seed + round_))
    reference = best["CartPole-v1 (gym.make)"]
    lines = [
        f"Machine: {cpu_description()} (this benchmark uses one), Python {platform.python_version()}, "
        f"numpy {np.__version__}.",
        "",
        "| configuration | env steps/s | ratio to CartPole-v1 | ns per obstacle-step |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, _, _, obstacles in configs:
        rate = best[name]
        per_obstacle = f"{1e9 / (rate * obstacles):.1f}" if obstacles else "-"
        lines.append(f"| {name} | {rate:,.0f} | {rate / reference:.2f}x | {per_obstacle} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        write_text_atomic(args.out, table + "\n")


if __name__ == "__main__":
    run_main("bench_env.py", Args, main)
