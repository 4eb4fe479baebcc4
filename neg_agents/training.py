"""Train one agent from a ``TrainConfig``: the code path shared by ``negdl-train`` and the bench."""

from __future__ import annotations

import inspect
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Any

import stable_baselines3
import torch
import tyro
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback

from neg_agents.algos import MAIN_ALGO, get_algo
from neg_agents.common.callbacks import (
    CollisionEvalCallback,
    EvalVideoCallback,
    StopOnRequest,
    TrainingCollisions,
)
from neg_agents.common.dqn_arguments import (
    check_dqn_arguments,
    check_replay_buffer_memory,
    sb3_learning_rate,
)
from neg_agents.common.env_util import VEC_ENV_KINDS, check_vec_env, collision_config
from neg_agents.common.extractors import collision_policy_kwargs
from neg_agents.hyperparams import (
    AGENT_DEVICE,
    EXTRACTOR_KWARGS,
    N_ENVS,
    N_TIMESTEPS,
    hyperparams_for,
)
from neg_agents.model_io import save_run, write_config
from neg_agents.video import check_video_capture
from negdl.checks import check_bool, check_choice, check_int, check_number
from negdl.cli import NAME_VALUE_OPTIONS
from negdl.devices import resolve_device
from negdl.sweeps import execution_only

#: Eval envs (the learning curves' validation episodes) get seeds far from the training envs'
#: ``seed + i``.
EVAL_SEED_OFFSET = 10_000
#: Parallel envs of the learning curves' evaluations (episodes are split evenly over them).
EVAL_ENVS = 50


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """How an agent trains, whatever it trains on: the settings ``TrainConfig`` and the bench's
    ``BenchConfig`` share (keyword-only). Constructing one checks them.

    :param total_timesteps: env steps to train for, summed over the parallel envs, >= 1.
    :param n_envs: parallel training envs, >= 1.
    :param vec_env: how to step the envs: dummy (in process), subproc (one process each) or
        native (batched NegCollisionVectorEnv), see ``make_env``; None: native where the env
        has it and the agent acts on it directly, else dummy (``preferred_vec_env``).
    :param eval_freq: evaluate every this many env steps, logged as eval/* (0: none).
    :param eval_episodes: episodes per evaluation.
    :param progress_bar: show a progress bar.
    :param device: torch device: cpu (the default, see ``hyperparams.AGENT_DEVICE``), cuda, or
        auto (CUDA when available); a device this machine does not have is an error.
    :param capture_video: record short evaluation videos (MP4, written as ``negdl-watch``
        writes them; needs the ``video`` extra) into ``<log_dir>/videos`` (``train_agent``
        needs a ``log_dir`` then).
    """

    total_timesteps: int = N_TIMESTEPS
    n_envs: int = N_ENVS
    vec_env: str | None = None
    eval_freq: int = 10_000
    eval_episodes: int = 10
    progress_bar: bool = execution_only(False)
    device: str = execution_only(AGENT_DEVICE)
    capture_video: bool = False

    def __post_init__(self) -> None:
        check_int("total_timesteps", self.total_timesteps, 1)
        check_int("n_envs", self.n_envs, 1)
        if self.vec_env is not None:
            check_choice("vec_env", self.vec_env, VEC_ENV_KINDS)
        check_int("eval_freq", self.eval_freq, 0)
        if self.eval_freq:
            check_int("eval_episodes", self.eval_episodes, 1)
        check_bool("progress_bar", self.progress_bar)
        resolve_device(self.device)
        check_bool("capture_video", self.capture_video)
        if self.capture_video:
            check_video_capture()

    def settings(self) -> dict[str, Any]:
        """These settings alone, as keyword arguments (e.g. for a ``TrainConfig``)."""
        return {item.name: getattr(self, item.name) for item in fields(TrainSettings)}


