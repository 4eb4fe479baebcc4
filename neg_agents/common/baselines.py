"""Policies that learn nothing, for comparison: uniformly random and always the same action,
and the ``predict`` they share with the planner."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces


class Predictor:
    """SB3's ``PolicyPredictor`` protocol for agents that choose actions in numpy (the
    baselines, the planner) in a ``Discrete`` action space; subclasses choose the actions of a
    batch in :meth:`_actions`."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        if not isinstance(action_space, spaces.Discrete):
            raise TypeError(
                f"{type(self).__name__} needs a Discrete action space, got {action_space}"
            )
        self.observation_space, self.action_space = observation_space, action_space

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, None]:
        """Actions for a batch ``(n_envs, *obs_shape)`` or a single observation."""
        observation = np.asarray(observation)
        batched = self._batched(observation, action_masks)
        actions = self._actions(observation if batched else observation[None], action_masks)
        return (actions if batched else actions[0]), None

    def _batched(self, observation: np.ndarray, action_masks: np.ndarray | None) -> bool:
        """Whether ``observation`` is a batch rather than one observation."""
        return observation.ndim > len(self.observation_space.shape or ())

    def _actions(self, observations: np.ndarray, action_masks: np.ndarray | None) -> np.ndarray:
        """One action per row of ``observations`` (one observation comes as a batch of one)."""
        raise NotImplementedError


class RandomAgent(Predictor):
    """Picks every action uniformly at random, reproducibly from ``seed``, in the env's
    ``Discrete`` ``action_space`` (``observation_space`` tells batches from single obs)."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        seed: int | None = None,
    ) -> None:
        super().__init__(observation_space, action_space)
        self.rng = np.random.default_rng(seed)

    def _actions(self, observations: np.ndarray, action_masks: np.ndarray | None) -> np.ndarray:
        draws = self.rng.integers(self.action_space.n, size=len(observations))
        return self.action_space.start + draws


class ConstantAgent(Predictor):
    """Always takes ``action`` (``NegCollision``'s stay is 4), which must be in ``action_space``."""

    def __init__(
        self, observation_space: spaces.Space, action_space: spaces.Discrete, action: int
    ) -> None:
        super().__init__(observation_space, action_space)
        if not action_space.contains(action):
            raise ValueError(f"action {action!r} is not in the action space {action_space}")
        self.action = int(action)

    def _actions(self, observations: np.ndarray, action_masks: np.ndarray | None) -> np.ndarray:
        return np.full(len(observations), self.action, dtype=np.int64)


class MaskedRandomAgent(RandomAgent):
    """Picks uniformly at random among the actions an action mask allows: what the mask alone
    achieves, without any learning (the baseline of ``maskable-ppo``)."""

    def _batched(self, observation: np.ndarray, action_masks: np.ndarray | None) -> bool:
        """One mask ``(n,)`` or a batch ``(n_envs, n)``, as MaskablePPO takes them."""
        if action_masks is None:
            raise ValueError(
                "MaskedRandomAgent needs action_masks= (the env's action_masks()); "
                "evaluate it with action_masks=True"
            )
        return np.ndim(action_masks) == 2

    def _actions(self, observations: np.ndarray, action_masks: np.ndarray | None) -> np.ndarray:
        batch = np.atleast_2d(np.asarray(action_masks, dtype=bool))
        # A random score per action, forbidden ones below every allowed one: a uniform choice.
        scores = np.where(batch, self.rng.random(batch.shape), -1.0)
        return self.action_space.start + scores.argmax(axis=1)
