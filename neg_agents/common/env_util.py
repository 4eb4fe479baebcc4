"""Build training and evaluation ``VecEnv``s for the agents, with clear errors for bad options."""

from __future__ import annotations

import functools
import signal
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecMonitor

import neg_envs
from neg_agents.common.sb3_vec_env import SB3VecEnvAdapter
from neg_envs.collision_core import CollisionConfig
from negdl.checks import check_choice, check_int

#: How training envs are stepped: SB3's ``DummyVecEnv`` (in process), ``SubprocVecEnv`` (one
#: process per env) or the natively batched ``NegCollisionVectorEnv`` through ``SB3VecEnvAdapter``.
VEC_ENV_KINDS = ("dummy", "subproc", "native")
#: Info keys whose value at an episode's last step ``Monitor`` files record as columns.
MONITOR_INFO_KEYS = ("cumulative_collisions",)


def check_env_options(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    """Make one env to validate ``env_id`` and ``env_kwargs``; return it (caller closes it)."""
    if env_id not in gym.registry:
        known = ", ".join(sorted(neg_envs.ENV_IDS))
        raise ValueError(
            f"unknown env id {env_id!r}: register it first, or use one of negdl's: {known}"
        )
    try:
        return gym.make(env_id, **(env_kwargs or {}))
    except TypeError as error:
        raise ValueError(
            f"bad option for {env_id}: {error}; see the env's docstring for its parameters"
        ) from error


def make_env(
    env_id: str,
    n_envs: int = 1,
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    vec_env: str = "dummy",
    negative_actions: bool = False,
    monitor_dir: str | Path | None = None,
) -> VecEnv:
    """A monitored ``VecEnv`` of ``n_envs`` (>= 1) copies of ``env_id`` made with ``env_kwargs``,
    sub-env ``i`` seeded ``seed + i`` (``seed`` >= 0; None: unseeded).

    :param vec_env: one of :data:`VEC_ENV_KINDS`.
    :param negative_actions: wrap each env in ``neg_envs.NegativeActionWrapper`` (not with
        ``"native"``).
    :param monitor_dir: folder for SB3 ``Monitor`` files of the finished episodes (columns ``r``,
        ``l``, ``t``, and ``cumulative_collisions`` on NegCollision envs; ``load_results`` reads
        them), ``<i>.monitor.csv`` per sub-env as rl-zoo3 lays them out, one ``monitor.csv``
        with ``"native"`` (None: none).
    """
    check_int("n_envs", n_envs, 1)
    if seed is not None:
        check_int("seed", seed, 0)
    probe = check_env_options(env_id, env_kwargs)
    check_vec_env(env_id, vec_env, negative_actions)
    # Monitor needs its info keys at every episode's end: only NegCollision envs have them.
    info_keys = MONITOR_INFO_KEYS if collision_config(probe) is not None else ()
    probe.close()
    env_kwargs = dict(env_kwargs or {})
    if vec_env == "native":
        filename = None
        if monitor_dir is not None:
            Path(monitor_dir).mkdir(parents=True, exist_ok=True)
            filename = str(Path(monitor_dir) / "monitor.csv")
        venv = gym.make_vec(env_id, n_envs, vectorization_mode="vector_entry_point", **env_kwargs)
        monitored = VecMonitor(SB3VecEnvAdapter(venv), filename, info_keywords=info_keys)
        monitored.seed(seed)
        return monitored
    subproc = vec_env == "subproc"
    return make_vec_env(
        functools.partial(make_in_worker, importable_id(env_id)) if subproc else env_id,
        n_envs=n_envs,
        seed=seed,
        env_kwargs=env_kwargs,
        wrapper_class=neg_envs.NegativeActionWrapper if negative_actions else None,
        vec_env_cls=SubprocVecEnv if subproc else DummyVecEnv,
        monitor_dir=str(monitor_dir) if monitor_dir is not None else None,
        monitor_kwargs={"info_keywords": info_keys},
    )


def check_vec_env(env_id: str, vec_env: str, negative_actions: bool = False) -> None:
    """Raise a ``ValueError`` unless ``vec_env`` (one of :data:`VEC_ENV_KINDS`) can step
    ``env_id`` (an unregistered id is left to :func:`check_env_options`), through
    ``NegativeActionWrapper`` if ``negative_actions``."""
    check_choice("vec_env", vec_env, VEC_ENV_KINDS)
    if vec_env != "native":
        return
    if negative_actions:
        raise ValueError(
            "NegativeActionWrapper wraps single envs; use vec_env='dummy' or 'subproc' with negative actions"
        )
    if env_id in gym.registry and gym.spec(env_id).vector_entry_point is None:
        raise ValueError(
            f"{env_id} has no natively batched version; use vec_env='dummy' or 'subproc'"
        )


def preferred_vec_env(
    env_id: str, negative_actions: bool = False, env_kwargs: dict[str, Any] | None = None
) -> str:
    """``"native"`` when ``env_id`` has a natively batched ``neg_envs`` version and the agent
    acts on it directly (not through ``NegativeActionWrapper``, which wraps single envs) with
    no drawing options (``window_size``, ``render_mode``), else ``"dummy"``."""
    drawing = {"window_size", "render_mode"} & set(env_kwargs or {})
    if negative_actions or drawing or env_id not in gym.registry:
        return "dummy"
    # Only neg_envs' batched envs are known to follow SB3VecEnvAdapter's protocol.
    entry_point = str(gym.spec(env_id).vector_entry_point)
    return "native" if entry_point.startswith("neg_envs") else "dummy"


def make_in_worker(env_id: str, **env_kwargs: Any) -> gym.Env:
    """``gym.make`` in a ``SubprocVecEnv`` worker, which leaves Ctrl-C to the parent: a
    terminal's Ctrl-C reaches every process, and the parent stops training cleanly
    (``negdl.interrupt``) and closes the workers, which must not die of it first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return gym.make(env_id, **env_kwargs)


def importable_id(env_id: str) -> str:
    """``env_id`` in Gymnasium's ``"module:EnvId"`` form (its entry point's module), so that
    ``gym.make`` imports the package that registers the id in a worker process that imported
    nothing; ids already in that form or without an import path as entry point unchanged."""
    entry_point = None if ":" in env_id else gym.spec(env_id).entry_point
    if not isinstance(entry_point, str) or ":" not in entry_point:
        return env_id
    return f"{entry_point.partition(':')[0]}:{env_id}"


def collision_config(env: gym.Env | VecEnv | str | None) -> CollisionConfig | None:
    """The ``CollisionConfig`` of a ``NegCollision`` env (an id, a ``gym.Env`` however wrapped,
    or any ``VecEnv`` of them), or None for any other env."""
    if env is None or (isinstance(env, str) and env not in gym.registry):
        return None
    if isinstance(env, str):
        probe = gym.make(env)
        try:
            return collision_config(probe)
        finally:
            probe.close()
    try:
        if isinstance(env, VecEnv):
            # Asked first: get_attr of a missing attribute ends a SubprocVecEnv's workers.
            if not env.has_attr("config"):
                return None
            config = env.get_attr("config", indices=[0])[0]
        else:
            config = env.get_wrapper_attr("config")
    except AttributeError:
        return None
    return config if isinstance(config, CollisionConfig) else None
