"""Benchmark the negative agents against SB3's DQN, the planner and two baselines over seeds and
scenes (obstacle counts of ``NegCollision-v0``, the crowd variant, the scene mix and probes).

``run_bench`` writes ``bench.csv`` (one row per agent, scene and seed, plus the agents evaluated
on scenes they did not train on), ``bench_curves.csv`` (the learning curves), ``bench.md``,
``learning_curves.png`` and ``performance_profile.png`` into ``out_dir``, rewritten after every
finished run. It is a sweep (``negdl.sweeps``) of runs, one agent x scene x seed
(:func:`run_trial`), each in ``<tensorboard_dir>/<scene>/<agent>/s<seed>`` with its record, rows,
log, TensorBoard events, ``monitor.csv``, ``evaluations.npz`` and videos; started again, it runs
only what has not finished; on Ctrl-C ``run_bench`` raises ``negdl.interrupt.Stopped``.
"""

from __future__ import annotations

import functools
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import torch
import tyro
from stable_baselines3.common.logger import configure

import neg_envs  # noqa: F401  (registers the env ids)
from neg_agents.algos import ALGOS, MAIN_ALGO, get_algo
from neg_agents.bench_report import (
    bench_markdown,
    plot_learning_curves,
    plot_performance_profiles,
    seed_statistics_markdown,
)
from neg_agents.common.callbacks import EVAL_TENSORBOARD_KEYS
from neg_agents.common.env_util import collision_config
from neg_agents.common.extractors import ObstacleSetExtractor
from neg_agents.model_io import transfer_model
from neg_agents.training import TrainConfig, TrainSettings, close_env, train_agent
from neg_agents.watch import record_evaluation_video
from neg_envs.collision_core import MAX_OBSTACLES
from negdl.checks import check_bool, check_int
from negdl.cli import check_out_dir
from negdl.devices import resolve_device
from negdl.results import machine_description, write_csv, write_text_atomic
from negdl.sweeps import Grid, Sweep, SweepOptions, SweepResult, execution_fields, execution_only
from negdl.trials import Trial

#: The crowd variant ``--crowd`` adds, with its registered defaults.
CROWD_ENV_ID = "NegCollisionCrowd-v0"
#: The scene distribution ``--mix`` trains generalists on.
MIX_ENV_ID = "NegCollisionMix-v0"
#: First seed of the held-out test episodes every table row is measured on (the same episodes
#: for every agent and training seed). Training envs use seeds from the run's seed up, the
#: learning curves (and any tuning) ``seed + EVAL_SEED_OFFSET``: no table episode is ever seen
#: while training, selecting or tuning.
TEST_SEED = 1_000_000
#: Parallel envs of the test evaluation (the episodes are split evenly over them).
TEST_ENVS = 50
#: Short names of scene options in scene names (``NegCollision-v0-n20-v0.02``).
OPTION_NAMES = {"num_obstacles": "n", "obstacle_speed": "v", "obstacle_radius": "r"}


@dataclass(frozen=True)
class Scenario:
    """One env configuration of the bench: an env id and its options."""

    env_id: str
    env_kwargs: tuple[tuple[str, Any], ...] = ()

    def make_kwargs(self, args: BenchConfig) -> dict[str, Any]:
        """The env options runs of ``args`` make this scene with (its episode length too)."""
        steps = {} if args.episode_steps == 500 else {"max_episode_steps": args.episode_steps}
        return dict(self.env_kwargs, **steps)

    @property
    def name(self) -> str:
        """Folder-friendly name, e.g. ``NegCollision-v0-n30``."""
        options = "-".join(
            f"{OPTION_NAMES.get(k, k)}{'-'.join(map(str, v)) if isinstance(v, tuple) else v}"
            for k, v in self.env_kwargs
        )
        return f"{self.env_id}-{options}" if options else self.env_id


#: Scenes every agent is evaluated on and none is trained on, inside the documented ranges:
#: an empty arena, fast obstacles, big obstacles, and many small ones of mixed speeds.
PROBE_SCENES = (
    Scenario("NegCollision-v0", (("num_obstacles", 0),)),
    Scenario("NegCollision-v0", (("num_obstacles", 20), ("obstacle_speed", 0.02))),
    Scenario("NegCollision-v0", (("num_obstacles", 10), ("obstacle_radius", 0.06))),
    Scenario(
        "NegCollision-v0",
        (("num_obstacles", 60), ("obstacle_radius", 0.015), ("obstacle_speed", (0.0, 0.015))),
    ),
)


