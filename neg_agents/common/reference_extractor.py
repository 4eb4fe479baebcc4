"""The extractor as of negdl 0.1 (commit e73a05e), the baseline of ``scripts/bench_training.py``
("today's training path") and the tests' reference: do not change its ``obstacle_features`` and
``forward``."""

from __future__ import annotations

import torch as th

from neg_agents.common.extractors import ObstacleSetExtractor


class ReferenceObstacleSetExtractor(ObstacleSetExtractor):
    """negdl 0.1's ``ObstacleSetExtractor`` forward pass, frozen, on the current class's
    constructor and arguments (so a seed gives the same weights): the same outputs up to float
    rounding, for the ``"absolute"`` and ``"nearest"`` layouts (0.1 had no ``"nearest_radii"``)."""

    layouts = ("absolute", "nearest")

    def obstacle_features(self, observations: th.Tensor) -> th.Tensor:
        """:meth:`ObstacleSetExtractor.obstacle_features`, as negdl 0.1 computed them."""
        agent = observations[:, :2]
        if self.observation == "absolute":
            slots = observations[:, 2:].reshape(-1, self.num_slots, 4)
            relative = (slots[..., :2] - agent[:, None, :]) / self.agent_step
            velocity = slots[..., 2:] * self.velocity_unit
            present = th.ones_like(slots[..., 0])
        else:
            slots = observations[:, 2:].reshape(-1, self.num_slots, 5)
            present = slots[..., 0]
            relative = slots[..., 1:3] / self.agent_step
            velocity = slots[..., 3:] * self.velocity_unit
        distance = relative.norm(dim=-1, keepdim=True)
        # Closest approach to a staying agent along the obstacle's straight line.
        speed2 = (velocity * velocity).sum(dim=-1, keepdim=True)
        closing = -(relative * velocity).sum(dim=-1, keepdim=True)
        when = (closing / speed2.clamp(min=1e-9)).clamp(0.0, 1.0)
        closest = relative + velocity * when
        closest_distance = closest.norm(dim=-1, keepdim=True)
        relevance = (self.reach - distance).clamp(0.0, 1.0) * present[..., None]
        return th.cat(
            [
                relative / distance.clamp(min=1e-6),
                distance - self.contact,
                velocity,
                when,
                closest / closest_distance.clamp(min=1e-6),
                closest_distance - self.contact,
                relevance,
            ],
            dim=-1,
        )

    def forward(self, observations: th.Tensor) -> th.Tensor:
        features = self.obstacle_features(observations)
        relevance = features[..., -1:]
        # Obstacles out of reach are clipped to its edge so their inputs stay bounded.
        inputs = features[..., :-1].clamp(-self.reach, self.reach)
        embedded = self.embed(inputs) * relevance
        pooled = []
        if self.pooling in ("sum", "sum+max"):
            pooled.append(embedded.sum(dim=1))
        if self.pooling in ("max", "sum+max"):
            pooled.append(
                embedded.max(dim=1).values
                if self.num_slots
                else embedded.new_zeros(embedded.shape[0], embedded.shape[-1])
            )
        agent = observations[:, :2]
        low, high = self.agent_radius, 1.0 - self.agent_radius
        walls = th.cat([agent - low, high - agent], dim=1) / self.agent_step
        return th.cat([*pooled, walls.clamp(max=self.reach)], dim=1)
