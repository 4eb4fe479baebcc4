"""Episode statistics of collision avoidance: return, collisions, moves, collision-free share."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from stable_baselines3.common.type_aliases import PolicyPredictor
from stable_baselines3.common.vec_env import VecEnv


@dataclass
class EpisodeStats:
    """Per-episode results of one evaluation."""

    returns: list[float] = field(default_factory=list)
    collisions: list[int] = field(default_factory=list)
    moves: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """Means over episodes, under the names the TensorBoard ``eval/`` keys and tables use."""
        collisions = np.asarray(self.collisions)
        return {
            "return": float(np.mean(self.returns)),
            "collisions_per_episode": float(collisions.mean()),
            "moves_per_episode": float(np.mean(self.moves)),
            "collision_free_share": float((collisions == 0).mean()),
            "episode_length": float(np.mean(self.lengths)),
        }


def evaluate_agent(
    agent: PolicyPredictor, env: VecEnv, n_episodes: int, deterministic: bool = True
) -> EpisodeStats:
    """Run ``n_episodes`` full episodes of ``agent`` on ``env`` and count what happened.

    Episodes are split evenly over the sub-envs before starting (as SB3's ``evaluate_policy``
    does), so short episodes do not crowd out long ones. Moves are read from ``info["moved"]``,
    which counts the *executed* action (what a ``NegativeActionWrapper`` really ran).

    :param agent: anything with SB3's ``predict`` (a model or a baseline).
    :param env: a ``VecEnv`` of single envs whose infos carry ``collisions`` and ``moved``.
    :param n_episodes: episodes to finish, >= 1.
    :param deterministic: passed to ``agent.predict``.
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    n_envs = env.num_envs
    quota = np.array([(n_episodes + i) // n_envs for i in range(n_envs)], dtype=int)
    done_count = np.zeros(n_envs, dtype=int)
    ret, hits, moves, steps = (np.zeros(n_envs) for _ in range(4))
    stats = EpisodeStats()
    obs = env.reset()
    while (done_count < quota).any():
        actions, _ = agent.predict(obs, deterministic=deterministic)
        obs, rewards, dones, infos = env.step(actions)
        for i, info in enumerate(infos):
            if "moved" not in info:
                raise KeyError(
                    "evaluate_agent needs info['moved'] and info['collisions']; use a VecEnv of NegCollision envs"
                )
            ret[i] += rewards[i]
            hits[i] += info["collisions"]
            moves[i] += info["moved"]
            steps[i] += 1
            if dones[i]:
                if done_count[i] < quota[i]:
                    stats.returns.append(float(ret[i]))
                    stats.collisions.append(int(hits[i]))
                    stats.moves.append(int(moves[i]))
                    stats.lengths.append(int(steps[i]))
                    done_count[i] += 1
                ret[i] = hits[i] = moves[i] = steps[i] = 0
    return stats