#: How the bench's agents train unless told otherwise: progress bars, and learning-curve points on
#: 200 validation episodes each, so that a point's 95% interval (about 0.01 of return near the
#: planner's -0.11) is finer than the 10% the stability target allows.
BENCH_TRAINING = TrainSettings(eval_freq=20_000, eval_episodes=200, progress_bar=True)


@dataclass
class BenchConfig(SweepOptions):
    """Train and evaluate every agent over seeds and scenes; write CSV, markdown and plots."""

    algos: tuple[str, ...] = tuple(name for name, spec in ALGOS.items() if spec.available)
    """agents to compare (trained ones, the planner and the random/stay baselines; maskable-ppo when negdl[contrib] is installed); trained agents train on the first scene"""
    specialist_algos: tuple[str, ...] = (MAIN_ALGO,)
    """trained agents of --algos that also train on each other named scene (the specialists)"""
    seeds: tuple[int, ...] = (0, 1, 2)
    """seeds; each trained agent is trained once per seed and scene it trains on"""
    num_obstacles: tuple[int, ...] = (10, 30)
    """obstacle counts of the env, each a scene: every trained agent trains on the first, the specialist_algos on each"""
    env_id: str = "NegCollision-v0"
    """registered env id (num_obstacles is passed as an env option)"""
    crowd: bool = True
    """also train the specialist_algos on NegCollisionCrowd-v0 (300 obstacles, the 16 nearest observed)"""
    mix: bool = True
    """also train the mix_algos on NegCollisionMix-v0 (a new scene every episode): generalists"""
    mix_algos: tuple[str, ...] = (MAIN_ALGO,)
    """trained agents of --algos that also train on the mix (when --mix)"""
    mix_timesteps: int = 500_000
    """env steps of each agent trained on the mix"""
    probes: bool = True
    """also evaluate every agent on scenes nobody trains on (empty, fast, big, many small)"""
    transfer: bool = True
    """evaluate every trained agent on every scene, not only the one it trained on, without retraining"""
    train: Annotated[TrainSettings, tyro.conf.OmitArgPrefixes] = BENCH_TRAINING
    """how each agent trains (total_timesteps: on a fixed scene; vec_env None: native unless the agent acts through NegativeActionWrapper); the learning curves evaluate on validation episodes"""
    final_episodes: int = 200
    """held-out test episodes per agent, seed and scene that fill the tables (the same for every agent)"""
    test_seed: int = TEST_SEED
    """first seed of the held-out test episodes (training uses seeds from --seeds up, validation seed + 10000)"""
    episode_steps: int = 500
    """steps per episode in every scene (500: the registered length; fewer only for quick checks)"""
    out_dir: str = execution_only("runs/bench")
    """where bench.csv, bench_curves.csv, bench.md, learning_curves.png and performance_profile.png go"""
    tensorboard_dir: str = execution_only("runs/bench/runs")
    """TensorBoard folder; each run's monitor.csv, evaluations.npz and videos go beside its events"""
    torch_threads: int = execution_only(1)
    """torch CPU threads (0: torch's default); the MLPs are small, extra threads mostly wait on each other"""

    def __post_init__(self) -> None:
        for algo in (*self.algos, *self.mix_algos, *self.specialist_algos):
            get_algo(algo)
        check_int("mix_timesteps", self.mix_timesteps, 1)
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
        check_int("final_episodes", self.final_episodes, 1)
        check_int("test_seed", self.test_seed, 0, 2**32 - 1 - self.final_episodes)
        check_int("torch_threads", self.torch_threads, 0)
        check_int("episode_steps", self.episode_steps, 1)
        check_out_dir("--out-dir", self.out_dir)
        check_out_dir("--tensorboard-dir", self.tensorboard_dir)
        for flag in ("crowd", "transfer", "mix", "probes"):
            check_bool(flag, getattr(self, flag))
        super().__post_init__()  # --backend, --workers, ...


