"""A features extractor that reads a ``NegCollision`` observation as a set of obstacles."""

from __future__ import annotations

from typing import Any, cast

import gymnasium as gym
import torch as th
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn
from torch.nn import functional as F

from neg_agents.common.env_util import collision_config
from neg_envs.collision_core import MAX_RADIUS, OBSERVATION_MODES, CollisionConfig
from negdl.checks import check_choice, check_int, check_number

#: Pooling rules over the obstacle set.
POOLINGS = ("sum", "max", "sum+max")
#: Numbers per obstacle the extractor computes (see ``ObstacleSetExtractor``).
OBSTACLE_FEATURES = 9
#: Numbers about the agent alone: its distance to each of the four walls.
AGENT_FEATURES = 4


class ObstacleSetExtractor(BaseFeaturesExtractor):
    """Permutation-invariant features of a ``NegCollision`` observation (Deep Sets: Zaheer et
    al. 2017, https://arxiv.org/abs/1703.06114).

    Each obstacle becomes agent-relative numbers (:meth:`features`), lengths in agent steps and
    gaps measured from contact (agent radius + obstacle radius), so an obstacle two steps from
    contact looks the same whatever the radii; a relevance weight falls from 1 to 0 as it gets
    farther than ``reach_steps`` steps of closing speed. One MLP with shared weights embeds every
    obstacle; the weighted embeddings are pooled and joined with the agent's distances to the
    walls. The output ignores the obstacles' order, the parameters their number, and obstacles
    out of reach add nothing, so one policy runs on any obstacle count and either layout.

    The layout cannot be read from the observation's shape (2 + 4N and 2 + 5k collide), so it is
    an argument: :func:`collision_extractor_kwargs` fills every geometry argument from an env's
    ``CollisionConfig``. In ``nearest_radii`` the contact distance and the walls are read per
    observation (``contact_distance`` and ``agent_radius`` are ignored), so one policy acts in
    scenes of every size (``NegCollisionMix-v0``).

    :param observation: ``"absolute"`` (agent x, y, then N x (x, y, vx, vy)), ``"nearest"``
        (agent x, y, then k x (present, rel x, rel y, vx, vy)) or ``"nearest_radii"`` (agent
        x, y, agent radius and obstacle radius / ``MAX_RADIUS``, then as ``nearest``); see
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

    #: The observation layouts it reads.
    layouts: tuple[str, ...] = OBSERVATION_MODES

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
        check_choice("observation", observation, self.layouts)
        check_choice("pooling", pooling, POOLINGS)
        check_number("top_speed", top_speed, 0)
        for name in ("contact_distance", "agent_step", "agent_radius", "reach_steps"):
            check_number(name, locals()[name], 0, low_open=True)
        check_int("hidden", hidden, 1)
        per_obstacle = 4 if observation == "absolute" else 5
        lead = 4 if observation == "nearest_radii" else 2
        size = observation_space.shape[0] if len(observation_space.shape) == 1 else -1
        if size < lead or (size - lead) % per_obstacle:
            raise ValueError(
                f"an {observation!r} NegCollision observation has size {lead} + {per_obstacle} * "
                f"count, got shape {observation_space.shape}; pass the env's observation mode "
                "(collision_extractor_kwargs(env) does it)"
            )
        pooled = hidden * (2 if pooling == "sum+max" else 1)
        super().__init__(observation_space, features_dim=pooled + AGENT_FEATURES)
        self.observation, self.pooling = observation, pooling
        self.lead, self.per_obstacle = lead, per_obstacle
        self.num_slots = (size - lead) // per_obstacle
        self.reach_steps, self.top_speed = float(reach_steps), float(top_speed)
        self.agent_step, self.agent_radius = float(agent_step), float(agent_radius)
        self.contact = float(contact_distance) / self.agent_step
        # Observed velocity * velocity_unit = agent steps covered in reach_steps steps.
        self.velocity_unit = float(top_speed) * reach_steps / self.agent_step
        # Beyond this many agent steps an obstacle cannot touch the agent in reach_steps steps.
        self.reach = self.contact + reach_steps * (1.0 + float(top_speed) / self.agent_step)
        self.embed = nn.Sequential(
            nn.Linear(OBSTACLE_FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )

    def geometry(self, observations: th.Tensor) -> tuple[Any, Any, Any]:
        """The contact distance and the farthest relevant distance (agent steps), and the
        agent's radius (world units): numbers fixed by the env, or ``(batch, 1)`` tensors read
        from a ``nearest_radii`` observation."""
        if self.observation != "nearest_radii":
            return self.contact, self.reach, self.agent_radius
        radii = observations[:, 2:4] * MAX_RADIUS
        contact = radii.sum(dim=1, keepdim=True) / self.agent_step
        reach = contact + self.reach_steps * (1.0 + self.top_speed / self.agent_step)
        return contact, reach, radii[:, :1]

    def obstacle_slots(self, observations: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """The observation's obstacle slots ``(batch, slots, per_obstacle)``, each obstacle's
        offset from the agent (world units) and whether the slot holds one (1.0 or 0.0), the
        last two ``(batch, slots, 2)`` and ``(batch, slots, 1)``."""
        slots = observations[:, self.lead :].reshape(
            observations.shape[0], self.num_slots, self.per_obstacle
        )
        if self.observation == "absolute":
            offset = slots[..., :2] - observations[:, None, :2]
            return slots, offset, th.ones_like(slots[..., :1])
        return slots, slots[..., 1:3], slots[..., :1]

    def features(self, relative: th.Tensor, velocity: th.Tensor, contact: Any) -> th.Tensor:
        """``(..., OBSTACLE_FEATURES)`` for obstacles at ``relative`` with ``velocity`` (agent
        steps, ``(..., 2)`` each) and the contact distance ``contact`` (agent steps, a number or
        a tensor that broadcasts to ``(..., 1)``): the direction to the obstacle (2) and the gap
        left before contact (1), its velocity per ``reach_steps`` steps (2), and when (1, a
        share of ``reach_steps``), in which direction (2) and with what gap (1) it passes
        closest to a staying agent."""
        distance = th.linalg.vector_norm(relative, dim=-1, keepdim=True)
        # Closest approach to a staying agent along the obstacle's straight line.
        speed2 = th.linalg.vecdot(velocity, velocity).unsqueeze(-1)
        closing = th.linalg.vecdot(relative, velocity).unsqueeze(-1)
        when = th.clamp(-closing / speed2.clamp(min=1e-9), 0.0, 1.0)
        closest = th.addcmul(relative, velocity, when)
        closest_distance = th.linalg.vector_norm(closest, dim=-1, keepdim=True)
        return th.cat(
            [
                relative / distance.clamp(min=1e-6),
                distance - contact,
                velocity,
                when,
                closest / closest_distance.clamp(min=1e-6),
                closest_distance - contact,
            ],
            dim=-1,
        )

    def relevance(self, offset: th.Tensor, present: th.Tensor, reach: Any) -> th.Tensor:
        """Each obstacle's relevance in [0, 1], ``(batch, slots, 1)``: 1 within ``reach - 1``
        agent steps, falling to 0 at ``reach`` and beyond, 0 for an empty slot."""
        distance = th.linalg.vector_norm(offset, dim=-1, keepdim=True) / self.agent_step
        return (reach - distance).clamp_(0.0, 1.0) * present

    def obstacle_features(self, observations: th.Tensor) -> th.Tensor:
        """``(batch, slots, OBSTACLE_FEATURES + 1)``: :meth:`features` of every slot, then its
        :meth:`relevance` (0 for an empty ``nearest`` slot or an obstacle out of reach). The
        definition :meth:`forward` computes for the obstacles in reach only."""
        contact, reach, _ = self.geometry(observations)
        if th.is_tensor(reach):
            contact, reach = contact[:, None], reach[:, None]
        slots, offset, present = self.obstacle_slots(observations)
        velocity = slots[..., -2:] * self.velocity_unit
        features = self.features(offset / self.agent_step, velocity, contact)
        return th.cat([features, self.relevance(offset, present, reach)], dim=-1)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        """The pooled embeddings of the obstacles, then the agent's distances to the walls.

        Only obstacles in reach (relevance > 0), most often a few, go through the MLP: the
        others' embeddings are 0, which adds nothing to the sum, and the embeddings are >= 0
        (ReLU times a relevance in [0, 1]), so a 0 changes no maximum either.
        """
        batch = observations.shape[0]
        contact, reach, agent_radius = self.geometry(observations)
        slots, offset, present = self.obstacle_slots(observations)
        per_row = th.is_tensor(reach)
        relevance = self.relevance(offset, present, reach[:, None] if per_row else reach)
        relevance = relevance.reshape(-1)
        kept = relevance.nonzero().squeeze(1)
        rows = th.div(kept, max(self.num_slots, 1), rounding_mode="floor")
        # Features of the obstacles in reach, one row each, with their scene's geometry.
        kept_slots = slots.reshape(-1, self.per_obstacle).index_select(0, kept)
        relative = offset.reshape(-1, 2).index_select(0, kept) / self.agent_step
        if per_row:
            contact, kept_reach = contact.index_select(0, rows), reach.index_select(0, rows)
        else:
            kept_reach = reach
        inputs = self.features(relative, kept_slots[..., -2:] * self.velocity_unit, contact)
        inputs = th.clamp(inputs, -kept_reach, kept_reach)
        first, second = cast(nn.Linear, self.embed[0]), cast(nn.Linear, self.embed[2])
        hidden = th.relu(F.linear(inputs, first.weight, first.bias))
        embedded = th.relu(F.linear(hidden, second.weight, second.bias)) * relevance[kept, None]
        zeros = embedded.new_zeros(batch, embedded.shape[1])
        pooled = []
        if self.pooling in ("sum", "sum+max"):
            pooled.append(zeros.index_add(0, rows, embedded))
        if self.pooling in ("max", "sum+max"):
            index = rows[:, None].expand(-1, embedded.shape[1])
            pooled.append(zeros.scatter_reduce(0, index, embedded, "amax", include_self=True))
        agent = observations[:, :2]
        walls = th.cat([agent - agent_radius, (1.0 - agent_radius) - agent], dim=1)
        walls = walls / self.agent_step
        return th.cat([*pooled, th.clamp(walls, max=reach)], dim=1)


def collision_extractor_kwargs(config: CollisionConfig, **overrides: Any) -> dict[str, Any]:
    """``features_extractor_kwargs`` of :class:`ObstacleSetExtractor` for an env with ``config``
    (``env.unwrapped.config``), plus ``overrides`` (``hidden``, ``pooling``, ...)."""
    return {
        "observation": config.observation,
        # Upper bounds where the radii vary (nearest_radii reads the scene's from observations).
        "contact_distance": config.contact_distance,
        "top_speed": config.speed_range[1],
        "agent_step": config.agent_step,
        "agent_radius": config.agent_radius_range[1],
        **overrides,
    }


def collision_policy_kwargs(
    policy_kwargs: dict[str, Any] | None, env: Any, **extractor_defaults: Any
) -> dict[str, Any]:
    """``policy_kwargs`` (None: none) for an agent on ``env`` (an id, ``gym.Env`` or ``VecEnv``;
    None when SB3 loads a model). On a ``NegCollision`` env the features extractor defaults to
    :class:`ObstacleSetExtractor` (``features_extractor_class=FlattenExtractor``: SB3's flat
    MLP), whose arguments missing from ``policy_kwargs`` come from ``extractor_defaults``
    (``hidden``, ``pooling``, ...) and the env's geometry; other envs get it unchanged."""
    kwargs = dict(policy_kwargs or {})
    config = collision_config(env)
    extractor = kwargs.get("features_extractor_class", ObstacleSetExtractor if config else None)
    if config is None or extractor is not ObstacleSetExtractor:
        return kwargs
    defaults = collision_extractor_kwargs(config, **extractor_defaults)
    given = kwargs.get("features_extractor_kwargs") or {}
    kwargs["features_extractor_class"] = ObstacleSetExtractor
    kwargs["features_extractor_kwargs"] = {**defaults, **given}
    return kwargs
