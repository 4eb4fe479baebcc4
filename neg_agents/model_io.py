"""Save a trained agent with the exact config that made it; load one back, checked against an env."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from neg_agents.algos import get_algo
from neg_agents.common.dqn_base import quiet_n_step_reload
from neg_agents.common.env_util import collision_config
from neg_agents.common.extractors import ObstacleSetExtractor, collision_extractor_kwargs

CONFIG_NAME = "config.json"


def save_run(model: BaseAlgorithm, config: dict[str, Any], run_dir: str | Path) -> Path:
    """Write ``model.zip`` (SB3's format) and ``config.json`` into ``run_dir``; return the model path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "model.zip"
    model.save(path)
    (run_dir / CONFIG_NAME).write_text(json.dumps(config, indent=2, default=str) + "\n")
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


def load_agent(
    model_path: str | Path, algo: str, env: gym.Env | None = None, device: str = "auto"
) -> BaseAlgorithm:
    """Load a model saved by ``save_run``/``model.save`` with SB3's own loader.

    :param model_path: the ``.zip`` file.
    :param algo: the agent name it was trained as (``neg_agents.ALGOS``).
    :param env: if given, the model's observation and action spaces must match it.
    :param device: torch device.
    :raises FileNotFoundError: no file at ``model_path``.
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
    try:
        with quiet_n_step_reload():  # plain DQN models too
            model = spec.model_class.load(path, device=device)
    except (
        zipfile.BadZipFile,
        KeyError,
        ValueError,
        RuntimeError,
        EOFError,
        TypeError,
        AttributeError,
    ) as error:
        raise ValueError(
            f"{path} is not a valid {algo} model ({type(error).__name__}: {error}); "
            "it may be corrupt, or saved by another algorithm: pass the --algo it was trained with"
        ) from error
    if env is not None:
        check_spaces(model, env, path)
    return model


def check_spaces(model: BaseAlgorithm, env: gym.Env, path: str | Path = "the model") -> None:
    """Raise a ``ValueError`` that says how to fix it when ``model`` cannot act in ``env``."""
    for kind in ("observation", "action"):
        expected, got = getattr(model, f"{kind}_space"), getattr(env, f"{kind}_space")
        if expected != got:
            raise ValueError(
                f"{path} was trained on another {kind} space: it expects {_describe(expected)}, "
                f"this env has {_describe(got)}. "
                "Use the env id and options it was trained with (see the config.json beside the model), "
                "e.g. the same num_obstacles."
            )


def _describe(space: gym.Space) -> str:
    """A one-line description (a Box's full bounds would flood the message)."""
    if isinstance(space, gym.spaces.Box):
        return f"Box of shape {space.shape} ({space.dtype})"
    return str(space)


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