@dataclass(frozen=True)
class TrainConfig(TrainSettings):
    """Every setting of one training run: what to train on, and how (``TrainSettings``'s
    fields, keyword-only); constructing one checks them. It is also ``negdl-train``'s command
    line (each field a flag) and what ``config.json`` records.

    :param algo: agent to train (``neg_agents.ALGOS``): neg-reward-dqn(-shielded),
        neg-action-dqn(-shielded), maskable-ppo (negdl[contrib]), dqn-negative-actions or dqn.
    :param env_id: registered Gymnasium env id.
    :param env_kwargs: env options, e.g. ``{"num_obstacles": 30}`` (on the command line
        name=value, e.g. num_obstacles=30 obstacle_speed=0.02).
    :param seed: seed of the model and the envs (env i gets seed + i; the eval envs seeds far
        from them), >= 0.
    :param hyperparams: overrides of the default hyperparameters
        (``neg_agents.hyperparams.hyperparams_for(algo)``), e.g. learning_rate=5e-4 gamma=0.9.
    :param tensorboard_log: TensorBoard folder (None: no TensorBoard; negdl-train: <run
        dir>/tensorboard).
    :param tb_log_name: run name inside ``tensorboard_log`` (None: the algorithm's name).
    :param verbose: SB3 verbosity, 0 to 2 (1 prints training stats).
    :param log_dir: folder for the files SB3 and rl-zoo3 users look for: the training
        episodes' ``monitor.csv`` files and ``evaluations.npz`` (None: neither is written).
    :param video_freq: env steps between videos with capture_video, >= 0 (0: only one); one is
        always recorded at the end.
    :param video_length: steps per video, >= 1.
    """

    algo: str = MAIN_ALGO
    env_id: str = "NegCollision-v0"
    env_kwargs: Annotated[dict[str, Any], NAME_VALUE_OPTIONS] = field(default_factory=dict)
    seed: int = 0
    hyperparams: Annotated[dict[str, Any], NAME_VALUE_OPTIONS] = field(default_factory=dict)
    # The command line names it --tensorboard-dir, as it always has.
    tensorboard_log: Annotated[str | None, tyro.conf.arg(name="tensorboard-dir")] = None
    tb_log_name: Annotated[str | None, tyro.conf.Suppress] = None
    verbose: int = 0
    log_dir: Annotated[str | None, tyro.conf.Suppress] = None
    video_freq: int = 50_000
    video_length: int = 200

    def __post_init__(self) -> None:
        spec = get_algo(self.algo)
        if not spec.trainable:
            raise ValueError(
                f"{self.algo} is a baseline that learns nothing; evaluate it with negdl-bench instead of training it"
            )
        if not isinstance(self.env_id, str) or not self.env_id:
            raise ValueError(f"env_id must be a registered env id, got {self.env_id!r}")
        for name in ("env_kwargs", "hyperparams"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be a dict, got {getattr(self, name)!r}")
        check_int("seed", self.seed, 0, 2**32 - 1)
        super().__post_init__()
        check_int("verbose", self.verbose, 0, 2)
        check_hyperparams(spec.algorithm, {**hyperparams_for(self.algo), **self.hyperparams})
        if self.vec_env is not None:  # before negdl-train makes the run's folder
            check_vec_env(self.env_id, self.vec_env, spec.negative_actions)
        if self.log_dir is not None and not isinstance(self.log_dir, str):
            raise ValueError(f"log_dir must be a folder name or None, got {self.log_dir!r}")
        if self.capture_video:
            check_int("video_freq", self.video_freq, 0)
            check_int("video_length", self.video_length, 1)


#: Constructor arguments ``TrainConfig`` sets itself, not hyperparameters.
RUN_SETTINGS = ("policy", "env", "seed", "tensorboard_log", "device", "verbose")


def close_env(model: BaseAlgorithm) -> None:
    """Close the env ``model`` trained in (if it still has one)."""
    env = model.get_env()
    if env is not None:
        env.close()


def check_hyperparams(model_class: type[BaseAlgorithm], params: dict[str, Any]) -> None:
    """Raise a ``ValueError`` naming a hyperparameter ``model_class`` does not take, or one with
    a bad value (``check_dqn_arguments``)."""
    # Each name's default, the most derived class first: what a class passes on through
    # **kwargs is its base's to accept.
    defaults: dict[str, Any] = {}
    for cls in model_class.__mro__:
        # Read, never called: mypy's unsoundness warning is about calling it.
        parameters = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
        for name, parameter in parameters.items():
            if name not in {"self", "args", "kwargs", "_init_setup_model"}:
                defaults.setdefault(name, parameter.default)
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            break
    for name, value in params.items():
        if name in RUN_SETTINGS:
            raise ValueError(f"{name} is a setting of the run, not a hyperparameter; set it there")
        if name not in defaults:
            raise ValueError(
                f"unknown hyperparameter {name!r} for {model_class.__name__}; it takes: "
                f"{', '.join(sorted(set(defaults) - set(RUN_SETTINGS)))}"
            )
        # Of the type of its default (a number may be a schedule, SB3's (n, unit) frequency or,
        # for learning_rate, "lin_<rate>", which check_dqn_arguments checks), so a typo such as
        # n_epochs=abc is one clear error; ranges are the algorithm's checks.
        schedule = callable(value) or isinstance(value, tuple) or name == "learning_rate"
        if isinstance(defaults[name], bool):
            check_bool(name, value)
        elif isinstance(defaults[name], (int, float)) and not schedule:
            check_number(name, value, allow_inf=True)
    check_dqn_arguments(params)


@dataclass
class TrainResult:
    """A trained model, its learning curve (``CollisionEvalCallback.history``), its timing and
    whether it was stopped early (``should_stop``, after ``model.num_timesteps`` steps)."""

    model: BaseAlgorithm
    #: What it was built with: the agent's defaults and the config's hyperparams.
    hyperparams: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    #: The whole ``learn`` call, and the part spent in the learning curve's evaluations.
    wall_time_s: float = 0.0
    eval_time_s: float = 0.0
    interrupted: bool = False
    #: Collisions made in the training envs while learning (``TrainingCollisions``).
    train_collisions: int = 0

    @property
    def train_collisions_per_1k(self) -> float:
        """Collisions while learning per 1,000 env steps."""
        steps = self.model.num_timesteps
        return 1000.0 * self.train_collisions / steps if steps else float("nan")

    @property
    def train_time_s(self) -> float:
        """Wall time of training alone: env steps and updates, without the evaluations."""
        return self.wall_time_s - self.eval_time_s

    @property
    def steps_per_s(self) -> float:
        """Env steps per second of training (updates included, evaluations not)."""
        seconds = self.train_time_s
        return self.model.num_timesteps / seconds if seconds > 0 else float("nan")

    def summary(self) -> str:
        """One line: wall time, training time, throughput and the last evaluation."""
        text = (
            f"{self.wall_time_s:.0f} s ({self.train_time_s:.0f} s training, the rest evaluating; "
            f"{self.steps_per_s:.0f} env steps/s; {self.train_collisions} collisions while "
            f"learning, {self.train_collisions_per_1k:.2f} per 1,000 steps)"
        )
        if self.history:
            last = self.history[-1]
            text += (
                f"; last eval: return {last['return']:.2f}, "
                f"collisions/episode {last['collisions_per_episode']:.2f}"
            )
        return text


def train_agent(
    config: TrainConfig | str = MAIN_ALGO,
    /,
    *,
    callbacks: Sequence[BaseCallback] | None = None,
    should_stop: Callable[[], bool] | None = None,
    **settings: Any,
) -> TrainResult:
    """Train an agent from its default hyperparameters as ``config`` says.

    ``train_agent("neg-action-dqn", seed=1)`` is short for
    ``train_agent(TrainConfig(algo="neg-action-dqn", seed=1))``.

    :param config: the run's settings, or just the agent's name.
    :param callbacks: more SB3 callbacks (e.g. a ``CheckpointCallback``).
    :param should_stop: asked after every env step; once it returns True training ends there
        and the result says ``interrupted`` (``negdl.interrupt.StopOnSignal`` after Ctrl-C).
    :param settings: ``TrainConfig`` fields that replace those of ``config``.
    :raises ValueError: an env without discrete actions or Box observations, a bad setting.
    :raises negdl.resources.MemoryLimitError: the replay buffer would not fit in memory.
    """
    config = replace(TrainConfig(config) if isinstance(config, str) else config, **settings)
    spec = get_algo(config.algo)
    if config.capture_video and config.log_dir is None:
        raise ValueError("capture_video needs log_dir, the folder the videos go to")
    env = spec.make_env(
        config.env_id, config.n_envs, config.seed, config.env_kwargs, config.vec_env, config.log_dir
    )
    try:
        model = build_model(config, env)
        if (config.eval_freq or config.capture_video) and collision_config(env) is None:
            # Checked before training, which would otherwise end at the first evaluation.
            raise ValueError(
                f"evaluations and videos count the collisions and moves of NegCollision envs; "
                f"{config.env_id} is not one: train on it with eval_freq=0 (--eval-freq 0) "
                "and without capture_video"
            )
    except BaseException:
        env.close()
        raise
    counter = TrainingCollisions()
    stopper = StopOnRequest(should_stop or (lambda: False))
    all_callbacks = [counter, *(callbacks or []), stopper]
    evaluator = None
    eval_seed = config.seed + EVAL_SEED_OFFSET
    if config.eval_freq:
        eval_env = spec.make_env(
            config.env_id, min(config.eval_episodes, EVAL_ENVS), eval_seed, config.env_kwargs
        )
        evaluator = CollisionEvalCallback(
            eval_env,
            config.eval_freq,
            config.eval_episodes,
            spec,
            log_path=config.log_dir,
            training_collisions=counter,
            episode_seed=eval_seed,
        )
        all_callbacks.append(evaluator)
    if config.capture_video:
        all_callbacks.append(EvalVideoCallback(config, spec, eval_seed))
    start = time.perf_counter()
    model.learn(
        config.total_timesteps,
        callback=CallbackList(all_callbacks),
        tb_log_name=config.tb_log_name or config.algo,
        progress_bar=config.progress_bar,
    )
    result = TrainResult(
        model,
        {**hyperparams_for(config.algo), **config.hyperparams},
        wall_time_s=time.perf_counter() - start,
        interrupted=stopper.stopped_at is not None,
        train_collisions=counter.total,
    )
    if evaluator is not None:
        result.history, result.eval_time_s = evaluator.history, evaluator.eval_time_s
        evaluator.eval_env.close()
    return result


def build_model(config: TrainConfig, env: Any) -> BaseAlgorithm:
    """The untrained model ``config`` describes, acting in ``env`` (what ``train_agent`` trains
    and ``neg_agents.model_io.load_agent`` loads weights into).

    :raises ValueError: a hyperparameter the algorithm does not take, an env it cannot act in.
    :raises negdl.resources.MemoryLimitError: the replay buffer would not fit in memory.
    """
    params = {**hyperparams_for(config.algo), **config.hyperparams}
    if not isinstance(env.action_space, spaces.Discrete):
        raise ValueError(
            f"{config.algo} needs an env with discrete actions (Discrete); {config.env_id} has "
            f"{env.action_space}: pick another env id"
        )
    if not isinstance(env.observation_space, spaces.Box):
        raise ValueError(
            f"{config.algo} needs Box observations; {config.env_id} has {env.observation_space}"
        )
    if "buffer_size" in params:  # off-policy agents (MaskablePPO keeps no replay buffer)
        check_replay_buffer_memory(
            params["buffer_size"],
            env.observation_space,
            env.action_space,
            params.get("optimize_memory_usage", False),
        )
    model_class = get_algo(config.algo).algorithm
    # "lin_<start>" (kept so in the config) becomes the schedule SB3's algorithms take.
    params["learning_rate"] = sb3_learning_rate(params["learning_rate"])
    if issubclass(model_class, DQN):
        # Every DQN variant, SB3's included, gets the obstacle-set extractor on NegCollision envs.
        params["policy_kwargs"] = collision_policy_kwargs(
            params.get("policy_kwargs"), env, **EXTRACTOR_KWARGS
        )
    try:
        return model_class(
            "MlpPolicy",
            env,
            seed=config.seed,
            tensorboard_log=config.tensorboard_log,
            device=config.device,
            verbose=config.verbose,
            **params,
        )
    except TypeError as error:
        raise ValueError(f"bad hyperparameter for {config.algo}: {error}") from error


def train_and_save(
    config: TrainConfig,
    run_dir: str | Path,
    checkpoint_freq: int = 0,
    checkpoint_dir: str | Path | None = None,
    extra: dict[str, Any] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train as ``config`` says and save the run into ``run_dir``: ``model.zip``,
    ``config.json``, the ``monitor.csv`` files and ``evaluations.npz`` (``config.log_dir``
    defaults to ``run_dir``).

    ``config.json`` is written when training starts (``"finished": null``) and again at the
    end, with every setting (``extra``'s, then ``config``'s), the hyperparameters, the device,
    timings, the last evaluation, the library versions and whether training was interrupted
    (a run stopped by ``should_stop`` is saved all the same).

    :param config: the training run.
    :param run_dir: the run's folder (see ``neg_agents.run_dirs.new_run_dir``).
    :param checkpoint_freq: save a checkpoint every this many env steps, >= 0 (0: none).
    :param checkpoint_dir: checkpoint folder (None: ``<run_dir>/checkpoints``).
    :param extra: more entries for ``config.json``.
    :param should_stop: see :func:`train_agent`.
    """
    check_int("checkpoint_freq", checkpoint_freq, 0)
    run_dir = Path(run_dir)
    if config.log_dir is None:
        config = replace(config, log_dir=str(run_dir))
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else run_dir / "checkpoints"
    callbacks = []
    if checkpoint_freq:
        callbacks.append(
            CheckpointCallback(
                save_freq=max(checkpoint_freq // config.n_envs, 1),
                save_path=str(checkpoint_dir),
                name_prefix=config.algo,
            )
        )
    record = {
        **(extra or {}),
        **asdict(config),
        "checkpoint_freq": checkpoint_freq,
        "checkpoint_dir": str(checkpoint_dir) if checkpoint_freq else None,
        "hyperparams": {**hyperparams_for(config.algo), **config.hyperparams},
        "negative_actions": get_algo(config.algo).negative_actions,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "stable_baselines3": stable_baselines3.__version__,
        },
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "finished": None,
    }
    write_config(record, run_dir)  # marks the folder as a run from the start
    result = train_agent(config, callbacks=callbacks, should_stop=should_stop)
    record.update(
        device_used=str(result.model.device),
        interrupted=result.interrupted,
        num_timesteps=result.model.num_timesteps,
        wall_time_s=round(result.wall_time_s, 2),
        train_time_s=round(result.train_time_s, 2),
        env_steps_per_s=round(result.steps_per_s, 1),
        train_collisions=result.train_collisions,
        final_eval=result.history[-1] if result.history else None,
        finished=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    )
    save_run(result.model, record, run_dir)
    close_env(result.model)
    return result
