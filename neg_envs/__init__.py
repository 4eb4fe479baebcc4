"""Gymnasium environments in which an agent is only ever punished.

Importing this package registers:

- ``NegCollision-v0``: 10 obstacles, the source's absolute observation (size 2 + 4N),
  500 steps per episode.
- ``NegCollisionCrowd-v0``: 300 small obstacles, egocentric observation of the 16 nearest.
- ``NegCollisionMix-v0``: a new scene every episode (0 to 300 obstacles, as many as fit a
  contact density of 0.4, each scene with its own radii, obstacle speeds from 0 to 0.02),
  observed as the 16 nearest with the radii in front: the scene distribution a generalist agent
  trains on.

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

#: The scene distribution of ``NegCollisionMix-v0``: per episode two radii and a count drawn
#: uniformly from these ranges, the count capped so that the obstacles' contact discs cover at
#: most 40% of the arena (``max_density``), and every obstacle's speed from ``obstacle_speed``.
#: It spans the named scenes (10 and 30 obstacles of radius 0.03 around an agent of radius
#: 0.02, contact densities 0.08 and 0.24; the crowd, 300 of radius 0.01 around an agent of
#: radius 0.01, 0.38) and the scenes between and around them; without the cap, 200 large
#: obstacles would cover the arena one and a half times over, where nothing avoids contact.
MIX_KWARGS: dict = {
    "num_obstacles": (0, 300),
    "max_density": 0.4,
    "obstacle_radius": (0.005, 0.03),
    "agent_radius": (0.01, 0.02),
    "obstacle_speed": (0.0, 0.02),
    "observation": "nearest_radii",
    "k_nearest": 16,
}

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
    "NegCollisionMix-v0": dict(MIX_KWARGS),
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
