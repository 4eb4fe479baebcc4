"""Q-networks that can only output values <= 0, for environments that only punish."""

from __future__ import annotations

import torch as th
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn
from torch.nn import functional as F


class NegativeSoftplus(nn.Module):
    """``-softplus(x)``: a smooth map onto ``(-inf, 0)`` whose gradient never vanishes for
    strongly negative outputs (unlike ``-relu``), so large punishments stay learnable."""

    def forward(self, x: th.Tensor) -> th.Tensor:
        return -F.softplus(x)


class NonPositiveQNetwork(QNetwork):
    """SB3's ``QNetwork`` with a ``-softplus`` output head: every Q-value is <= 0.

    When every reward is <= 0, every true action value is <= 0 too, so the head removes a part
    of the hypothesis space that can only hold wrong answers. Arguments as for ``QNetwork``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.q_net = nn.Sequential(*self.q_net, NegativeSoftplus())


class NonPositiveDQNPolicy(DQNPolicy):
    """``DQNPolicy`` whose online and target networks are both :class:`NonPositiveQNetwork`,
    so acting and the TD target see the same prior. Arguments as for ``DQNPolicy``."""

    def make_q_net(self) -> NonPositiveQNetwork:
        # A fresh features extractor for each network, as DQNPolicy does.
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return NonPositiveQNetwork(**net_args).to(self.device)


MlpPolicy = NonPositiveDQNPolicy
