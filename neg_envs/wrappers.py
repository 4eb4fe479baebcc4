"""Wrappers that make any Gymnasium env negative: negative actions, punishment-only rewards."""

from __future__ import annotations

import math
import numbers
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from neg_envs.collision_core import validate_action
from negdl.checks import check_choice, check_number


class NegativeActionWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """The agent says which action *not* to take; one of the others is executed.

    Action ``k`` means "do not do k": one of the other ``n - 1`` actions runs, drawn uniformly
    from the wrapped env's seeded ``np_random``; ``info["executed_action"]`` says which. Works on
    any ``Discrete(n)`` action space with ``n >= 2``. It records its arguments (none) as
    Gymnasium's wrappers do, so ``gym.make(env.spec)`` and ``check_env`` can rebuild it.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        space = env.action_space
        if not isinstance(space, spaces.Discrete):
            raise TypeError(f"NegativeActionWrapper needs a Discrete action space, got {space}")
        if space.n < 2:
            raise ValueError(
                f"NegativeActionWrapper needs at least 2 actions, got Discrete({space.n})"
            )
        self._n, self._start = int(space.n), int(space.start)

    def action_masks(self) -> np.ndarray:
        """Which actions are worth naming as "do not", ``(n,)`` bool: those the wrapped env's
        ``action_masks()`` forbids (naming an allowed one wastes the prohibition), or all of them
        when it forbids none."""
        try:
            env_masks = self.env.get_wrapper_attr("action_masks")
        except AttributeError:
            raise AttributeError(
                f"{self.env} has no action_masks(), so NegativeActionWrapper has none either"
            ) from None
        allowed = np.asarray(env_masks(), dtype=bool)
        worth_naming = ~allowed
        return worth_naming if worth_naming.any() else allowed

    def step(self, action: Any):
        forbidden = validate_action(action, self._n, self._start)
        draw = self._start + int(self.np_random.integers(self._n - 1))
        executed = draw + (draw >= forbidden)
        obs, reward, terminated, truncated, info = self.env.step(executed)
        info = dict(info, executed_action=executed, forbidden_action=forbidden)
        return obs, reward, terminated, truncated, info


class PunishmentOnlyWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Turn any env's (scalar) reward into a punishment that is never positive.

    ``mode="shift"``: ``r - max_reward`` (the largest reward a step can give; one above it
    raises, it is never clipped), which keeps the ranking of policies for fixed-length episodes;
    ``"negative_part"``: ``min(r, 0)``. As ending early can look attractive when every step is
    punished, ``termination_penalty`` (>= 0) is charged when an episode terminates (not when it
    is truncated), e.g. 1 for CartPole with ``max_reward=1``. Its arguments are recorded, as
    Gymnasium's wrappers do, so ``gym.make(env.spec)`` and ``check_env`` can rebuild it.
    """

    MODES = ("shift", "negative_part")

    def __init__(
        self,
        env: gym.Env,
        mode: str = "shift",
        max_reward: float | None = None,
        termination_penalty: float = 0.0,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, mode=mode, max_reward=max_reward, termination_penalty=termination_penalty
        )
        gym.Wrapper.__init__(self, env)
        check_choice("mode", mode, self.MODES)
        if mode == "shift":
            if max_reward is None:
                raise ValueError(
                    "mode='shift' needs a finite max_reward: the largest reward one step can give"
                )
            max_reward = check_number("max_reward", max_reward)
        elif max_reward is not None:
            raise ValueError("max_reward is only used with mode='shift'")
        self.mode = mode
        self.max_reward = max_reward
        self.termination_penalty = check_number("termination_penalty", termination_penalty, 0)

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, self.punish(reward, terminated), terminated, truncated, info

    def punish(self, reward: SupportsFloat, terminated: bool) -> float:
        """The punishment for one step's ``reward``: a ``TypeError`` if it is not one real
        number, a ``ValueError`` if it is NaN (it would pass through either rule unchanged)."""
        reward = self._scalar_reward(reward)
        if self.mode == "shift":
            assert self.max_reward is not None  # the shift rule needs one (checked when made)
            if reward > self.max_reward:
                raise ValueError(
                    f"reward {reward} exceeds max_reward={self.max_reward}; pass the env's true maximal step reward"
                )
            punishment = reward - self.max_reward
        else:
            punishment = min(reward, 0.0)
        if terminated:
            punishment -= self.termination_penalty
        return punishment

    def _scalar_reward(self, reward: Any) -> float:
        """``reward`` as a float if it is one real number (a 0-d array included), not NaN."""
        value = reward.item() if isinstance(reward, np.ndarray) and reward.ndim == 0 else reward
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            shape = f" of shape {reward.shape}" if isinstance(reward, np.ndarray) else ""
            raise TypeError(
                f"PunishmentOnlyWrapper needs one real-number reward per step from {self.env}, "
                f"got {type(reward).__name__}{shape} {reward!r}"
            )
        value = float(value)
        if math.isnan(value):
            raise ValueError(
                f"{self.env} returned a NaN reward; PunishmentOnlyWrapper cannot turn it into "
                "a punishment (fix the env, or wrap it to replace NaN on purpose)"
            )
        return value
