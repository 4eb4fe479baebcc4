"""What negdl reads from a stable-baselines3 model file: its weights, never its pickles (SB3's
``load`` unpickles the ``data`` entries, policy class, spaces, schedules..., so a crafted file
runs any code it likes). :func:`load_pickled` is SB3's loader, for trusted files."""

from __future__ import annotations

import io
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm


class UnsafeModelFileError(ValueError):
    """A model file holds something negdl would have to unpickle (run as code) to load."""


class SpaceMismatchError(ValueError):
    """A model was saved for other observation or action spaces than the env it is given."""


def save_model(model: BaseAlgorithm, path: str | os.PathLike[str]) -> Path:
    """``model.save(path)`` in SB3's format, written whole or not at all (a temporary file
    renamed over it); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as target:
        model.save(target)
    os.replace(partial, path)
    return path


def load_weights(model: BaseAlgorithm, path: Path, device: th.device | str, name: str) -> None:
    """Set every parameter of ``model`` (the agent ``name``) to those saved in ``path``, reading
    nothing but tensors: ``UnsafeModelFileError`` for a pickled object that is not a tensor,
    ``ValueError`` for a file that is not a model or holds another network's weights."""
    try:
        model.set_parameters(str(path), exact_match=True, device=device)
    except pickle.UnpicklingError as error:
        raise UnsafeModelFileError(
            f"{path} holds weights that are not plain tensors, which negdl never unpickles ({error})"
        ) from None
    except (ValueError, RuntimeError, KeyError, EOFError, AttributeError) as error:
        raise invalid_model(path, name, error) from error


def invalid_model(path: Path, name: str, error: Exception) -> ValueError:
    """The error for a file that holds no valid model of agent ``name``."""
    return ValueError(
        f"{path} is not a valid {name} model ({type(error).__name__}: {error}); it may be "
        "corrupt, or saved by another algorithm or with other hyperparams than its config.json says"
    )


def load_pickled(
    algo_class: type[BaseAlgorithm],
    path: str | os.PathLike[str] | io.BufferedIOBase,
    env: Any = None,
    device: th.device | str = "auto",
    **kwargs: Any,
) -> BaseAlgorithm:
    """SB3's ``load``, unpickling every entry of the file: only for files you made or trust,
    since a pickled entry can run any code (``kwargs`` as for SB3's ``load``)."""
    with warnings.catch_warnings():
        # SB3 warns that the saved NStepReplayBuffer ignores n_steps: its saved kwargs keep it.
        warnings.filterwarnings("ignore", message=r"`n_steps=\d+` is ignored because a custom")
        return BaseAlgorithm.load.__func__(  # type: ignore[attr-defined]
            algo_class, path, env=env, device=device, **kwargs
        )


def check_spaces(model: BaseAlgorithm, env: Any, source: str = "the model") -> None:
    """Raise a :class:`SpaceMismatchError` that says how to fix it when ``model`` cannot act in
    ``env``."""
    for key in ("observation_space", "action_space"):
        expected, got = getattr(model, key), getattr(env, key)
        if expected != got:
            kind = key.removesuffix("_space")
            raise SpaceMismatchError(
                f"{source} was trained on another {kind} space: it expects {_describe(expected)}, "
                f"this env has {_describe(got)}. Use the env id and options it was trained with "
                "(see the config.json beside the model), e.g. the same num_obstacles."
            )


def _describe(space: gym.Space) -> str:
    """A one-line description (a Box's full bounds would flood the message)."""
    if isinstance(space, gym.spaces.Box):
        return f"Box of shape {space.shape} ({space.dtype})"
    return str(space)
