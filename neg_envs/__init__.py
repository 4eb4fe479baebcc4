"""Gymnasium environments in which an agent is only ever punished.

Importing this package registers:

- ``NegCollision-v0``: 10 obstacles, the source's absolute observation (size 2 + 4N),
  500 steps per episode.
- ``NegCollisionCrowd-v0``: 300 small obstacles, egocentric observation of the 16 nearest.

Both have a natively batched version: ``gym.make_vec(id, num_envs=...)``. The package needs
only gymnasium, numpy and (to render) pygame; ``neg_agents.SB3VecEnvAdapter`` hands the
batched env to stable-baselines3.
"""

import multiprocessing

from gymnasium.envs.registration import register

from neg_envs.collision import NegCollisionEnv
from neg_envs.collision_core import CollisionConfig
from neg_envs.collision_vector import NegCollisionVectorEnv
from neg_envs.wrappers import NegativeActionWrapper, PunishmentOnlyWrapper

__all__ = [
    "CollisionConfig",
    "NegCollisionEnv",
    "NegCollisionVectorEnv",
    "NegativeActionWrapper",
    "PunishmentOnlyWrapper",
    "ENV_IDS",
]

#: Registered ids and their keyword arguments.
ENV_IDS: dict[str, dict] = {
    "NegCollision-v0": {},
    "NegCollisionCrowd-v0": {
        "num_obstacles": 300,
        "obstacle_radius": 0.01,
        "agent_radius": 0.01,
        "observation": "nearest",
        "k_nearest": 16,
    },
}

for _env_id, _kwargs in ENV_IDS.items():
    register(
        id=_env_id,
        entry_point="neg_envs.collision:NegCollisionEnv",
        vector_entry_point="neg_envs.collision_vector:NegCollisionVectorEnv",
        max_episode_steps=500,
        kwargs=_kwargs,
    )


def _preload_in_forkserver() -> None:
    """Add this package to the modules the multiprocessing forkserver imports at its start.

    Workers forked from it (stable-baselines3's ``SubprocVecEnv`` starts them so) then know
    plain ids like ``"NegCollision-v0"``. The modules other libraries asked for are kept:
    multiprocessing has a setter for the list but no getter, hence the private read.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    from multiprocessing import forkserver

    preload = list(getattr(forkserver._forkserver, "_preload_modules", ["__main__"]))
    if __name__ not in preload:
        multiprocessing.set_forkserver_preload([*preload, __name__])


_preload_in_forkserver()
