"""Checks of DQN's constructor arguments and of its replay buffer's size, before anything is built:
SB3's DQN trains on ``gamma=1.5`` or ``batch_size=0`` without a word, turns ``buffer_size=0`` into
1 and allocates a replay buffer far beyond memory after a mere warning."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import LinearSchedule

from negdl.checks import ArgumentTypeError, check_bool, check_int, check_number
from negdl.resources import check_memory, memory_limit

#: A learning rate written ``"lin_<start>"`` falls linearly from ``start`` to 0 over training,
#: rl-zoo3's convention (a run then ends on settled weights, not wherever its last steps left them).
LINEAR_PREFIX = "lin_"


def sb3_learning_rate(value: Any) -> float | Schedule:
    """What SB3's algorithms take for a ``learning_rate`` hyperparameter, checked: a number > 0
    (constant), a schedule (a callable of the progress remaining, 1 at the start and 0 at the
    end: > 0 at the start, >= 0 at the end) or ``"lin_<start>"``; else ``ValueError`` (or
    ``TypeError`` for a value of the wrong type)."""
    if isinstance(value, str):
        try:
            start = float(value[len(LINEAR_PREFIX) :]) if value.startswith(LINEAR_PREFIX) else 0
        except ValueError:
            start = 0
        if not 0 < start < math.inf:
            raise ValueError(
                f"learning_rate must be a number > 0, a schedule or '{LINEAR_PREFIX}<number > 0>' "
                f"(linear to 0 over training, e.g. lin_1e-3), got {value!r}"
            )
        return LinearSchedule(start, 0.0, 1.0)
    if callable(value):
        check_number("learning_rate(1) (a schedule, at the start)", value(1.0), 0, low_open=True)
        check_number("learning_rate(0) (a schedule, at the end)", value(0.0), 0)
        return value
    return check_number("learning_rate", value, 0, low_open=True)


def _check_train_freq(value: Any) -> None:
    frequency: Any = value
    unit: object = "step"
    if isinstance(value, (tuple, list)):  # TrainFreq, SB3's named tuple, included
        if len(value) != 2:
            raise ValueError(
                f"train_freq must be an integer or (integer, 'step'|'episode'), got {value!r}"
            )
        frequency, unit = value[0], getattr(value[1], "value", value[1])
    check_int("train_freq", frequency, 1)
    if unit not in ("step", "episode"):
        raise ValueError(f"train_freq's unit must be 'step' or 'episode', got {unit!r}")


def _check_gradient_steps(value: Any) -> None:
    check_int("gradient_steps", value)
    if value != -1 and value < 1:
        raise ValueError(
            f"gradient_steps must be >= 1, or -1 (as many as env steps collected), got {value!r}"
        )


def _check_kwargs(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, Mapping):
        raise ArgumentTypeError(
            f"{name} must be a dict or None, got {type(value).__name__} {value!r}"
        )


#: One check per DQN argument; a missing argument is not checked (SB3's default applies).
CHECKS: dict[str, Any] = {
    "learning_rate": sb3_learning_rate,
    "buffer_size": lambda v: check_int("buffer_size", v, 1),
    "learning_starts": lambda v: check_int("learning_starts", v, 0),
    "batch_size": lambda v: check_int("batch_size", v, 1),
    "tau": lambda v: check_number("tau", v, 0, 1, low_open=True),
    "gamma": lambda v: check_number("gamma", v, 0, 1),
    "train_freq": _check_train_freq,
    "gradient_steps": _check_gradient_steps,
    "n_steps": lambda v: check_int("n_steps", v, 1),
    "optimize_memory_usage": lambda v: check_bool("optimize_memory_usage", v),
    "target_update_interval": lambda v: check_int("target_update_interval", v, 1),
    "exploration_fraction": lambda v: check_number("exploration_fraction", v, 0, 1),
    "exploration_initial_eps": lambda v: check_number("exploration_initial_eps", v, 0, 1),
    "exploration_final_eps": lambda v: check_number("exploration_final_eps", v, 0, 1),
    "max_grad_norm": lambda v: check_number("max_grad_norm", v, 0, low_open=True, allow_inf=True),
    "stats_window_size": lambda v: check_int("stats_window_size", v, 1),
    "verbose": lambda v: check_int("verbose", v, 0, 2),
    "seed": lambda v: v is None or check_int("seed", v, 0, 2**32 - 1),
    "policy_kwargs": lambda v: _check_kwargs("policy_kwargs", v),
    "replay_buffer_kwargs": lambda v: _check_kwargs("replay_buffer_kwargs", v),
}


def check_dqn_arguments(arguments: Mapping[str, Any]) -> None:
    """Raise a ``ValueError`` (``TypeError`` for a wrong type) naming the first bad argument of
    ``arguments`` (DQN constructor arguments by name; names without a check are ignored)."""
    for name, check in CHECKS.items():
        if name in arguments:
            check(arguments[name])
    if "buffer_size" in arguments and "batch_size" in arguments:
        if arguments["buffer_size"] < arguments["batch_size"]:
            raise ValueError(
                f"buffer_size ({arguments['buffer_size']}) must be >= batch_size "
                f"({arguments['batch_size']}): a minibatch is drawn from the replay buffer"
            )


def check_replay_buffer_memory(
    buffer_size: int,
    observation_space: spaces.Space,
    action_space: spaces.Space,
    optimize_memory_usage: bool = False,
) -> None:
    """Raise ``negdl.resources.MemoryLimitError`` if SB3's replay buffer of ``buffer_size``
    transitions would not fit in memory."""
    obs_values = spaces.flatdim(observation_space)
    obs = obs_values * np.dtype(observation_space.dtype or np.float32).itemsize
    action_bytes = np.dtype(action_space.dtype or np.int64).itemsize
    actions = max(spaces.flatdim(action_space), 1) * action_bytes
    # Observations and next observations (one array with optimize_memory_usage), actions, and
    # the reward, done and timeout floats.
    per_transition = obs * (1 if optimize_memory_usage else 2) + actions + 3 * 4
    fitting = memory_limit()[0] // per_transition
    check_memory(
        buffer_size * per_transition,
        f"the replay buffer (buffer_size {buffer_size:,} x {obs_values:,}-value "
        f"observations{'' if optimize_memory_usage else ' x 2'})",
        f"lower buffer_size (at most {fitting:,} fit), or use a smaller observation, e.g. "
        "NegCollision's observation='nearest', whose size does not grow with num_obstacles",
    )
