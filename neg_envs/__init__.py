"""Gymnasium environments in which an agent is only ever punished.

Importing this package registers ``NegCollision-v0`` (10 obstacles, the source's absolute
observation), ``NegCollisionCrowd-v0`` (300 small obstacles, the 16 nearest observed) and
``NegCollisionMix-v0`` (a new scene every episode, see :data:`MIX_KWARGS`), each also natively
batched: ``gym.make_vec(id, num_envs=...)``. Needs only gymnasium, numpy and (to render) pygame.
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

#: The scene distribution of ``NegCollisionMix-v0``: it spans the named scenes (contact
#: densities 0.08 and 0.24 for 10 and 30 obstacles, the crowd's 0.38) and those between and
#: around them; without the 0.4 cap, 200 large obstacles would cover the arena one and a half
#: times over, where nothing avoids contact.
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
    """Add this package to the modules the multiprocessing forkserver preloads, so that workers
    forked from it (SB3's ``SubprocVecEnv``) know plain ids like ``"NegCollision-v0"``. Other
    libraries' modules are kept: multiprocessing has no getter, hence the private read."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    from multiprocessing import forkserver

    preload = list(getattr(forkserver._forkserver, "_preload_modules", ["__main__"]))
    if __name__ not in preload:
        multiprocessing.set_forkserver_preload([*preload, __name__])


_preload_in_forkserver()