def scenarios(args: BenchConfig) -> list[Scenario]:
    """The scenes agents train on: each obstacle count of ``args.env_id``, the crowd variant,
    then the mix (whose agents are the generalists)."""
    found = [Scenario(args.env_id, (("num_obstacles", n),)) for n in args.num_obstacles]
    found += [Scenario(CROWD_ENV_ID)] if args.crowd else []
    return found + ([Scenario(MIX_ENV_ID)] if args.mix else [])


def evaluation_scenarios(args: BenchConfig) -> list[Scenario]:
    """The scenes every agent is evaluated on: the training scenes, then the probe scenes."""
    return scenarios(args) + (list(PROBE_SCENES) if args.probes else [])


def runs_trial(args: BenchConfig, algo: str, scenario: Scenario, seed: int) -> bool:
    """Whether a point of the grid (evaluation scene x seed x agent) is a run: a trained agent
    trains on the first scene, on the other named scenes if it is one of ``specialist_algos``
    and on the mix if it is one of ``mix_algos``, and is evaluated from there; a baseline is
    evaluated on each scene, a deterministic one for the first seed only."""
    spec = get_algo(algo)
    if not spec.trainable:
        return spec.seeded or seed == args.seeds[0]
    training = scenarios(args)
    if scenario == training[0]:
        return True
    if scenario.env_id == MIX_ENV_ID:
        return algo in args.mix_algos
    return scenario in training and algo in args.specialist_algos


