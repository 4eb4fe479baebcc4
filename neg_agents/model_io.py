"""Save a trained agent with the exact config that made it; load it back by rebuilding the model
from that config and reading only the saved weights (nothing is unpickled)."""

from __future__ import annotations

import io
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.type_aliases import PolicyPredictor
from stable_baselines3.common.vec_env import VecEnv

from neg_agents.algos import get_algo
from neg_agents.common.env_util import collision_config
from neg_agents.common.extractors import ObstacleSetExtractor, collision_extractor_kwargs
from neg_agents.common.model_files import (
    check_spaces,
    invalid_model,
    load_pickled,
    load_weights,
    save_model,
)
from neg_agents.hyperparams import AGENT_DEVICE
from negdl.checks import check_int, check_number
from negdl.devices import resolve_device
from negdl.results import write_text_atomic

CONFIG_NAME = "config.json"


def write_config(config: dict[str, Any], run_dir: str | Path) -> Path:
    """Write ``config.json`` into ``run_dir`` (created if needed), whole or not at all; return
    its path."""
    text = json.dumps(config, indent=2, default=str) + "\n"
    return write_text_atomic(Path(run_dir) / CONFIG_NAME, text)


#: What a model's predictions and further training need besides its weights and its run's
#: settings: ``save_run`` records it in ``config.json`` (``model_state``), ``load_agent``
#: restores it. Each is a count >= 0 but the exploration rate, a probability.
MODEL_STATE = ("num_timesteps", "_n_updates", "_episode_num", "_n_calls", "exploration_rate")


def save_run(model: BaseAlgorithm, config: dict[str, Any], run_dir: str | Path) -> Path:
    """Write ``model.zip`` (SB3's format) and ``config.json`` (``config``, the run's settings,
    plus the model's ``MODEL_STATE``) into ``run_dir``, each whole or not at all; return the
    model path."""
    path = save_model(model, Path(run_dir) / "model.zip")
    state = {name: getattr(model, name) for name in MODEL_STATE if hasattr(model, name)}
    write_config({**config, "model_state": state}, run_dir)
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
    """The agent name, env id and env options to use with a saved model: what is not given
    comes from the ``config.json`` beside ``model_path``, the env id falling back on
    ``NegCollision-v0``; ``env_kwargs`` go on top of the run's (a layout the model was trained
    on stays unless changed). Baselines need no model.

    :raises ValueError: no algorithm given and no ``config.json`` to read it from.
    """
    baseline = algo is not None and not get_algo(algo).trainable
    config = (read_config(model_path) if model_path is not None and not baseline else None) or {}
    algo = algo or config.get("algo")
    if algo is None:
        raise ValueError(
            f"no config.json beside {model_path}: pass --algo (and --env-id/--env-kwargs if not the defaults)"
        )
    env_id = env_id or config.get("env_id") or "NegCollision-v0"
    return algo, env_id, {**config.get("env_kwargs", {}), **(env_kwargs or {})}


def load_policy(
    algo: str,
    model_path: str | Path | None,
    env: gym.Env,
    seed: int | None = None,
    device: str = AGENT_DEVICE,
) -> PolicyPredictor:
    """What acts in ``env`` for agent ``algo``: a saved model's policy (``model_path``; without
    epsilon exploration, which is training) on ``device``, or a baseline seeded ``seed``."""
    spec = get_algo(algo)
    if not spec.trainable:
        return spec.make_baseline(env, seed)
    if model_path is None:
        raise ValueError(f"{algo} is a trained agent: pass the saved model's path")
    return load_agent(model_path, algo, env, device).policy


