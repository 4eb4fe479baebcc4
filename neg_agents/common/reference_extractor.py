"""The extractor as of negdl 0.1, kept as the benchmark's baseline and the tests' reference.

A verbatim copy of ``neg_agents.common.extractors.ObstacleSetExtractor`` at commit e73a05e, before
it was rewritten for speed. ``scripts/bench_training.py`` trains with it to measure "today's
training path" beside the current one, and tests check that the current extractor computes
the same outputs. Do not change it: it is what faster versions are measured against. Agents use
``ObstacleSetExtractor``; nothing outside the benchmark and the tests imports this module.
"""

from __future__ import annotations

import gymnasium as gym
import torch as th
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from neg_envs.collision_core import OBSERVATION_MODES

# The constants of negdl 0.1's extractors module, frozen with the class.
POOLINGS = ("sum", "max", "sum+max")
OBSTACLE_FEATURES = 9
AGENT_FEATURES = 4


class ReferenceObstacleSetExtractor(BaseFeaturesExtractor):
    """negdl 0.1's ``ObstacleSetExtractor``, frozen: permutation-invariant features of a
    ``NegCollision`` observation (Deep Sets).

    Each obstacle becomes a short vector of agent-relative numbers (see
    :meth:`obstacle_features`): its direction and the gap left before contact, its velocity, and
    when, where and how closely it passes a staying agent. Lengths are in agent steps and gaps
    are measured from contact (agent radius + obstacle radius), so an obstacle two steps from
    contact looks the same whatever the radii. A relevance weight falls from 1 to 0 as the
    obstacle gets farther than ``reach_steps`` steps of closing speed. One MLP with shared
    weights embeds every obstacle; the weighted embeddings are pooled (sum and/or max) and joined
    with the agent's distances to the walls. Reordering the obstacles does not change the
    output, the parameters do not depend on the number of obstacles, and obstacles out of reach
    contribute nothing, so one trained policy runs on any obstacle count and on both observation
    layouts (Deep Sets: Zaheer et al. 2017, https://arxiv.org/abs/1703.06114).

    The layout cannot be read from the observation's shape alone (2 + 4N and 2 + 5k collide), so
    it is an argument: ``extractors.collision_extractor_kwargs`` fills every geometry argument from an
    env's ``CollisionConfig``, as the negdl agents do by default.

    :param observation_space: the env's ``Box`` observation space.
    :param observation: ``"absolute"`` (agent x, y, then N x (x, y, vx, vy)) or ``"nearest"``
        (agent x, y, then k x (present, rel x, rel y, vx, vy)); see
        ``CollisionConfig.observation_space``.
    :param contact_distance: agent radius + obstacle radius (world units), > 0.
    :param top_speed: the obstacles' top speed (observed velocities are divided by it), >= 0.
    :param agent_step: how far one move takes the agent (world units), > 0.
    :param agent_radius: the agent's radius: its centre stays this far from the walls, > 0.
    :param reach_steps: an obstacle that cannot reach the agent within this many steps (at the
        agent's plus its own speed) is ignored, > 0.
    :param hidden: width of the per-obstacle MLP (two layers), >= 1.
    :param pooling: ``"sum"``, ``"max"`` or ``"sum+max"`` (both, concatenated).
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        observation: str = "absolute",
        contact_distance: float = 0.05,
        top_speed: float = 0.01,
        agent_step: float = 0.02,
        agent_radius: float = 0.02,
        reach_steps: float = 5.0,
        hidden: int = 64,
        pooling: str = "sum+max",
    ) -> None:
        if observation not in OBSERVATION_MODES:
            raise ValueError(f"observation must be one of {OBSERVATION_MODES}, got {observation!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if not top_speed >= 0:
            raise ValueError(f"top_speed must be >= 0, got {top_speed!r}")
        for name, value in (
            ("contact_distance", contact_distance),
            ("agent_step", agent_step),
            ("agent_radius", agent_radius),
            ("reach_steps", reach_steps),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden!r}")
        per_obstacle = 4 if observation == "absolute" else 5
        size = observation_space.shape[0] if len(observation_space.shape) == 1 else -1
        if size < 2 or (size - 2) % per_obstacle:
            raise ValueError(
                f"an {observation!r} NegCollision observation has size 2 + {per_obstacle} * count, "
                f"got shape {observation_space.shape}; pass the env's observation mode "
                "(collision_extractor_kwargs(env) does it)"
            )
        pooled = hidden * (2 if pooling == "sum+max" else 1)
        super().__init__(observation_space, features_dim=pooled + AGENT_FEATURES)
        self.observation, self.pooling = observation, pooling
        self.num_slots = (size - 2) // per_obstacle
        # Lengths are measured in agent steps, so that scenes with other radii look alike
        # wherever the gap to contact is the same.
        self.agent_step, self.agent_radius = float(agent_step), float(agent_radius)
        self.contact = float(contact_distance) / self.agent_step
        # Observed velocity * velocity_unit = agent steps covered in reach_steps steps.
        self.velocity_unit = float(top_speed) * reach_steps / self.agent_step
        # Beyond this many agent steps an obstacle cannot touch the agent in reach_steps steps.
        self.reach = self.contact + reach_steps * (1.0 + float(top_speed) / self.agent_step)
        self.embed = nn.Sequential(
            nn.Linear(OBSTACLE_FEATURES, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )

    def obstacle_features(self, observations: th.Tensor) -> th.Tensor:
        """``(batch, slots, OBSTACLE_FEATURES + 1)`` per obstacle, lengths in agent steps: the
        direction to it (2) and the gap left before contact (1), its velocity per
        ``reach_steps`` steps (2), and when (1, a share of ``reach_steps``), in which direction
        (2) and with what gap (1) it passes closest to a staying agent. Last: its relevance in
        [0, 1] (0 for an empty ``nearest`` slot or an obstacle out of reach)."""
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
