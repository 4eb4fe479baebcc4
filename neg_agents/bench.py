"""Benchmark the negative agents against SB3's DQN, the planner and two baselines over seeds and
scenarios (obstacle counts of ``NegCollision-v0`` and the crowd variant).

``run_bench`` writes ``bench.csv`` (one row per agent, scenario and seed, plus the agents
trained on the first scenario evaluated on the others without retraining),
``bench_curves.csv`` (the evaluations during training), ``bench.md`` (mean ± std over seeds,
ratios to random and to the planner, the project's targets, the interquartile mean with
bootstrap confidence intervals, the command, the machine and the wall time),
``learning_curves.png`` and ``performance_profile.png``; TensorBoard runs go to
``<tensorboard_dir>/<scenario>/<agent>/s<seed>_1`` (e.g. ``NegCollision-v0-n10``), and each
training run's ``monitor.csv`` files, ``evaluations.npz`` and videos (``--capture-video``) to
``<tensorboard_dir>/<scenario>/<agent>/s<seed>``.

The bench is a sweep (``negdl.sweeps``) whose trial is one run, one agent x scenario x seed
(:func:`run_trial`, around :func:`run_one`), and whose results folder is ``tensorboard_dir``:
each run's folder also holds its record (``trial.json``), its rows (``runs.csv``,
``curves.csv``) and its log (``trial.log``). Runs go one after another by default, ``workers``
at once in local processes, or as Ray tasks on a cluster (``BenchConfig`` is a
``negdl.sweeps.SweepOptions``). The tables are rewritten after every finished run; a bench
started again runs only the runs that have not finished; a failing run is reported and the
others go on; on Ctrl-C the runs in flight are dropped and ``run_bench`` raises
``negdl.interrupt.Stopped``. The command is ``negdl-bench`` (``neg_agents/cli/bench.py``).
"""

from __future__ import annotations

import functools
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.logger import configure

import neg_envs  # noqa: F401  (registers the env ids)
from neg_agents.algos import ALGOS, get_algo
from neg_agents.bench_report import bench_markdown, plot_learning_curves
from neg_agents.bench_stats import plot_performance_profiles, seed_statistics_markdown
from neg_agents.common.callbacks import EVAL_TENSORBOARD_KEYS
from neg_agents.common.env_util import (
    VEC_ENV_KINDS,
    collision_config,
    make_env,
    preferred_vec_env,
)
from neg_agents.common.evaluation import evaluate_agent
from neg_agents.common.extractors import ObstacleSetExtractor
from neg_agents.hyperparams import AGENT_DEVICE, N_ENVS, N_TIMESTEPS
from neg_agents.model_io import transfer_model
from neg_agents.training import EVAL_SEED_OFFSET, TrainConfig, check_timesteps, train_agent
from neg_agents.video import check_video_capture, record_evaluation_video
from neg_envs.collision_core import MAX_OBSTACLES
from negdl.checks import check_bool, check_choice, check_int
from negdl.cli import check_out_dir
from negdl.devices import resolve_device
from negdl.interrupt import StopRequested
from negdl.results import machine_description, write_csv, write_text_atomic
from negdl.sweeps import Grid, Sweep, SweepOptions, SweepResult
from negdl.trials import Trial

#: The crowd variant ``--crowd`` adds, with its registered defaults.
CROWD_ENV_ID = "NegCollisionCrowd-v0"


@dataclass
class BenchConfig(SweepOptions):
    """Train and evaluate every agent over seeds and obstacle counts; write CSV, markdown and a plot."""

    algos: tuple[str, ...] = tuple(name for name, spec in ALGOS.items() if spec.available)
    """agents to compare (trained ones, the planner and the random/stay baselines; maskable-ppo when negdl[contrib] is installed)"""
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
    """how training envs are stepped (see negdl-train); agents acting through NegativeActionWrapper or under action masks use dummy"""
    eval_freq: int = 10_000
    """env steps between evaluations during training (the learning curves)"""
    eval_episodes: int = 10
    """episodes per evaluation during training"""
    final_episodes: int = 30
    """episodes of the final evaluation that fills the table (same scenes for every agent)"""
    out_dir: str = "runs/bench"
    """where bench.csv, bench_curves.csv, bench.md, learning_curves.png and performance_profile.png go"""
    tensorboard_dir: str = "runs/bench/runs"
    """TensorBoard folder; each run's monitor.csv, evaluations.npz and videos go beside its events"""
    capture_video: bool = False
    """record a short evaluation video of every run (needs negdl[video])"""
    torch_threads: int = 1
    """torch CPU threads (0: torch's default); the MLPs are small, extra threads mostly wait on each other"""
    progress_bar: bool = True
    """show progress bars"""
    device: str = AGENT_DEVICE
    """torch device: cpu (the default: the agents' MLPs are too small for a GPU to pay off, CUDA ran at 0.8x the CPU's env steps/s on an H100 machine), cuda, or auto (CUDA when available)"""

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
        check_int("torch_threads", self.torch_threads, 0)
        resolve_device(self.device)
        check_out_dir("--out-dir", self.out_dir)
        check_out_dir("--tensorboard-dir", self.tensorboard_dir)
        check_bool("capture_video", self.capture_video)
        check_bool("crowd", self.crowd)
        check_bool("transfer", self.transfer)
        check_choice("vec_env", self.vec_env, VEC_ENV_KINDS)
        if self.capture_video:
            check_video_capture()
        super().__post_init__()  # --backend, --workers, ...


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


