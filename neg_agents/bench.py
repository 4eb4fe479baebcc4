"""Benchmark the negative agents against SB3's DQN and two baselines over seeds and obstacle counts.

``run_bench`` writes ``bench.csv`` (one row per agent, obstacle count and seed),
``bench_curves.csv`` (the evaluations during training), ``bench.md`` (mean ± std over seeds,
the targets of issue 3, the command, the machine and the wall time) and
``learning_curves.png``; TensorBoard runs go to ``<tensorboard_dir>/n<obstacles>/<agent>/s<seed>``.
Results are rewritten after every run, so an interrupted bench keeps what finished: with
``should_stop`` (``negdl-bench`` passes its Ctrl-C handler) the run in flight in this process
stops at its next training step, worker processes running others are ended, those runs are
dropped, and ``run_bench`` raises ``negdl.interrupt.StopRequested``. The command is
``negdl-bench`` (``neg_agents/cli/bench.py``).
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.logger import configure
from tqdm.auto import tqdm

import neg_envs  # noqa: F401  (registers the env ids)
from neg_agents.algos import ALGOS, get_algo
from neg_agents.bench_report import bench_markdown, plot_learning_curves
from neg_agents.common.env_util import make_env
from neg_agents.common.evaluation import evaluate_agent
from neg_agents.hyperparams import N_ENVS, N_TIMESTEPS
from neg_agents.training import EVAL_SEED_OFFSET, TrainConfig, check_timesteps, train_agent
from neg_envs.collision_core import MAX_OBSTACLES
from negdl.checks import check_int
from negdl.cli import check_out_dir
from negdl.devices import resolve_device
from negdl.interrupt import StopRequested, terminate_child_processes
from negdl.results import machine_description, write_csv, write_text_atomic


@dataclass
class BenchConfig:
    """Train and evaluate every agent over seeds and obstacle counts; write CSV, markdown and a plot."""

    algos: tuple[str, ...] = tuple(ALGOS)
    """agents to compare (trained ones and the random/stay baselines)"""
    seeds: tuple[int, ...] = (0, 1, 2)
    """seeds; each trained agent is trained once per seed and obstacle count"""
    num_obstacles: tuple[int, ...] = (10, 30)
    """obstacle counts of the env"""
    env_id: str = "NegCollision-v0"
    """registered env id (num_obstacles is passed as an env option)"""
    total_timesteps: int = N_TIMESTEPS
    """env steps per training run"""
    n_envs: int = N_ENVS
    """parallel training envs (DummyVecEnv, so every agent, wrapped or not, runs the same way)"""
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

    def __post_init__(self) -> None:
        for algo in self.algos:
            get_algo(algo)
        check_timesteps(self.total_timesteps)
        for name, values, high in (
            ("seeds", self.seeds, 2**32 - 1),
            ("num_obstacles", self.num_obstacles, MAX_OBSTACLES),
            ("algos", self.algos, None),
        ):
            if not values or len(set(values)) != len(values):
                raise ValueError(f"give at least one of {name}, each once; got {list(values)}")
            if high is not None:
                for value in values:
                    check_int(name, value, 0, high)
        check_int("n_envs", self.n_envs, 1)
        check_int("eval_freq", self.eval_freq, 0)
        check_int("eval_episodes", self.eval_episodes, 1)
        check_int("final_episodes", self.final_episodes, 1)
        check_int("workers", self.workers, 1)
        check_int("torch_threads", self.torch_threads, 0)
        resolve_device(self.device)
        check_out_dir("--out-dir", self.out_dir)
        check_out_dir("--tensorboard-dir", self.tensorboard_dir)


def _start_worker(threads: int) -> None:
    torch.set_num_threads(threads)
    # Ctrl-C reaches the whole process group: the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_one(
    args: BenchConfig,
    algo: str,
    num_obstacles: int,
    seed: int,
    should_stop: Callable[[], bool] = lambda: False,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Train (unless a baseline) and evaluate one agent; return its table row and its curve.

    :param args: the bench's settings.
    :param algo: the agent (``neg_agents.ALGOS``).
    :param num_obstacles: the env's obstacle count.
    :param seed: seeds training and the final evaluation.
    :param should_stop: asked after every training step; when it turns True the run stops and
        raises ``StopRequested``.
    """
    spec = get_algo(algo)
    env_kwargs = {"num_obstacles": num_obstacles}
    tb_name = f"n{num_obstacles}/{algo}/s{seed}"
    eval_env = make_env(
        args.env_id, 10, seed + EVAL_SEED_OFFSET, env_kwargs, "dummy", spec.negative_actions
    )
    curve: list[dict[str, Any]] = []
    if spec.trainable:
        result = train_agent(
            TrainConfig(
                algo=algo,
                env_id=args.env_id,
                env_kwargs=env_kwargs,
                total_timesteps=args.total_timesteps,
                seed=seed,
                n_envs=args.n_envs,
                vec_env="dummy",
                eval_freq=args.eval_freq,
                eval_episodes=args.eval_episodes,
                tensorboard_log=args.tensorboard_dir,
                tb_log_name=tb_name,
                progress_bar=args.progress_bar,
                device=args.device,
            ),
            should_stop=should_stop,
        )
        if result.interrupted:
            result.model.get_env().close()
            eval_env.close()
            raise StopRequested(f"{algo} n={num_obstacles} seed={seed} stopped while training")
        agent, logger, curve = result.model.policy, result.model.logger, result.history
        # SB3 logs time/fps only when episodes end; record the whole run's throughput too.
        logger.record("time/fps", result.steps_per_s)
        timing = {"train_time_s": result.wall_time_s, "env_steps_per_s": result.steps_per_s}
        result.model.get_env().close()
    else:
        agent = spec.make_baseline(eval_env.observation_space, eval_env.action_space, seed)
        logger = configure(str(Path(args.tensorboard_dir) / tb_name), ["tensorboard"])
        timing = {"train_time_s": float("nan"), "env_steps_per_s": float("nan")}
    final = evaluate_agent(agent, eval_env, args.final_episodes, spec.deterministic).summary()
    eval_env.close()
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
    keys = {"env_id": args.env_id, "num_obstacles": num_obstacles, "algo": algo, "seed": seed}
    row = {
        **keys,
        "timesteps": args.total_timesteps if spec.trainable else 0,
        **final,
        **timing,
        "eval_episodes": args.final_episodes,
    }
    return row, [{**keys, **point} for point in curve]


