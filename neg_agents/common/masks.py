"""Action masks handed to a DQN policy: the one check of their shape, and the ``predict`` that
takes them."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.dqn.policies import DQNPolicy


def masked_scores(
    policy: DQNPolicy, observation: np.ndarray | dict[str, np.ndarray], action_masks: Any
) -> tuple[th.Tensor, bool, np.ndarray]:
    """What the policy ranks actions by ``(batch, n)`` (the Q-network's ``preferences`` where it
    has them, else its Q-values), -inf where ``action_masks`` is False; whether the observation
    was a batch; the masks as ``(batch, n)`` bools.

    :raises ValueError: dict observations, masks of the wrong shape or a row allowing nothing.
    """
    obs, vectorized = policy.obs_to_tensor(observation)
    if not isinstance(obs, th.Tensor):
        raise ValueError("action masks take array observations, not dict ones")
    n = int(cast(spaces.Discrete, policy.action_space).n)  # DQNPolicy's only action space
    masks = np.asarray(action_masks, dtype=bool)
    if masks.size != obs.shape[0] * n or not masks.reshape(-1, n).any(axis=1).all():
        raise ValueError(
            f"action_masks must hold one row of {n} bools per observation ({obs.shape[0]}) "
            f"with at least one True each, got shape {masks.shape}"
        )
    masks = masks.reshape(-1, n)
    with th.no_grad():
        scores = getattr(policy.q_net, "preferences", policy.q_net)(obs)
    allowed = th.as_tensor(masks, device=scores.device)
    return scores.masked_fill(~allowed, -th.inf), vectorized, masks


class MaskablePolicy(DQNPolicy):
    """``DQNPolicy`` whose ``predict`` also takes ``action_masks`` (True: allowed, e.g. the
    env's ``action_masks()``), as sb3-contrib's maskable policies do."""

    def predict(  # SB3's, plus the masks evaluate_agent passes
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
        action_masks: Any = None,
    ) -> tuple[Any, Any]:
        """SB3's ``predict``; with ``action_masks``, :meth:`masked_predict`'s actions."""
        if action_masks is None:
            return super().predict(observation, state, episode_start, deterministic)
        return self.masked_predict(observation, action_masks, deterministic), state

    def masked_predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        action_masks: Any,
        deterministic: bool,
    ) -> np.ndarray:
        """Actions for ``observation`` by :meth:`choose` among those ``action_masks`` allows."""
        scores, vectorized, _ = masked_scores(self, observation, action_masks)
        actions = self.choose(scores, deterministic).cpu().numpy()
        return actions if vectorized else actions[0]

    def choose(self, scores: th.Tensor, deterministic: bool) -> th.Tensor:
        """The action of each row of ``scores`` ``(batch, n)``, -inf where forbidden: the best."""
        return scores.argmax(dim=1)
