"""Callbacks of training runs: periodic evaluation logged under ``eval/`` and kept as a learning
curve; a clean stop on request (Ctrl-C)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from neg_agents.common.evaluation import evaluate_agent
from negdl.checks import check_int


class CollisionEvalCallback(BaseCallback):
    """Every ``eval_freq`` env steps, evaluate the model's policy (without epsilon exploration) and log ``eval/return``,
    ``eval/collisions_per_episode``, ``eval/moves_per_episode``, ``eval/collision_free_share`` and
    ``eval/episode_length``; ``history`` keeps the rows (with ``timesteps``) for plots.

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
        check_int("eval_freq", eval_freq, 1)
        check_int("n_eval_episodes", n_eval_episodes, 1)
        self.eval_env = eval_env
        self.eval_freq = eval_freq
        self.n_eval_episodes = n_eval_episodes
        self.deterministic = deterministic
        self.history: list[dict[str, Any]] = []
        self._next_eval = eval_freq

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next_eval:
            self._next_eval += self.eval_freq
            self.evaluate()
        return True

    def evaluate(self) -> dict[str, Any]:
        """Evaluate now, log and record the result."""
        stats = evaluate_agent(
            self.model.policy, self.eval_env, self.n_eval_episodes, self.deterministic
        )
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


class StopOnRequest(BaseCallback):
    """End training cleanly at the next step once ``should_stop()`` is true, e.g. after Ctrl-C
    (``negdl.interrupt.StopOnSignal``): ``learn`` returns and the model can be saved.

    :param should_stop: asked after every env step.
    """

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        super().__init__()
        self.should_stop = should_stop
        self.stopped_at: int | None = None

    def _on_step(self) -> bool:
        if self.should_stop():
            self.stopped_at = self.num_timesteps
            return False
        return True