def run_trial(args: BenchConfig, trial: Trial) -> dict[str, list[dict[str, Any]]]:
    """One run of the bench's sweep: train ``trial.params``'s agent on its scene (unless a
    baseline), evaluate it on the held-out test episodes of every scene it is evaluated on (a
    trained ``ObstacleSetExtractor`` policy moved there without retraining, with ``--transfer``;
    others only on their own scene); its rows and its learning curve."""
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    every = {scenario.name: scenario for scenario in evaluation_scenarios(args)}
    scenario = every[trial.params["scenario"]]
    algo, seed = trial.params["algo"], trial.params["seed"]
    spec = get_algo(algo)
    evaluate_on = [scenario]
    # SB3 numbers its TensorBoard folder beside the trial's (s0_1): a rerun starts it afresh.
    for stale in trial.dir.parent.glob(f"{trial.dir.name}_*"):
        if re.fullmatch(rf"{re.escape(trial.dir.name)}_\d+", stale.name) and stale.is_dir():
            shutil.rmtree(stale)
    tb_name = f"{scenario.name}/{algo}/s{seed}"
    log_dir = Path(args.tensorboard_dir) / tb_name
    curve: list[dict[str, Any]] = []
    model = None
    trained: dict[str, Any] = {
        "trained_on": "",
        "timesteps": 0,
        "train_time_s": float("nan"),
        "env_steps_per_s": float("nan"),
    }
    if spec.trainable:
        vec_env = args.train.vec_env
        if vec_env in (None, "native"):  # unless the agent needs single envs
            vec_env = spec.vec_env_for(scenario.env_id, dict(scenario.env_kwargs))
        steps = args.mix_timesteps if scenario.env_id == MIX_ENV_ID else args.train.total_timesteps
        run_config = TrainConfig(
            algo=algo,
            env_id=scenario.env_id,
            env_kwargs=scenario.make_kwargs(args),
            seed=seed,
            tensorboard_log=args.tensorboard_dir,
            tb_log_name=tb_name,
            log_dir=str(log_dir),
            video_freq=0,  # one clip, of the trained agent
            **{**args.train.settings(), "vec_env": vec_env},
        )
        # The same number of learning-curve points on every scene; the sweep's bar is the one
        # progress bar.
        result = train_agent(
            run_config,
            total_timesteps=steps,
            eval_freq=args.train.eval_freq * steps // args.train.total_timesteps,
            progress_bar=False,
        )
        model, logger, curve = result.model, result.model.logger, result.history
        # SB3 logs time/fps only when episodes end; record the whole run's throughput too.
        logger.record("time/fps", result.steps_per_s)
        trained = {
            "trained_on": scenario.name,
            "timesteps": steps,
            "train_time_s": result.train_time_s,
            "env_steps_per_s": result.steps_per_s,
            "train_collisions": result.train_collisions,
            "train_collisions_per_1k": result.train_collisions_per_1k,
        }
        close_env(model)
        # A policy built on ObstacleSetExtractor moves to other scenes without retraining.
        extractor = model.policy_kwargs.get("features_extractor_class")
        if args.transfer and extractor is ObstacleSetExtractor:
            evaluate_on = list(every.values())
    else:
        logger = configure(str(log_dir), ["tensorboard"])
    rows = []
    for target in evaluate_on:
        # The held-out test episodes, the same for every agent whatever envs it acts in.
        n_envs = min(TEST_ENVS, args.final_episodes)
        env = spec.make_env(target.env_id, n_envs, args.test_seed, target.make_kwargs(args))
        if model is None:
            agent = spec.make_baseline(env, seed)
        else:
            agent = (model if target == scenario else transfer_model(model, env)).policy
        final = spec.evaluate(agent, env, args.final_episodes).summary()
        config = collision_config(env)
        env.close()
        if config is None:
            raise ValueError(f"the bench's scenes are NegCollision envs, got {target.env_id}")
        keys = {
            "scene": target.name,
            "env_id": target.env_id,
            "num_obstacles": config.num_obstacles,
        }
        rows.append({**keys, "algo": algo, "seed": seed, **final, **trained})
        print(
            f"{algo} (trained on {trained['trained_on'] or '-'}) {target.name} seed={seed}: "
            f"collisions/episode {final['collisions_per_episode']:.2f}, return {final['return']:.2f}"
        )
        if target == scenario or model is None:
            for key in EVAL_TENSORBOARD_KEYS:
                if key in final:
                    logger.record(f"final/{target.name}/{key}", final[key])
    if args.train.capture_video and not spec.trainable:
        record_evaluation_video(
            lambda env: spec.make_baseline(env, seed),
            spec,
            scenario.env_id,
            scenario.make_kwargs(args),
            log_dir / "videos",
            "eval-final",
            seed=args.test_seed,
        )
    logger.dump(args.train.total_timesteps)
    logger.close()
    keys = {"scene": scenario.name, "algo": algo, "seed": seed}
    return {"runs": rows, "curves": [{**keys, **point} for point in curve]}


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
    machine = machine_description(resolve_device(args.train.device))
    every = {scenario.name: scenario for scenario in evaluation_scenarios(args)}
    # Records keep the bench's settings and its training settings as one flat mapping, but how
    # runs are shown or placed; which scenes there are is part of what every run computes.
    train = {
        k: v for k, v in args.train.settings().items() if k not in execution_fields(args.train)
    }
    train["vec_env"] = train["vec_env"] or "native"
    sweep = Sweep(
        functools.partial(run_trial, args),
        Grid(scenario=tuple(every), seed=args.seeds, algo=args.algos).only(
            lambda p: runs_trial(args, p["algo"], every[p["scenario"]], p["seed"])
        ),
        args.tensorboard_dir,
        name="{scenario}/{algo}/s{seed}",
        settings={**args.sweep_settings("algos", "seeds", ignore=("train",)), **train},
    )
    start = time.perf_counter()

    def report(result: SweepResult) -> None:
        rows, curves = result.rows("runs"), result.rows("curves")
        write_csv(rows, out / "bench.csv")
        if curves:
            write_csv(curves, out / "bench_curves.csv")
        else:  # an earlier run's in this folder would read as this one's
            (out / "bench_curves.csv").unlink(missing_ok=True)
        meta = {
            "command": command,
            "machine": machine,
            "workers": result.slots,
            "wall_time_s": time.perf_counter() - start,
            "resumed": len(result.resumed),
            "trial_time_s": sum(result.seconds.values()),
            "complete": result.complete,
            "vec_env": args.train.vec_env or "native",
            "total_timesteps": args.train.total_timesteps,
            "final_episodes": args.final_episodes,
            "test_seed": args.test_seed,
            "episode_steps": args.episode_steps,
            "mix_timesteps": args.mix_timesteps if args.mix else None,
            "eval_episodes": args.train.eval_episodes,
            "n_envs": args.train.n_envs,
        }
        write_text_atomic(
            out / "bench.md", bench_markdown(rows, meta, curves) + seed_statistics_markdown(rows)
        )
        plot_learning_curves(rows, curves, out / "learning_curves.png")
        plot_performance_profiles(rows, out / "performance_profile.png")

    args.run_reported(sweep, "negdl-bench", args.train.progress_bar, report)
    return out / "bench.md"
