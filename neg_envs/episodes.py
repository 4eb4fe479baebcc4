"""Episodes of a collision env: what one episode cost (from the env's own ``info``, so what the
env really did), and a loop that plays them one by one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from negdl.checks import check_int


@dataclass
class Episode:
    """Running totals of one episode, built step by step with :meth:`record`."""

    total_return: float = 0.0
    collisions: int = 0
    moves: int = 0
    steps: int = 0

    def record(self, reward: SupportsFloat, info: dict[str, Any]) -> None:
        """Add one step: its reward and the env's ``info`` (``collisions``, ``moved``)."""
        self.total_return += float(reward)
        self.collisions += int(info["collisions"])
        self.moves += int(info["moved"])
        self.steps += 1


@dataclass
class EpisodeStats:
    """Per-episode results of one evaluation."""

    returns: list[float] = field(default_factory=list)
    collisions: list[int] = field(default_factory=list)
    moves: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)

    def add(self, episode: Episode) -> None:
        self.returns.append(episode.total_return)
        self.collisions.append(episode.collisions)
        self.moves.append(episode.moves)
        self.lengths.append(episode.steps)

    def summary(self) -> dict[str, float]:
        """Means over episodes, under the names the TensorBoard ``eval/`` keys and tables use."""
        collisions = np.asarray(self.collisions)
        return {
            "return": float(np.mean(self.returns)),
            "collisions_per_episode": float(collisions.mean()),
            "moves_per_episode": float(np.mean(self.moves)),
            "collision_free_share": float((collisions == 0).mean()),
            "episode_length": float(np.mean(self.lengths)),
            "episodes": len(self.returns),
            "return_ci95": ci95(self.returns),
            "collisions_ci95": ci95(self.collisions),
        }


def ci95(values: Any) -> float:
    """Half-width of the normal 95% confidence interval of the mean of ``values`` (1.96 standard
    errors; NaN for fewer than two values)."""
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return float("nan")
    return float(1.96 * values.std(ddof=1) / np.sqrt(values.size))


def play_episodes(
    env: gym.Env,
    act: Callable[[Any], Any | None],
    episodes: int,
    seed: int = 0,
    max_steps: int = 0,
    on_state: Callable[[], None] | None = None,
) -> Iterator[Episode]:
    """Play ``episodes`` (>= 1) episodes of ``env``, episode ``k`` from ``reset(seed=seed + k)``
    (each can be replayed on its own), and yield each as it ends: negdl's one episode loop.

    :param act: the action for an observation, or None to stop playing (e.g. the player quit).
    :param max_steps: end an episode after this many steps (0: when the env ends it).
    :param on_state: called after the reset and after every step (e.g. to grab a frame).
    """
    check_int("episodes", episodes, 1, 10**9)
    check_int("max_steps", max_steps, 0, 10**12)
    check_int("seed", seed, 0, 2**63 - 1)
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        if on_state is not None:
            on_state()
        episode, done = Episode(), False
        while not done and (max_steps == 0 or episode.steps < max_steps):
            action = act(obs)
            if action is None:
                return
            obs, reward, terminated, truncated, info = env.step(action)
            episode.record(reward, info)
            done = terminated or truncated
            if on_state is not None:
                on_state()
        yield episode
