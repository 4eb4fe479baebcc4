"""Evaluate an agent on a ``VecEnv`` of collision envs: return, collisions, moves per episode."""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.type_aliases import PolicyPredictor
from stable_baselines3.common.vec_env import VecEnv

from neg_envs.episodes import Episode, EpisodeStats
from negdl.checks import check_int


def predicted(agent: PolicyPredictor, obs: Any, deterministic: bool, masks: Any) -> Any:
    """``agent.predict``'s actions for ``obs``, passing ``action_masks=masks`` unless None (for
    sb3-contrib's maskable policies, the shielded agents, ``MaskedRandomAgent``)."""
    kwargs: dict[str, Any] = {} if masks is None else {"action_masks": masks}
    return agent.predict(obs, deterministic=deterministic, **kwargs)[0]


def evaluate_agent(
    agent: PolicyPredictor,
    env: VecEnv,
    n_episodes: int,
    deterministic: bool = True,
    action_masks: bool = False,
) -> EpisodeStats:
    """Run ``n_episodes`` (>= 1) full episodes of ``agent`` (anything with SB3's ``predict``) on
    ``env`` (a ``VecEnv`` whose infos carry ``collisions`` and ``moved``) and count what happened.

    All sub-envs step together (one batched ``predict`` per step); episodes are split evenly
    over them before starting (as SB3's ``evaluate_policy`` does), so short episodes do not
    crowd out long ones. One episode at a time, e.g. on screen: ``neg_envs.episodes.play_episodes``.

    :param action_masks: pass the envs' ``action_masks()`` to ``predict`` (maskable agents).
    """
    check_int("n_episodes", n_episodes, 1)
    if not isinstance(env, VecEnv):
        raise TypeError(
            f"evaluate_agent steps a VecEnv, e.g. neg_agents.make_env(env_id, n_envs), not "
            f"{type(env).__name__}; one episode at a time: neg_envs.episodes.play_episodes"
        )
    n_envs = env.num_envs
    quota = np.array([(n_episodes + i) // n_envs for i in range(n_envs)], dtype=int)
    done_count = np.zeros(n_envs, dtype=int)
    running = [Episode() for _ in range(n_envs)]
    stats = EpisodeStats()
    obs = env.reset()
    while (done_count < quota).any():
        masks = np.stack(env.env_method("action_masks")) if action_masks else None
        if isinstance(obs, tuple):  # SB3's agents take array or dict observations
            raise ValueError("predict takes array or dict observations, not tuples")
        actions = predicted(agent, obs, deterministic, masks)
        obs, rewards, dones, infos = env.step(actions)
        for i, info in enumerate(infos):
            if "moved" not in info:
                raise KeyError(
                    "evaluate_agent needs info['moved'] and info['collisions']; use a VecEnv of NegCollision envs"
                )
            running[i].record(rewards[i], info)
            if dones[i]:
                if done_count[i] < quota[i]:
                    stats.add(running[i])
                    done_count[i] += 1
                running[i] = Episode()
    return stats
