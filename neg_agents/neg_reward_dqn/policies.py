"""Q-networks that can only output values <= 0, for environments that only punish."""

from __future__ import annotations

from typing import Any, cast

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.dqn.policies import QNetwork
from torch import nn

from neg_agents.common.masks import MaskablePolicy
from neg_agents.neg_reward_dqn.heads import HEADS, NonPositiveHead
from negdl.checks import check_int, check_number

#: The head ``NonPositiveDQNPolicy`` uses unless told otherwise.
DEFAULT_HEAD = "clamp"


class NonPositiveQNetwork(QNetwork):
    """SB3's ``QNetwork`` whose output head (:mod:`~neg_agents.neg_reward_dqn.heads`) makes every
    Q-value it acts on or bootstraps from <= 0: when every reward is <= 0, so is every true action
    value, and the head removes answers that can only be wrong.

    :param q_head: a name in :data:`~neg_agents.neg_reward_dqn.heads.HEADS`; the other arguments
        are ``QNetwork``'s.
    """

    def __init__(self, *args: Any, q_head: str = DEFAULT_HEAD, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if q_head not in HEADS:
            raise ValueError(f"q_head must be one of {sorted(HEADS)}, got {q_head!r}")
        head = HEADS[q_head]()
        self.q_head = q_head
        outputs = int(self.action_space.n) + head.extra_outputs
        self.q_net = nn.Sequential(
            *create_mlp(self.features_dim, outputs, self.net_arch, self.activation_fn), head
        )
        # Training mode is for gradient steps only (NegRewardDQN.train): elsewhere, values
        # read from the network are the ones the agent acts on.
        self.set_training_mode(False)

    def preferences(self, observation: PyTorchObs) -> th.Tensor:
        """What the greedy policy maximises, ``(batch, n_actions)``: the head's values, with
        ties (e.g. several clamped to 0) broken."""
        # Layer by layer: wrapping the body in a new nn.Sequential per call costs more than the
        # acting step's small layers.
        *body, head = self.q_net
        hidden = self.extract_features(observation, self.features_extractor)
        for layer in body:
            hidden = layer(hidden)
        return cast(NonPositiveHead, head).preference(hidden)  # built in __init__

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self.preferences(observation).argmax(dim=1).reshape(-1)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "q_head": self.q_head}


class NonPositiveDQNPolicy(MaskablePolicy):
    """``DQNPolicy`` whose online and target networks are both :class:`NonPositiveQNetwork`, so
    acting and the TD target see the same prior. It acts greedily, but takes ``prefer`` (e.g.
    ``STAY``, 4, on NegCollision, which costs nothing) wherever it is allowed and valued within
    ``prefer_margin`` of the best, so that differences of value the network cannot resolve do not
    make the agent move; the TD target stays the greedy max.

    :param q_head: the output head (see :class:`NonPositiveQNetwork`).
    :param prefer: the action preferred on near-ties, an index of the action space, or None
        (always the best action).
    :param prefer_margin: how far below the best value ``prefer`` may be and still be taken,
        >= 0 (0: only on exact ties).
    """

    action_space: spaces.Discrete  # DQNPolicy's only action space
    q_net: NonPositiveQNetwork

    def __init__(
        self,
        *args: Any,
        q_head: str = DEFAULT_HEAD,
        prefer: int | None = None,
        prefer_margin: float = 0.0,
        **kwargs: Any,
    ) -> None:
        # DQNPolicy.__init__ builds the networks, which read (and check) q_head.
        self.q_head = q_head
        super().__init__(*args, **kwargs)
        n_actions = int(self.action_space.n)
        self.prefer = None if prefer is None else check_int("prefer", prefer, 0)
        if self.prefer is not None and self.prefer >= n_actions:
            raise ValueError(
                f"prefer must be an integer in [0, {n_actions - 1}] or None, got {prefer}: the "
                f"env has {n_actions} actions (without stay, allow_stay=False, pass "
                "policy_kwargs=dict(prefer=None))"
            )
        self.prefer_margin = check_number("prefer_margin", prefer_margin, 0)

    def _predict(self, obs: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self.choose(self.q_net.preferences(obs), deterministic)

    def choose(self, scores: th.Tensor, deterministic: bool) -> th.Tensor:
        """The best action of each row of ``scores`` ``(batch, n)`` (-inf where forbidden), or
        ``prefer`` where it is allowed and within ``prefer_margin`` of the best."""
        best = scores.argmax(dim=1)
        if self.prefer is None:
            return best
        preferred = scores[:, self.prefer]
        near = preferred >= scores.gather(1, best[:, None]).squeeze(1) - self.prefer_margin
        return th.where(near & (preferred > -th.inf), self.prefer, best)

    def make_q_net(self) -> NonPositiveQNetwork:
        # A fresh features extractor for each network, as DQNPolicy does.
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return NonPositiveQNetwork(**net_args, q_head=self.q_head).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        own = {"q_head": self.q_head, "prefer": self.prefer, "prefer_margin": self.prefer_margin}
        return {**super()._get_constructor_parameters(), **own}


MlpPolicy = NonPositiveDQNPolicy
