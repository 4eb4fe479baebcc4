"""Gymnasium environments in which an agent is only ever punished.

Importing this package registers:

- ``NegCollision-v0``: 10 obstacles, the source's absolute observation (size 2 + 4N),
  500 steps per episode.
- ``NegCollisionCrowd-v0``: 300 small obstacles, egocentric observation of the 16 nearest.

Both have a natively batched version: ``gym.make_vec(id, num_envs=...)``.
"""

import multiprocessing

from gymnasium.envs.registration import register

from neg_envs.collision import NegCollisionEnv
from neg_envs.collision_core import CollisionConfig
from neg_envs.collision_vector import NegCollisionVectorEnv
from neg_envs.sb3_vec_env import SB3VecEnvAdapter
from neg_envs.wrappers import NegativeActionWrapper, PunishmentOnlyWrapper

__all__ = [
    "CollisionConfig",
    "NegCollisionEnv",
    "NegCollisionVectorEnv",
    "NegativeActionWrapper",
    "PunishmentOnlyWrapper",
    "SB3VecEnvAdapter",
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

# SB3's SubprocVecEnv starts workers from a forkserver, which imports only ``__main__``: preload
# this package there too so plain ids like "NegCollision-v0" resolve in the workers.
multiprocessing.set_forkserver_preload(["__main__", "neg_envs"])
