"""Benchmark the negative agents against SB3's DQN, the planner and two baselines over seeds and
scenarios (obstacle counts of ``NegCollision-v0`` and the crowd variant).

Writes ``bench.csv`` (one row per agent, scenario and seed, plus the agents trained on the first
scenario evaluated on the others without retraining), ``bench_curves.csv`` (the evaluations
during training), ``bench.md`` (mean ± std over seeds, ratios to random and to the planner, the
targets, the command, the machine and the wall time) and ``learning_curves.png``; TensorBoard
runs go to ``<tensorboard_dir>/<scenario>/<agent>/s<seed>``. Results are rewritten after every
run, so an interrupted bench keeps what finished.

    negdl-bench --seeds 0 1 2 --num-obstacles 10 30
"""

from __future__ import annotations

import multiprocessing
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.logger import configure
from tqdm.auto import tqdm

import neg_envs  # noqa: F401  (registers the env ids)
from neg_agents.algos import ALGOS, get_algo
from neg_agents.cli.options import run_main
from neg_agents.cli.report import bench_markdown, plot_learning_curves
from neg_agents.common.env_util import VEC_ENV_KINDS, collision_config, make_env
from neg_agents.common.evaluation import evaluate_agent
from neg_agents.common.extractors import ObstacleSetExtractor
from neg_agents.hyperparams import N_ENVS, N_TIMESTEPS
from neg_agents.model_io import transfer_model
from neg_agents.training import EVAL_SEED_OFFSET, check_timesteps, train_agent
from negdl.results import machine_description, write_csv

#: The crowd variant ``--crowd`` adds, with its registered defaults.
CROWD_ENV_ID = "NegCollisionCrowd-v0"


@dataclass
class Args:
    """Train and evaluate every agent over seeds and obstacle counts; write CSV, markdown and a plot."""

    algos: tuple[str, ...] = tuple(ALGOS)
    """agents to compare (trained ones and the random/stay baselines)"""
    seeds: tuple[int, ...] = (0, 1, 2)
    """seeds; each trained agent is trained once per seed and obstacle count"""
    num_obstacles: tuple[int, ...] = (10, 30)
    """obstacle counts of the env"""
    env_id: str = "NegCollision-v0"
    """registered env id (num_obstacles is passed as an env option)"""
    crowd: bool = True
    """also run every agent on NegCollisionCrowd-v0 (300 obstacles, the 16 nearest observed)"""
    transfer: bool = True
    """evaluate every agent trained on the first obstacle count on the other scenarios too, without retraining"""
    total_timesteps: int = N_TIMESTEPS
    """env steps per training run"""
    n_envs: int = N_ENVS
    """parallel training envs"""
    vec_env: str = "native"
    """how training envs are stepped (see negdl-train); agents acting through NegativeActionWrapper always use dummy"""
    eval_freq: int = 10_000
    """env steps between evaluations during training (the learning curves)"""
    eval_episodes: int = 10
    """episodes per evaluation during training"""
    final_episodes: int = 30
    """episodes of the final evaluation that fills the table (same scenes for every agent)"""
    out_dir: str = "docs/agents"
    """where bench.csv, bench_curves.csv, bench.md and learning_curves.png go"""
    tensorboard_dir: str = "runs/bench"
    """TensorBoard folder"""
    workers: int = 1
    """runs in parallel, one process each (per-run progress bars are hidden when > 1)"""
    torch_threads: int = 1
    """torch CPU threads (0: torch's default); the MLPs are small, extra threads mostly wait on each other"""
    progress_bar: bool = True
    """show progress bars"""
    device: str = "auto"
    """torch device"""


@dataclass(frozen=True)
class Scenario:
    """One env configuration of the bench: an env id and its options."""

    env_id: str
    env_kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.env_kwargs)

    @property
    def name(self) -> str:
        """Folder-friendly name, e.g. ``NegCollision-v0-n30``."""
        options = "-".join(f"{k.replace('num_obstacles', 'n')}{v}" for k, v in self.env_kwargs)
        return f"{self.env_id}-{options}" if options else self.env_id