def load_agent(
    model_path: str | Path,
    algo: str | None = None,
    env: gym.Env | VecEnv | None = None,
    device: str = AGENT_DEVICE,
    allow_pickle: bool = False,
) -> BaseAlgorithm:
    """Load a run saved by ``save_run`` (``negdl-train``'s run folders), unpickling nothing.

    The model is rebuilt from the ``config.json`` beside ``model_path`` as training built it
    (``build_model``), its weights read with SB3's ``set_parameters`` (tensors only,
    ``torch.load(weights_only=True)``; the file's pickled ``data`` is never read) and its
    ``model_state`` restored. For a plain SB3 file write a ``config.json`` beside it (``algo``,
    ``env_id``, ``env_kwargs``, ``hyperparams``).

    :param model_path: the ``.zip`` file.
    :param algo: the agent name it was trained as (``neg_agents.ALGOS``); None: config.json's.
    :param env: the env to act in, with the spaces it was trained on (None: one made from
        ``config.json``).
    :param device: torch device.
    :param allow_pickle: load with SB3's own loader instead, which unpickles the file and so
        can run any code it holds: only for files you made or trust (``algo`` needed then).
    :raises FileNotFoundError: no file at ``model_path``.
    :raises UnsafeModelFileError: weights that are not plain tensors.
    :raises SpaceMismatchError: ``env`` has other spaces than the model was trained on.
    :raises ValueError: no or a bad ``config.json``, another ``algo`` than it says, a corrupt
        file or weights of another network.
    """
    if algo is not None and not get_algo(algo).trainable:
        raise ValueError(f"{algo} is a baseline and has no saved model")
    resolve_device(device)
    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no model file at {path}; train one first (negdl-train) or fix the path"
        )
    config = read_config(path)
    if allow_pickle:
        algo = algo or (config or {}).get("algo")
        model_class = get_algo(algo).model_class if algo else None
        if algo is None or model_class is None:
            raise ValueError(f"no config.json beside {path}: pass the agent it was trained as")
        try:
            return load_pickled(model_class, path, env, device)
        except (ValueError, RuntimeError, KeyError, EOFError, AttributeError) as error:
            raise invalid_model(path, algo, error) from error
    if config is None:
        raise ValueError(
            f"no config.json beside {path}: negdl loads a model by rebuilding it from its run's "
            "config.json and reading only its weights. Write one beside it (algo, env_id, "
            "env_kwargs, hyperparams), or, only for a file you made or trust, pass "
            "allow_pickle=True (SB3's loader, which can run code the file holds)"
        )
    train_config = _train_config(config, path, algo, device)
    algo = train_config.algo
    model_env = get_algo(algo).make_env(
        train_config.env_id,
        seed=train_config.seed,
        env_kwargs=train_config.env_kwargs,
        vec_env="dummy",
    )
    from neg_agents.training import build_model  # training saves its runs with this module

    try:
        model = build_model(train_config, model_env)
        load_weights(model, path, device, algo)
        # Runs saved before model_state: their steps only.
        state = config.get("model_state") or {"num_timesteps": config.get("num_timesteps") or 0}
        config_file = path.with_name(CONFIG_NAME)
        for name, value in state.items():
            if name not in MODEL_STATE or not hasattr(model, name):
                raise ValueError(f"{config_file}: unknown model_state entry {name!r}")
            try:  # a value of the wrong type (a TypeError) is a bad file too
                if name == "exploration_rate":
                    value = check_number(name, value, 0, 1)
                else:
                    value = check_int(name, value, 0)
            except (TypeError, ValueError) as error:
                raise ValueError(f"{config_file}: {error}") from error
            setattr(model, name, value)
    except BaseException:
        model_env.close()
        raise
    if env is not None:
        model_env.close()
        check_spaces(model, env, str(path))
        model.set_env(env)
    return model


def _train_config(config: dict[str, Any], path: Path, algo: str | None, device: str) -> Any:
    """The ``TrainConfig`` that ``config`` (a run's ``config.json``) records, for ``algo``."""
    from neg_agents.training import TrainConfig

    saved = config.get("algo")
    if algo is not None and saved is not None and saved != algo:
        raise ValueError(
            f"{path} is not a valid {algo} model: its config.json says it was trained as "
            f"{saved}; pass that algo (or none)"
        )
    settings = {item.name: config[item.name] for item in fields(TrainConfig) if item.name in config}
    settings.update(algo=algo or saved, device=device, capture_video=False, progress_bar=False)
    if settings["algo"] is None:
        raise ValueError(f"{path.with_name(CONFIG_NAME)} does not say the algo: pass it")
    policy_kwargs = settings.get("hyperparams", {}).get("policy_kwargs", {})
    if str(policy_kwargs.get("features_extractor_class")).endswith(".ObstacleSetExtractor'>"):
        # Runs saved before negdl 0.3 recorded the class as its str().
        policy_kwargs["features_extractor_class"] = ObstacleSetExtractor
    try:
        return TrainConfig(**settings)
    except (TypeError, ValueError, AttributeError) as error:
        raise ValueError(
            f"{path.with_name(CONFIG_NAME)} does not describe a run negdl can rebuild ({error}); "
            "fix it, or train the agent again"
        ) from error


def transfer_model(model: BaseAlgorithm, env: gym.Env | VecEnv) -> BaseAlgorithm:
    """The trained ``model``, rebuilt to act in another NegCollision env (or ``VecEnv``)
    without retraining, e.g. trained at 10 obstacles, acting at 30 or in the crowd.

    SB3 ties a model to one observation shape, but :class:`ObstacleSetExtractor`'s parameters
    do not depend on the obstacle count or the observation layout: the model is rebuilt for
    ``env``'s observation space and geometry, and the trained parameters copied in unchanged.

    :raises ValueError: another features extractor, not a NegCollision env, or another action
        space.
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
    # The model's own bytes, just written: nothing untrusted is unpickled.
    return load_pickled(
        type(model),
        buffer,
        env,
        model.device,
        custom_objects={"observation_space": env.observation_space, "policy_kwargs": policy_kwargs},
    )
