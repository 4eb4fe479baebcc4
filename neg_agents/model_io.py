"""Save a trained agent with the exact config that made it; load one back, checked against an env."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.type_aliases import PolicyPredictor
from stable_baselines3.common.vec_env import VecEnv

from neg_agents.algos import get_algo
from neg_agents.common.dqn_base import quiet_n_step_reload
from neg_agents.common.env_util import collision_config
from neg_agents.common.extractors import ObstacleSetExtractor, collision_extractor_kwargs
from neg_agents.common.model_files import (
    SpaceMismatchError,
    UnsafeModelFileError,
    load_model,
    save_model,
)
from neg_agents.common.model_files import check_spaces as check_model_spaces
from neg_agents.hyperparams import AGENT_DEVICE
from negdl.devices import resolve_device
from negdl.resources import MemoryLimitError
from negdl.results import write_text_atomic

CONFIG_NAME = "config.json"


def write_config(config: dict[str, Any], run_dir: str | Path) -> Path:
    """Write ``config.json`` into ``run_dir`` (created if needed), whole or not at all; return
    its path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(
        run_dir / CONFIG_NAME, json.dumps(config, indent=2, default=str) + "\n"
    )


def save_run(model: BaseAlgorithm, config: dict[str, Any], run_dir: str | Path) -> Path:
    """Write ``model.zip`` (SB3's format, with the plain twins ``load_agent`` reads, see
    ``neg_agents.common.model_files``) and ``config.json`` into ``run_dir``, each whole or not
    at all; return the model path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "model.zip"
    save_model(model, path)
    write_config(config, run_dir)
    return path


def read_config(model_path: str | Path) -> dict[str, Any] | None:
    """The ``config.json`` saved beside ``model_path`` by ``save_run``, or None if there is none."""
    path = Path(model_path).with_name(CONFIG_NAME)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not valid JSON ({error}); fix or delete it and pass --algo/--env-id"
        ) from error


def resolve_run(
    model_path: str | Path | None,
    algo: str | None = None,
    env_id: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> tuple[str, str, dict[str, Any]]:
    """The agent name, env id and env options to use with a saved model.

    What is not given comes from the ``config.json`` beside ``model_path`` (``save_run`` writes
    it), the env id falling back on ``NegCollision-v0``. Baselines need no model.

    :raises ValueError: no algorithm given and no ``config.json`` to read it from.
    """
    baseline = algo is not None and not get_algo(algo).trainable
    config = read_config(model_path) if model_path is not None and not baseline else None
    algo = algo or (config or {}).get("algo")
    if algo is None:
        raise ValueError(
            f"no config.json beside {model_path}: pass --algo (and --env-id/--env-kwargs if not the defaults)"
        )
    env_id = env_id or (config or {}).get("env_id") or "NegCollision-v0"
    if not env_kwargs:
        env_kwargs = (config or {}).get("env_kwargs", {})
    return algo, env_id, dict(env_kwargs)


def load_policy(
    algo: str,
    model_path: str | Path | None,
    env: gym.Env,
    seed: int | None = None,
    device: str = AGENT_DEVICE,
) -> PolicyPredictor:
    """What acts in ``env`` for agent ``algo``: a saved model's policy, or a fresh baseline.

    A model's policy on its own acts without epsilon exploration (exploring is training).

    :param algo: the agent name (``neg_agents.ALGOS``).
    :param model_path: the saved model (trained agents only).
    :param env: the env to act in; a model must match its spaces.
    :param seed: seed of a random baseline.
    :param device: torch device of a model.
    """
    spec = get_algo(algo)
    if not spec.trainable:
        return spec.make_baseline(env, seed)
    if model_path is None:
        raise ValueError(f"{algo} is a trained agent: pass the saved model's path")
    return load_agent(model_path, algo, env, device).policy


def load_agent(
    model_path: str | Path, algo: str, env: gym.Env | None = None, device: str = AGENT_DEVICE
) -> BaseAlgorithm:
    """Load a model saved by ``save_run``/``model.save``, without unpickling anything from it
    (``neg_agents.common.model_files.load_model``; SB3's plain DQN models too).

    :param model_path: the ``.zip`` file.
    :param algo: the agent name it was trained as (``neg_agents.ALGOS``).
    :param env: if given, the model's observation and action spaces must match it, and the model
        runs on it.
    :param device: torch device.
    :raises FileNotFoundError: no file at ``model_path``.
    :raises UnsafeModelFileError: the file holds a pickled entry that cannot be rebuilt safely.
    :raises ValueError: not a model of ``algo``, a corrupt file, or spaces that do not match ``env``.
    """
    spec = get_algo(algo)
    if not spec.trainable:
        raise ValueError(f"{algo} is a baseline and has no saved model")
    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no model file at {path}; train one first (negdl-train) or fix the path"
        )
    resolve_device(device)
    try:
        with quiet_n_step_reload():  # plain DQN models too
            return load_model(spec.model_class, path, env, device)
    except (UnsafeModelFileError, SpaceMismatchError, MemoryLimitError):
        raise
    except ValueError as error:
        raise _invalid(path, algo, error) from error
    except (
        zipfile.BadZipFile,
        KeyError,
        RuntimeError,
        EOFError,
        TypeError,
        AttributeError,
    ) as error:
        raise _invalid(path, algo, error) from error


def _invalid(path: Path, algo: str, error: Exception) -> ValueError:
    return ValueError(
        f"{path} is not a valid {algo} model ({type(error).__name__}: {error}); "
        "it may be corrupt, or saved by another algorithm: pass the --algo it was trained with"
    )


def check_spaces(model: BaseAlgorithm, env: gym.Env, path: str | Path = "the model") -> None:
    """Raise a ``ValueError`` that says how to fix it when ``model`` cannot act in ``env``."""
    saved = {"observation_space": model.observation_space, "action_space": model.action_space}
    check_model_spaces(saved, env, str(path))


def transfer_model(model: BaseAlgorithm, env: gym.Env | VecEnv) -> BaseAlgorithm:
    """The trained ``model``, rebuilt to act in another NegCollision env without retraining.

    SB3 ties a model to one observation shape, but :class:`ObstacleSetExtractor`'s parameters
    do not depend on the obstacle count or the observation layout. So the model is rebuilt for
    ``env`` (its observation space, and the extractor's geometry read from ``env``'s config:
    layout, contact distance, speeds) with every other setting kept, and the trained
    parameters are copied in unchanged. E.g. train at 10 obstacles, act at 30 or in
    ``NegCollisionCrowd-v0``.

    :param model: a trained model whose policy uses ``ObstacleSetExtractor`` (negdl's default
        on NegCollision envs).
    :param env: the NegCollision env (or ``VecEnv``) to act in; same action space.
    :raises ValueError: if the policy has another features extractor, ``env`` is not a
        NegCollision env, or the action spaces differ.
    """
    if model.policy_kwargs.get("features_extractor_class") is not ObstacleSetExtractor:
        raise ValueError(
            "only a policy built on ObstacleSetExtractor transfers to another obstacle count: "
            "other policies' parameters depend on the observation size"
        )
    config = collision_config(env)
    if config is None:
        raise ValueError(f"transfer_model needs a NegCollision env, got {env}")
    if env.action_space != model.action_space:
        raise ValueError(
            f"the model acts in {model.action_space}, the env in {env.action_space}: keep allow_stay as trained"
        )
    policy_kwargs = dict(model.policy_kwargs)
    policy_kwargs["features_extractor_kwargs"] = {
        **policy_kwargs.get("features_extractor_kwargs", {}),
        **collision_extractor_kwargs(config),
    }
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    with quiet_n_step_reload():
        return type(model).load(
            buffer,
            env=env,
            device=model.device,
            custom_objects={
                "observation_space": env.observation_space,
                "policy_kwargs": policy_kwargs,
            },
        )