def scenarios(args: Args) -> list[Scenario]:
    """The bench's scenarios: each obstacle count of ``args.env_id``, then the crowd variant."""
    found = [Scenario(args.env_id, (("num_obstacles", n),)) for n in args.num_obstacles]
    return found + ([Scenario(CROWD_ENV_ID)] if args.crowd else [])


def evaluation_row(
    args: Args, algo: str, scenario: Scenario, seed: int, agent: Any, eval_env: Any
) -> dict[str, Any]:
    """Evaluate ``agent`` on ``args.final_episodes`` episodes of ``eval_env``; the row's keys and metrics."""
    spec = get_algo(algo)
    final = evaluate_agent(agent, eval_env, args.final_episodes, spec.deterministic).summary()
    return {
        "env_id": scenario.env_id,
        "num_obstacles": collision_config(eval_env).num_obstacles,
        "algo": algo,
        "seed": seed,
        "trained_on": "",
        **final,
    }


def run_one(
    args: Args, algo: str, scenario: Scenario, seed: int, transfer_to: Sequence[Scenario] = ()
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train (unless a baseline) and evaluate one agent on one scenario, then (if it learned an
    ``ObstacleSetExtractor`` policy) on each of ``transfer_to`` without retraining; return the
    table rows and the learning curve."""
    spec = get_algo(algo)
    tb_name = f"{scenario.name}/{algo}/s{seed}"

    def eval_env_for(target: Scenario) -> Any:
        return make_env(
            target.env_id,
            min(10, args.final_episodes),
            seed + EVAL_SEED_OFFSET,
            target.kwargs,
            "dummy",
            spec.negative_actions,
        )

    eval_env = eval_env_for(scenario)
    curve: list[dict[str, Any]] = []
    model = None
    if spec.trainable:
        result = train_agent(
            algo,
            scenario.env_id,
            scenario.kwargs,
            args.total_timesteps,
            seed,
            args.n_envs,
            "dummy" if spec.negative_actions else args.vec_env,
            tensorboard_log=args.tensorboard_dir,
            tb_log_name=tb_name,
            eval_freq=args.eval_freq,
            eval_episodes=args.eval_episodes,
            progress_bar=args.progress_bar,
            device=args.device,
        )
        model, logger, curve = result.model, result.model.logger, result.history
        agent = model.policy
        # SB3 logs time/fps only when episodes end; record the whole run's throughput too.
        logger.record("time/fps", result.steps_per_s)
        timing = {"train_time_s": result.train_time_s, "env_steps_per_s": result.steps_per_s}
        model.get_env().close()
    else:
        agent = spec.make_baseline(eval_env, seed)
        logger = configure(str(Path(args.tensorboard_dir) / tb_name), ["tensorboard"])
        timing = {"train_time_s": float("nan"), "env_steps_per_s": float("nan")}
    row = evaluation_row(args, algo, scenario, seed, agent, eval_env)
    eval_env.close()
    final = {key: row[key] for key in ("return", "collisions_per_episode", "moves_per_episode")}
    if not spec.trainable:
        # Flat lines across the training range, so TensorBoard shows baselines beside the curves.
        for step in (0, args.total_timesteps):
            for key, value in final.items():
                logger.record(f"eval/{key}", value)
            logger.dump(step)
    for key, value in final.items():
        logger.record(f"final/{key}", value)
    logger.dump(args.total_timesteps)
    logger.close()
    budget = {"timesteps": args.total_timesteps if spec.trainable else 0}
    extra = {**timing, "eval_episodes": args.final_episodes}
    rows = [{**row, **budget, **extra}]
    transferable = (
        model is not None
        and model.policy_kwargs.get("features_extractor_class") is ObstacleSetExtractor
    )
    for target in transfer_to if transferable else ():
        target_env = eval_env_for(target)
        moved = transfer_model(model, target_env)
        transferred = evaluation_row(args, algo, target, seed, moved.policy, target_env)
        transferred["trained_on"] = f"{scenario.env_id} N={row['num_obstacles']}"
        # No training happened here: the timing belongs to the row it was trained in.
        untimed = {**extra, "train_time_s": float("nan"), "env_steps_per_s": float("nan")}
        rows.append({**transferred, **budget, **untimed})
        target_env.close()
    keys = {key: row[key] for key in ("env_id", "num_obstacles", "algo", "seed")}
    return rows, [{**keys, **point} for point in curve]


def _run_grid(
    args: Args, grid: list[tuple[Scenario, int, str, tuple[Scenario, ...]]]
) -> Iterator[tuple[int, tuple[list[dict[str, Any]], list[dict[str, Any]]]]]:
    """Yield ``(grid index, run_one result)`` as runs finish, in this process or in workers."""
    if args.workers == 1:
        for index, (scenario, seed, algo, transfer_to) in enumerate(grid):
            yield index, run_one(args, algo, scenario, seed, transfer_to)
        return
    worker_args = replace(args, progress_bar=False)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        args.workers,
        context,
        initializer=torch.set_num_threads,
        initargs=(max(args.torch_threads, 1),),
    ) as pool:
        futures = {
            pool.submit(run_one, worker_args, algo, scenario, seed, transfer_to): index
            for index, (scenario, seed, algo, transfer_to) in enumerate(grid)
        }
        for future in as_completed(futures):
            yield futures[future], future.result()


def run(args: Args) -> Path:
    """Run the whole grid; return the markdown file."""
    for algo in args.algos:
        get_algo(algo)
    check_timesteps(args.total_timesteps)
    if args.workers < 1 or args.torch_threads < 0:
        raise ValueError(
            f"workers must be >= 1 and torch_threads >= 0, got {args.workers} and {args.torch_threads}"
        )
    if not args.seeds or not args.num_obstacles:
        raise ValueError("give at least one seed and one obstacle count")
    if args.vec_env not in VEC_ENV_KINDS:
        raise ValueError(f"vec_env must be one of {VEC_ENV_KINDS}, got {args.vec_env!r}")
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    out = Path(args.out_dir)
    command = "negdl-bench " + shlex.join(sys.argv[1:])
    machine = machine_description(
        torch.device("cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu")
    )
    every = scenarios(args)
    transfer_to = tuple(every[1:]) if args.transfer else ()
    grid = [
        (scenario, seed, algo, transfer_to if scenario == every[0] else ())
        for scenario in every
        for seed in args.seeds
        for algo in args.algos
    ]
    start = time.perf_counter()
    results: dict[int, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    progress = tqdm(total=len(grid), desc="bench runs", disable=not args.progress_bar)
    for index, (run_rows, curve) in _run_grid(args, grid):
        results[index] = (run_rows, curve)
        row = run_rows[0]
        elapsed = time.perf_counter() - start
        # Rows in grid order, whatever order the workers finish in.
        rows = [row for i in sorted(results) for row in results[i][0]]
        curves = [point for i in sorted(results) for point in results[i][1]]
        write_csv(rows, out / "bench.csv")
        if curves:
            write_csv(curves, out / "bench_curves.csv")
        meta = {
            "command": command,
            "machine": machine,
            "workers": args.workers,
            "wall_time_s": elapsed,
            "complete": len(results) == len(grid),
            "vec_env": args.vec_env,
            "total_timesteps": args.total_timesteps,
            "final_episodes": args.final_episodes,
            "n_envs": args.n_envs,
        }
        (out / "bench.md").write_text(bench_markdown(rows, meta, curves))
        plot_learning_curves(rows, curves, out / "learning_curves.png")
        progress.update()
        progress.write(
            f"{row['algo']} {row['env_id']} n={row['num_obstacles']} seed={row['seed']}: collisions/episode "
            f"{row['collisions_per_episode']:.2f}, return {row['return']:.2f} ({elapsed / 60:.1f} min so far)"
        )
    progress.close()
    return out / "bench.md"


def main(argv: Sequence[str] | None = None) -> None:
    path = run_main("negdl-bench", Args, run, argv)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
