"""Build, train and time one agent: the code path shared by the train and bench scripts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from neg_agents.algos import get_algo
from neg_agents.common.callbacks import CollisionEvalCallback
from neg_agents.common.env_util import make_env
from neg_agents.common.extractors import collision_policy_kwargs
from neg_agents.hyperparams import EXTRACTOR_KWARGS, N_ENVS, N_TIMESTEPS, hyperparams_for

#: Eval envs get seeds far from the training envs' ``seed + i``.
EVAL_SEED_OFFSET = 10_000


@dataclass
class TrainResult:
    """A trained model, its learning curve (``CollisionEvalCallback.history``) and its timing.

    ``wall_time_s`` is the whole ``learn`` call; ``eval_time_s`` the part spent in the periodic
    evaluations that draw the learning curve, which training does not need.
    """

    model: BaseAlgorithm
    hyperparams: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    wall_time_s: float = 0.0
    eval_time_s: float = 0.0

    @property
    def train_time_s(self) -> float:
        """Wall time of training alone: env steps and updates, without the evaluations."""
        return self.wall_time_s - self.eval_time_s

    @property
    def steps_per_s(self) -> float:
        """Env steps per second of training (updates included, evaluations not)."""
        return (
            self.model.num_timesteps / self.train_time_s if self.train_time_s > 0 else float("nan")
        )


def check_timesteps(total_timesteps: int) -> int:
    if (
        isinstance(total_timesteps, bool)
        or not isinstance(total_timesteps, int)
        or total_timesteps < 1
    ):
        raise ValueError(
            f"total_timesteps must be a positive integer (env steps to train for), got {total_timesteps!r}"
        )
    return total_timesteps


def train_agent(
    algo: str,
    env_id: str = "NegCollision-v0",
    env_kwargs: dict[str, Any] | None = None,
    total_timesteps: int = N_TIMESTEPS,
    seed: int = 0,
    n_envs: int = N_ENVS,
    vec_env: str = "dummy",
    hyperparams: dict[str, Any] | None = None,
    tensorboard_log: str | None = None,
    tb_log_name: str | None = None,
    eval_freq: int = 10_000,
    eval_episodes: int = 10,
    callbacks: list[BaseCallback] | None = None,
    progress_bar: bool = False,
    device: str = "auto",
    verbose: int = 0,
) -> TrainResult:
    """Train ``algo`` (a name in ``neg_agents.ALGOS``) from its default hyperparameters.

    :param algo: a trainable agent name, e.g. ``"neg-reward-dqn"``.
    :param env_id: registered env id.
    :param env_kwargs: env options, e.g. ``{"num_obstacles": 30}``.
    :param total_timesteps: env steps to train for (summed over the ``n_envs`` envs), >= 1.
    :param seed: seeds the model, the training envs (``seed + i``) and the eval envs.
    :param n_envs: parallel training envs.
    :param vec_env: ``"dummy"``, ``"subproc"`` or ``"native"`` (see ``make_env``).
    :param hyperparams: overrides of ``neg_agents.hyperparams.hyperparams_for(algo)``.
    :param tensorboard_log: TensorBoard folder (None: no TensorBoard).
    :param tb_log_name: run name inside ``tensorboard_log`` (default: the algorithm's name).
    :param eval_freq: env steps between evaluations (0: none).
    :param eval_episodes: episodes per evaluation.
    :param callbacks: more SB3 callbacks (e.g. a ``CheckpointCallback``).
    :param progress_bar: show SB3's progress bar.
    :param device: torch device (``"auto"``: CUDA when available).
    :param verbose: SB3 verbosity.
    """
    spec = get_algo(algo)
    if not spec.trainable:
        raise ValueError(
            f"{algo} is a baseline that learns nothing; evaluate it with negdl-bench instead of training it"
        )
    check_timesteps(total_timesteps)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if eval_freq < 0:
        raise ValueError(f"eval_freq must be >= 0 (0 turns evaluation off), got {eval_freq}")
    if eval_freq and eval_episodes < 1:
        raise ValueError(f"eval_episodes must be >= 1 (or eval_freq 0), got {eval_episodes}")
    params = {**hyperparams_for(algo), **(hyperparams or {})}
    env = make_env(env_id, n_envs, seed, env_kwargs, vec_env, spec.negative_actions)
    # Every DQN variant, SB3's included, gets the obstacle-set extractor on NegCollision envs.
    params["policy_kwargs"] = collision_policy_kwargs(
        params.get("policy_kwargs"), env, **EXTRACTOR_KWARGS
    )
    all_callbacks = list(callbacks or [])
    evaluator = None
    if eval_freq:
        eval_env = make_env(
            env_id,
            min(eval_episodes, 10),
            seed + EVAL_SEED_OFFSET,
            env_kwargs,
            "dummy",
            spec.negative_actions,
        )
        evaluator = CollisionEvalCallback(eval_env, eval_freq, eval_episodes, spec.deterministic)
        all_callbacks.append(evaluator)
    try:
        model = spec.model_class(
            "MlpPolicy",
            env,
            seed=seed,
            tensorboard_log=tensorboard_log,
            device=device,
            verbose=verbose,
            **params,
        )
    except TypeError as error:
        raise ValueError(f"bad hyperparameter for {algo}: {error}") from error
    start = time.perf_counter()
    model.learn(
        total_timesteps,
        callback=CallbackList(all_callbacks),
        tb_log_name=tb_log_name or algo,
        progress_bar=progress_bar,
    )
    wall = time.perf_counter() - start
    history = evaluator.history if evaluator is not None else []
    eval_time = evaluator.eval_time_s if evaluator is not None else 0.0
    if evaluator is not None:
        evaluator.eval_env.close()
    return TrainResult(model, params, history, wall, eval_time)
