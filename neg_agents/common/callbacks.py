"""Periodic evaluation during training, logged under ``eval/`` and kept as a learning curve."""

from __future__ import annotations

import time
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from neg_agents.common.evaluation import evaluate_agent


class CollisionEvalCallback(BaseCallback):
    """Every ``eval_freq`` env steps, evaluate the model's policy (without epsilon exploration) and log ``eval/return``,
    ``eval/collisions_per_episode``, ``eval/moves_per_episode``, ``eval/collision_free_share`` and
    ``eval/episode_length``; ``history`` keeps the rows (with ``timesteps``) for plots and
    ``eval_time_s`` the wall time spent evaluating (so training time can be told apart).

    :param eval_env: a ``VecEnv`` of single collision envs (see ``evaluate_agent``).
    :param eval_freq: env steps (summed over training envs) between evaluations, >= 1.
    :param n_eval_episodes: episodes per evaluation, >= 1.
    :param deterministic: passed to ``predict``.
    :param verbose: 1 prints each evaluation.
    """

    def __init__(
        self,
        eval_env: VecEnv,
        eval_freq: int = 10_000,
        n_eval_episodes: int = 10,
        deterministic: bool = True,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if eval_freq < 1 or n_eval_episodes < 1:
            raise ValueError(
                f"eval_freq and n_eval_episodes must be >= 1, got {eval_freq}, {n_eval_episodes}"
            )
        self.eval_env = eval_env
        self.eval_freq = eval_freq
        self.n_eval_episodes = n_eval_episodes
        self.deterministic = deterministic
        self.history: list[dict[str, Any]] = []
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
        stats = evaluate_agent(
            self.model.policy, self.eval_env, self.n_eval_episodes, self.deterministic
        )
        self.eval_time_s += time.perf_counter() - start
        row = {"timesteps": self.num_timesteps, **stats.summary()}
        self.history.append(row)
        for key, value in row.items():
            if key != "timesteps":
                self.logger.record(f"eval/{key}", value)
        self.logger.dump(self.num_timesteps)
        if self.verbose:
            print(
                f"eval at {self.num_timesteps} steps: return {row['return']:.2f}, "
                f"collisions {row['collisions_per_episode']:.2f}, moves {row['moves_per_episode']:.1f}"
            )
        return row