def scenarios(args: BenchConfig) -> list[Scenario]:
    """The bench's scenarios: each obstacle count of ``args.env_id``, then the crowd variant."""
    found = [Scenario(args.env_id, (("num_obstacles", n),)) for n in args.num_obstacles]
    return found + ([Scenario(CROWD_ENV_ID)] if args.crowd else [])


def run_one(
    args: BenchConfig,
    algo: str,
    scenario: Scenario,
    seed: int,
    transfer_to: Sequence[Scenario] = (),
    should_stop: Callable[[], bool] = lambda: False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train (unless a baseline) and evaluate one agent on one scenario, then (if it learned an
    ``ObstacleSetExtractor`` policy) on each of ``transfer_to`` without retraining; return the
    table rows and the learning curve.

    :param args: the bench's settings.
    :param algo: the agent (``neg_agents.ALGOS``).
    :param scenario: the env it trains and is evaluated on.
    :param seed: seeds training and the final evaluation.
    :param transfer_to: other scenarios the trained policy is evaluated on.
    :param should_stop: asked after every training step; when it turns True the run stops and
        raises ``StopRequested``.
    """
    spec = get_algo(algo)
    tb_name = f"{scenario.name}/{algo}/s{seed}"
    log_dir = Path(args.tensorboard_dir) / tb_name

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
        vec_env = args.vec_env
        if vec_env == "native":  # unless the agent needs single envs (see preferred_vec_env)
            vec_env = preferred_vec_env(
                scenario.env_id, spec.negative_actions, spec.action_masks, scenario.kwargs
            )
        result = train_agent(
            TrainConfig(
                algo=algo,
                env_id=scenario.env_id,
                env_kwargs=scenario.kwargs,
                total_timesteps=args.total_timesteps,
                seed=seed,
                n_envs=args.n_envs,
                vec_env=vec_env,
                eval_freq=args.eval_freq,
                eval_episodes=args.eval_episodes,
                tensorboard_log=args.tensorboard_dir,
                tb_log_name=tb_name,
                progress_bar=args.progress_bar,
                device=args.device,
                log_dir=str(log_dir),
                capture_video=args.capture_video,
                video_freq=0,  # one clip, of the trained agent
            ),
            should_stop=should_stop,
        )
        if result.interrupted:
            result.model.get_env().close()
            eval_env.close()
            raise StopRequested(f"{algo} {scenario.name} seed={seed} stopped while training")
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
    row = _evaluation_row(args, algo, scenario, seed, agent, eval_env)
    eval_env.close()
    final = {key: row[key] for key in EVAL_TENSORBOARD_KEYS if key in row}
    if args.capture_video and not spec.trainable:
        record_evaluation_video(
            lambda env: spec.make_baseline(env, seed),
            scenario.env_id,
            scenario.kwargs,
            log_dir / "videos",
            "eval-final",
            seed=seed + EVAL_SEED_OFFSET,
            deterministic=spec.deterministic,
            action_masks=spec.action_masks,
        )
    if not spec.trainable:
        # Flat lines across the training range, so TensorBoard shows baselines beside the curves.
        for step in (0, args.total_timesteps):
            for key, value in final.items():
                logger.record(EVAL_TENSORBOARD_KEYS[key], value)
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
        transferred = _evaluation_row(args, algo, target, seed, moved.policy, target_env)
        transferred["trained_on"] = f"{scenario.env_id} N={row['num_obstacles']}"
        # No training happened here: the timing belongs to the row it was trained in.
        untimed = {**extra, "train_time_s": float("nan"), "env_steps_per_s": float("nan")}
        rows.append({**transferred, **budget, **untimed})
        target_env.close()
    keys = {key: row[key] for key in ("env_id", "num_obstacles", "algo", "seed")}
    return rows, [{**keys, **point} for point in curve]


def _evaluation_row(
    args: BenchConfig, algo: str, scenario: Scenario, seed: int, agent: Any, eval_env: Any
) -> dict[str, Any]:
    """Evaluate ``agent`` on ``args.final_episodes`` episodes of ``eval_env``; the row's keys
    and metrics."""
    spec = get_algo(algo)
    final = evaluate_agent(
        agent, eval_env, args.final_episodes, spec.deterministic, spec.action_masks
    ).summary()
    return {
        "env_id": scenario.env_id,
        "num_obstacles": collision_config(eval_env).num_obstacles,
        "algo": algo,
        "seed": seed,
        "trained_on": "",
        **final,
    }


def run_trial(args: BenchConfig, trial: Trial) -> dict[str, list[dict[str, Any]]]:
    """One trial of the bench's sweep: :func:`run_one` for ``trial.params``; its rows (the
    scenario's, then those of the scenarios its policy is moved to) and its curve."""
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    every = {scenario.name: scenario for scenario in scenarios(args)}
    scenario = every[trial.params["scenario"]]
    first, *others = every.values()
    transfer_to = tuple(others) if args.transfer and scenario == first else ()
    # SB3 numbers its TensorBoard folder beside the trial's (s0_1): a rerun starts it afresh.
    for stale in trial.dir.parent.glob(f"{trial.dir.name}_*"):
        if re.fullmatch(rf"{re.escape(trial.dir.name)}_\d+", stale.name) and stale.is_dir():
            shutil.rmtree(stale)
    # The sweep's bar is the one progress bar.
    rows, curve = run_one(
        replace(args, progress_bar=False),
        trial.params["algo"],
        scenario,
        trial.params["seed"],
        transfer_to,
    )
    row = rows[0]
    print(
        f"{row['algo']} {row['env_id']} n={row['num_obstacles']} seed={row['seed']}: "
        f"collisions/episode {row['collisions_per_episode']:.2f}, return {row['return']:.2f}"
    )
    return {"runs": rows, "curves": curve}


def run_bench(args: BenchConfig, command: str = "negdl-bench") -> Path:
    """Run every run of the grid that has not finished yet; return the markdown file.

    :param args: the bench's settings (checked when the ``BenchConfig`` is made).
    :param command: the command line, recorded in ``bench.md``.
    :raises negdl.sweeps.TrialsFailed: some runs failed (the others' results are written).
    :raises negdl.interrupt.Stopped: on Ctrl-C or SIGTERM; the finished runs' files are kept
        (``bench.md`` says it is incomplete).
    """
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    out = Path(args.out_dir)
    machine = machine_description(resolve_device(args.device))
    # With transfer, the runs on the first scenario are also evaluated on the others: which
    # scenarios there are is then part of what those runs compute.
    grid_fields = ("algos", "seeds") + (() if args.transfer else ("num_obstacles", "crowd"))
    sweep = Sweep(
        functools.partial(run_trial, args),
        Grid(
            scenario=tuple(scenario.name for scenario in scenarios(args)),
            seed=args.seeds,
            algo=args.algos,
        ),
        args.tensorboard_dir,
        name="{scenario}/{algo}/s{seed}",
        settings=args.sweep_settings(*grid_fields),
    )
    start = time.perf_counter()

    def report(result: SweepResult) -> None:
        rows, curves = result.rows("runs"), result.rows("curves")
        write_csv(rows, out / "bench.csv")
        if curves:
            write_csv(curves, out / "bench_curves.csv")
        meta = {
            "command": command,
            "machine": machine,
            "workers": result.slots,
            "wall_time_s": time.perf_counter() - start,
            "complete": result.complete,
            "vec_env": args.vec_env,
            "total_timesteps": args.total_timesteps,
            "final_episodes": args.final_episodes,
            "n_envs": args.n_envs,
        }
        write_text_atomic(
            out / "bench.md", bench_markdown(rows, meta, curves) + seed_statistics_markdown(rows)
        )
        plot_learning_curves(rows, curves, out / "learning_curves.png")
        plot_performance_profiles(rows, out / "performance_profile.png")

    result = args.run_sweep(sweep, "negdl-bench", args.progress_bar, report)
    if result.finished:
        report(result)
    result.raise_for_failures()
    return out / "bench.md"
