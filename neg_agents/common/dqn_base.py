"""A DQN whose TD target's next-state value is one overridable method."""

from __future__ import annotations

import numpy as np
import torch as th
from stable_baselines3 import DQN
from torch.nn import functional as F


class NegDQNBase(DQN):
    """SB3's DQN with the bootstrap value of the TD target factored out.

    Subclasses change how the value of the next state is estimated (e.g. under a policy that
    forbids actions) by overriding :meth:`next_state_values`; everything else (replay, n-step
    returns, Huber loss, gradient clipping, target updates, logging keys) is SB3's DQN.
    Constructor arguments are those of :class:`stable_baselines3.DQN`.
    """

    def next_state_values(self, next_observations: th.Tensor) -> th.Tensor:
        """Value ``V(s')`` of each next state, shape ``(batch,)``, from the target network.

        DQN's greedy value ``max_a Q_target(s', a)``.
        """
        return self.q_net_target(next_observations).max(dim=1).values

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses = []
        for _ in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            # n-step replay stores gamma**n per sample; plain replay has none.
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            with th.no_grad():
                next_values = self.next_state_values(replay_data.next_observations).reshape(-1, 1)
                target_q_values = (
                    replay_data.rewards + (1 - replay_data.dones) * discounts * next_values
                )
            current_q_values = th.gather(
                self.q_net(replay_data.observations), dim=1, index=replay_data.actions.long()
            )
            loss = F.smooth_l1_loss(current_q_values, target_q_values)
            losses.append(loss.item())
            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))
