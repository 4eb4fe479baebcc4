"""Callbacks of training runs: periodic evaluation (logged under SB3's ``eval/`` keys, saved as
``evaluations.npz``, kept as a learning curve), short evaluation videos, and a clean stop on
request (Ctrl-C)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from negdl.checks import check_int

if TYPE_CHECKING:
    from neg_agents.algos import AlgoSpec
    from neg_agents.training import TrainConfig

#: TensorBoard names of the evaluation summary: SB3's ``EvalCallback`` keys where it has one
#: (``eval/mean_reward``, ``eval/mean_ep_length``), ours for the rest.
EVAL_TENSORBOARD_KEYS = {
    "return": "eval/mean_reward",
    "collisions_per_episode": "eval/collisions_per_episode",
    "moves_per_episode": "eval/moves_per_episode",
    "collision_free_share": "eval/collision_free_share",
    "episode_length": "eval/mean_ep_length",
}

#: The per-episode arrays of ``evaluations.npz`` (SB3's ``EvalCallback`` names first) and the
#: ``EpisodeStats`` lists they come from.
NPZ_FIELDS = {
    "results": "returns",
    "ep_lengths": "lengths",
    "collisions": "collisions",
    "moves": "moves",
}


class CollisionEvalCallback(BaseCallback):
    """Every ``eval_freq`` env steps, evaluate the model's policy (without epsilon exploration),
    log ``EVAL_TENSORBOARD_KEYS`` and keep the row (with ``timesteps``) in ``history``;
    ``eval_time_s`` is the wall time spent evaluating. With ``log_path`` every evaluation so far
    goes to ``<log_path>/evaluations.npz`` as SB3's ``EvalCallback`` writes it, plus ``NPZ_FIELDS``.

    :param eval_env: a ``VecEnv`` of single collision envs (see ``evaluate_agent``).
    :param eval_freq: env steps (summed over training envs) between evaluations, >= 1.
    :param n_eval_episodes: episodes per evaluation, >= 1.
    :param spec: the agent (``neg_agents.ALGOS``): how it acts, as in training (None:
        greedily, without masks).
    :param verbose: 1 prints each evaluation.
    :param log_path: folder for ``evaluations.npz`` (None: not written).
    :param training_collisions: the run's collision counter: each row of ``history`` then
        also holds the collisions made while learning so far (``train_collisions``).
    :param episode_seed: reset seed of the evaluation episodes, so that the points of the curve
        differ by the policy alone (None: each evaluation goes on where the last one stopped,
        as SB3's ``EvalCallback`` does).
    """

    def __init__(
        self,
        eval_env: VecEnv,
        eval_freq: int = 10_000,
        n_eval_episodes: int = 10,
        spec: AlgoSpec | None = None,
        verbose: int = 0,
        log_path: str | Path | None = None,
        training_collisions: TrainingCollisions | None = None,
        episode_seed: int | None = None,
    ) -> None:
        super().__init__(verbose)
        if episode_seed is not None:
            check_int("episode_seed", episode_seed, 0)
        self.eval_env, self.episode_seed = eval_env, episode_seed
        self.eval_freq = check_int("eval_freq", eval_freq, 1)
        self.n_eval_episodes = check_int("n_eval_episodes", n_eval_episodes, 1)
        if spec is None:
            from neg_agents.algos import AlgoSpec  # imports this package

            spec = AlgoSpec("policy", "a model's own policy")
        self.spec = spec
        self.training_collisions = training_collisions
        self.log_path = Path(log_path) / "evaluations.npz" if log_path is not None else None
        self.history: list[dict[str, Any]] = []
        self.episodes: dict[str, list[list[float]]] = {name: [] for name in NPZ_FIELDS}
        self.eval_time_s = 0.0
        self._next_eval = eval_freq

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next_eval:
            self._next_eval += self.eval_freq
            self.evaluate()
        return True

    def evaluate(self) -> dict[str, Any]:
        """Evaluate now, log and record the result."""
        start = time.perf_counter()
        if self.episode_seed is not None:
            self.eval_env.seed(self.episode_seed)  # used by the reset that starts evaluating
        stats = self.spec.evaluate(self.model.policy, self.eval_env, self.n_eval_episodes)
        self.eval_time_s += time.perf_counter() - start
        row = {"timesteps": self.num_timesteps, **stats.summary()}
        if self.training_collisions is not None:
            row["train_collisions"] = self.training_collisions.total
        self.history.append(row)
        for key, name in EVAL_TENSORBOARD_KEYS.items():
            self.logger.record(name, row[key])
        self.logger.dump(self.num_timesteps)
        for name, attribute in NPZ_FIELDS.items():
            self.episodes[name].append(list(getattr(stats, attribute)))
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            # mypy matches the ** mapping against numpy's allow_pickle keyword; the keys are names.
            np.savez(
                self.log_path,
                timesteps=np.array([r["timesteps"] for r in self.history]),
                **{name: np.array(rows) for name, rows in self.episodes.items()},  # type: ignore[arg-type]
            )
        if self.verbose:
            print(
                f"eval at {self.num_timesteps} steps: return {row['return']:.2f}, "
                f"collisions {row['collisions_per_episode']:.2f}, moves {row['moves_per_episode']:.1f}"
            )
        return row


class EvalVideoCallback(BaseCallback):
    """Every ``config.video_freq`` env steps (if > 0), and when training ends, record one short
    evaluation episode of the current policy (``--capture-video``, MP4) into
    ``<config.log_dir>/videos/eval-<env steps>-steps-episode-0.mp4``.

    :param config: the training run (env, ``video_freq``, ``video_length``, ``log_dir``).
    :param spec: the agent: how it acts, as in training (see ``record_evaluation_video``).
    :param seed: seed of every recorded episode (the same scene each time, so clips compare).
    """

    def __init__(self, config: TrainConfig, spec: AlgoSpec, seed: int) -> None:
        super().__init__()
        self.config, self.spec, self.seed = config, spec, seed
        self._next_video = config.video_freq
        self._last_recorded = -1

    def _on_step(self) -> bool:
        if self.config.video_freq and self.num_timesteps >= self._next_video:
            self._next_video += self.config.video_freq
            self.record()
        return True

    def _on_training_end(self) -> None:
        if self._last_recorded != self.num_timesteps:
            self.record()

    def record(self) -> None:
        """Record a clip of the current policy now."""
        from neg_agents.watch import record_evaluation_video

        record_evaluation_video(
            self.model.policy,
            self.spec,
            self.config.env_id,
            self.config.env_kwargs,
            Path(str(self.config.log_dir)) / "videos",
            f"eval-{self.num_timesteps:09d}-steps",
            seed=self.seed,
            max_steps=self.config.video_length,
        )
        self._last_recorded = self.num_timesteps


class TrainingCollisions(BaseCallback):
    """Count the collisions the agent makes while it learns (exploration and warm-up included),
    the cost of training safe-RL suites report beside the final return: every training env
    step's ``info["collisions"]``, summed over the parallel envs, logged as
    ``rollout/collisions_total`` and ``rollout/collisions_per_1k_steps``."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def _record(self) -> None:
        steps = self.num_timesteps
        self.logger.record("rollout/collisions_total", self.total)
        per_1k = 1000.0 * self.total / steps if steps else float("nan")
        self.logger.record("rollout/collisions_per_1k_steps", per_1k)

    def _on_step(self) -> bool:
        self.total += sum(info.get("collisions", 0) for info in self.locals["infos"])
        self._record()
        return True

    def _on_training_end(self) -> None:
        self._record()
        self.logger.dump(self.num_timesteps)


class StopOnRequest(BaseCallback):
    """End training cleanly at the next step once ``should_stop()`` is true, e.g. after Ctrl-C
    (``negdl.interrupt.StopOnSignal``): ``learn`` returns and the model can be saved."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        super().__init__()
        self.should_stop = should_stop
        self.stopped_at: int | None = None

    def _on_step(self) -> bool:
        if self.should_stop():
            self.stopped_at = self.num_timesteps
            return False
        return True