def _run_grid(
    args: BenchConfig, grid: list[tuple[int, int, str]], should_stop: Callable[[], bool]
) -> Iterator[tuple[int, tuple[dict[str, Any], list[dict[str, Any]]]]]:
    """Yield ``(grid index, run_one result)`` as runs finish, in this process or in workers;
    raise ``StopRequested`` once ``should_stop()`` turns True (runs in flight are dropped)."""
    finished = 0
    try:
        for item in _runs(args, grid, should_stop):
            yield item
            finished += 1
    except StopRequested:
        out = Path(args.out_dir)
        raise StopRequested(
            f"kept the {finished} finished runs of {len(grid)} in {out / 'bench.csv'} and "
            f"{out / 'bench.md'} (marked incomplete)"
            if finished
            else "no run had finished"
        ) from None


def _runs(
    args: BenchConfig, grid: list[tuple[int, int, str]], should_stop: Callable[[], bool]
) -> Iterator[tuple[int, tuple[dict[str, Any], list[dict[str, Any]]]]]:
    if args.workers == 1:
        for index, (n, seed, algo) in enumerate(grid):
            if should_stop():
                raise StopRequested
            yield index, run_one(args, algo, n, seed, should_stop)
        return
    worker_args = replace(args, progress_bar=False)
    with ProcessPoolExecutor(
        args.workers,
        multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(max(args.torch_threads, 1),),
    ) as pool:
        futures = {
            pool.submit(run_one, worker_args, algo, n, seed): index
            for index, (n, seed, algo) in enumerate(grid)
        }
        pending = set(futures)
        while pending:
            # Short waits, so a stop request is seen within a fraction of a second.
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            if should_stop():
                for future in pending:
                    future.cancel()
                terminate_child_processes()  # the runs in flight are dropped anyway
                raise StopRequested
            for future in done:
                yield futures[future], future.result()


def run_bench(
    args: BenchConfig,
    command: str = "negdl-bench",
    should_stop: Callable[[], bool] = lambda: False,
) -> Path:
    """Run the whole grid; return the markdown file.

    :param args: the bench's settings (checked when the ``BenchConfig`` is made).
    :param command: the command line, recorded in ``bench.md``.
    :param should_stop: asked between and during runs; once True the bench stops, keeping the
        finished runs' files (``bench.md`` says it is incomplete), and raises ``StopRequested``.
    """
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    out = Path(args.out_dir)
    machine = machine_description(
        torch.device("cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu")
    )
    grid = [
        (n, seed, algo) for n in args.num_obstacles for seed in args.seeds for algo in args.algos
    ]
    start = time.perf_counter()
    results: dict[int, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    progress = tqdm(total=len(grid), desc="bench runs", disable=not args.progress_bar)
    for index, (row, curve) in _run_grid(args, grid, should_stop):
        results[index] = (row, curve)
        elapsed = time.perf_counter() - start
        # Rows in grid order, whatever order the workers finish in.
        rows = [results[i][0] for i in sorted(results)]
        curves = [point for i in sorted(results) for point in results[i][1]]
        write_csv(rows, out / "bench.csv")
        if curves:
            write_csv(curves, out / "bench_curves.csv")
        meta = {
            "command": command,
            "machine": machine,
            "workers": args.workers,
            "wall_time_s": elapsed,
            "complete": len(rows) == len(grid),
            "total_timesteps": args.total_timesteps,
            "final_episodes": args.final_episodes,
            "n_envs": args.n_envs,
        }
        write_text_atomic(out / "bench.md", bench_markdown(rows, meta))
        plot_learning_curves(rows, curves, out / "learning_curves.png")
        progress.update()
        progress.write(
            f"{row['algo']} n={row['num_obstacles']} seed={row['seed']}: collisions/episode "
            f"{row['collisions_per_episode']:.2f}, return {row['return']:.2f} ({elapsed / 60:.1f} min so far)"
        )
    progress.close()
    return out / "bench.md"
