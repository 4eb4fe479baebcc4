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

#: Pooling rules over the obstacle set.
POOLINGS = ("sum", "max", "sum+max")
#: Numbers per obstacle the extractor computes (see ``ObstacleSetExtractor``).
OBSTACLE_FEATURES = 9
#: Numbers about the agent alone: its distance to each of the four walls.
AGENT_FEATURES = 4


class ObstacleSetExtractor(BaseFeaturesExtractor):
    """Permutation-invariant features of a ``NegCollision`` observation (Deep Sets).

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
    it is an argument: :func:`collision_extractor_kwargs` fills every geometry argument from an
    env's ``CollisionConfig``, as the negdl agents do by default. In the ``nearest_radii`` layout
    the scene's radii are part of the observation: the contact distance and the walls are then
    read per observation (``contact_distance`` and ``agent_radius`` are ignored), so one policy
    acts in scenes of every size (``NegCollisionMix-v0``), and moves to any fixed scene with
    ``neg_agents.model_io.transfer_model``.

    :param observation_space: the env's ``Box`` observation space.
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
    wall_sign: th.Tensor
    wall_offset: th.Tensor

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
        if observation not in self.layouts:
            raise ValueError(f"observation must be one of {self.layouts}, got {observation!r}")
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
        # The walls' distances as one multiply-add: (agent x, y, x, y) * sign + offset, in
        # agent steps (fixed layouts; not saved with the model).
        low, high = self.agent_radius / self.agent_step, (1.0 - self.agent_radius) / self.agent_step
        self.register_buffer(
            "wall_sign", th.tensor([1.0, 1.0, -1.0, -1.0]) / self.agent_step, persistent=False
        )
        self.register_buffer("wall_offset", th.tensor([-low, -low, high, high]), persistent=False)

    def geometry(self, observations: th.Tensor) -> tuple[Any, Any, Any]:
        """The contact distance and the farthest relevant distance (agent steps), and the
        agent's radius (world units): numbers fixed by the env, or ``(batch, 1, 1)``,
        ``(batch, 1, 1)`` and ``(batch, 1)`` tensors read from a ``nearest_radii`` observation."""
        if self.observation != "nearest_radii":
            return self.contact, self.reach, self.agent_radius
        radii = observations[:, 2:4] * MAX_RADIUS
        contact = radii.sum(dim=1).reshape(-1, 1, 1) / self.agent_step
        reach = contact + self.reach_steps * (1.0 + self.top_speed / self.agent_step)
        return contact, reach, radii[:, :1]

    def obstacle_motion(self, observations: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """The observation's obstacle slots ``(batch, slots, per_obstacle)``, and each
        obstacle's position relative to the agent (agent steps) and velocity (agent steps per
        ``reach_steps`` steps), ``(batch, slots, 2)`` each."""
        agent = observations[:, :2]
        slots = observations[:, self.lead :].reshape(
            observations.shape[0], self.num_slots, self.per_obstacle
        )
        if self.observation == "absolute":
            relative = (slots[..., :2] - agent[:, None, :]) / self.agent_step
            velocity = slots[..., 2:] * self.velocity_unit
        else:
            relative = slots[..., 1:3] / self.agent_step
            velocity = slots[..., 3:] * self.velocity_unit
        return slots, relative, velocity

    def obstacle_features(self, observations: th.Tensor) -> th.Tensor:
        """``(batch, slots, OBSTACLE_FEATURES + 1)`` per obstacle, lengths in agent steps: the
        direction to it (2) and the gap left before contact (1), its velocity per
        ``reach_steps`` steps (2), and when (1, a share of ``reach_steps``), in which direction
        (2) and with what gap (1) it passes closest to a staying agent. Last: its relevance in
        [0, 1] (0 for an empty ``nearest`` slot or an obstacle out of reach)."""
        slots, relative, velocity = self.obstacle_motion(observations)
        contact, reach, _ = self.geometry(observations)
        present = th.ones_like(slots[..., 0]) if self.observation == "absolute" else slots[..., 0]
        distance = relative.norm(dim=-1, keepdim=True)
        # Closest approach to a staying agent along the obstacle's straight line.
        speed2 = (velocity * velocity).sum(dim=-1, keepdim=True)
        closing = -(relative * velocity).sum(dim=-1, keepdim=True)
        when = (closing / speed2.clamp(min=1e-9)).clamp(0.0, 1.0)
        closest = relative + velocity * when
        closest_distance = closest.norm(dim=-1, keepdim=True)
        relevance = (reach - distance).clamp(0.0, 1.0) * present[..., None]
        return th.cat(
            [
                relative / distance.clamp(min=1e-6),
                distance - contact,
                velocity,
                when,
                closest / closest_distance.clamp(min=1e-6),
                closest_distance - contact,
                relevance,
            ],
            dim=-1,
        )

    def forward(self, observations: th.Tensor) -> th.Tensor:
        if self.observation == "nearest_radii":
            return self.general_forward(observations)
        return self.fixed_forward(observations)

    def fixed_forward(self, observations: th.Tensor) -> th.Tensor:
        """:meth:`general_forward` for the layouts whose geometry the env fixes (``absolute``,
        ``nearest``), in fewer tensor operations: the per-call overhead of small tensor
        operations, not arithmetic, bounds a training step. The same features and outputs (up
        to float rounding; ``tests/agents/test_reference_extractor.py`` checks it)."""
        batch = observations.shape[0]
        contact, reach = self.contact, self.reach
        agent = observations[:, :2]
        slots, relative, velocity = self.obstacle_motion(observations)
        distance = th.linalg.vector_norm(relative, dim=-1, keepdim=True)
        speed2 = th.linalg.vecdot(velocity, velocity).unsqueeze(-1)
        closing = th.linalg.vecdot(relative, velocity).unsqueeze(-1)
        when = th.clamp(-closing / speed2.clamp(min=1e-9), 0.0, 1.0)
        closest = th.addcmul(relative, velocity, when)
        closest_distance = th.linalg.vector_norm(closest, dim=-1, keepdim=True)
        relevance = (reach - distance).clamp_(0.0, 1.0)
        if self.observation != "absolute":
            relevance = relevance * slots[..., :1]
        inputs = th.cat(
            [
                relative / distance.clamp(min=1e-6),
                distance - contact,
                velocity,
                when,
                closest / closest_distance.clamp(min=1e-6),
                closest_distance - contact,
            ],
            dim=-1,
        ).clamp_(-reach, reach)
        walls = th.addcmul(self.wall_offset, agent.repeat(1, 2), self.wall_sign).clamp_(max=reach)
        # Only obstacles in reach (relevance > 0) go through the MLP: the others' embeddings
        # are 0, which adds nothing to the sum, and the embeddings are >= 0 (ReLU times a
        # relevance in [0, 1]), so a 0 changes no maximum either. Most obstacles of a scene are
        # out of reach, so this is most of the arithmetic of a training step saved.
        relevance = relevance.reshape(-1)
        kept = relevance.nonzero().squeeze(1)
        first, second = cast(nn.Linear, self.embed[0]), cast(nn.Linear, self.embed[2])
        hidden = th.relu(
            F.linear(inputs.reshape(-1, OBSTACLE_FEATURES)[kept], first.weight, first.bias)
        )
        embedded = th.relu(F.linear(hidden, second.weight, second.bias)) * relevance[kept, None]
        rows = th.div(kept, max(self.num_slots, 1), rounding_mode="floor")
        zeros = embedded.new_zeros(batch, embedded.shape[1])
        pooled = []
        if self.pooling in ("sum", "sum+max"):
            pooled.append(zeros.index_add(0, rows, embedded))
        if self.pooling in ("max", "sum+max"):
            index = rows[:, None].expand(-1, embedded.shape[1])
            pooled.append(zeros.scatter_reduce(0, index, embedded, "amax", include_self=True))
        return th.cat([*pooled, walls], dim=1)

    def general_forward(self, observations: th.Tensor) -> th.Tensor:
        """The features from :meth:`obstacle_features` and :meth:`geometry`, for every layout."""
        features = self.obstacle_features(observations)
        relevance = features[..., -1:]
        _, reach, agent_radius = self.geometry(observations)
        # Obstacles out of reach are clipped to its edge so their inputs stay bounded.
        inputs = th.clamp(features[..., :-1], -reach, reach)
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
        low, high = agent_radius, 1.0 - agent_radius
        walls = th.cat([agent - low, high - agent], dim=1) / self.agent_step
        return th.cat(
            [*pooled, th.clamp(walls, max=reach[:, 0] if th.is_tensor(reach) else reach)], dim=1
        )


def collision_extractor_kwargs(config: CollisionConfig, **overrides: Any) -> dict[str, Any]:
    """``features_extractor_kwargs`` of :class:`ObstacleSetExtractor` for an env with ``config``.

    :param config: the env's ``CollisionConfig`` (``env.unwrapped.config``).
    :param overrides: extractor arguments to set as well (``hidden``, ``pooling``, ...).
    """
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
    """``policy_kwargs`` for an agent on ``env``, with :class:`ObstacleSetExtractor` on NegCollision envs.

    On a ``NegCollision`` env (see ``collision_config``) a ``policy_kwargs`` without a
    ``features_extractor_class`` gets :class:`ObstacleSetExtractor`, and the extractor's missing
    geometry arguments (observation layout, contact distance, speeds) are read from the env's
    config; arguments already given are kept. Other envs get ``policy_kwargs`` unchanged (SB3's
    flat MLP). Pass ``features_extractor_class=FlattenExtractor`` for a flat MLP on NegCollision.

    :param policy_kwargs: the policy arguments asked for (None: none).
    :param env: an env id, ``gym.Env`` or ``VecEnv`` (None when SB3 loads a model: unchanged).
    :param extractor_defaults: extractor arguments used unless ``policy_kwargs`` sets them
        (e.g. ``hidden``, ``pooling``).
    """
    kwargs = dict(policy_kwargs or {})
    config = collision_config(env)
    extractor = kwargs.get("features_extractor_class", ObstacleSetExtractor if config else None)
    if config is None or extractor is not ObstacleSetExtractor:
        return kwargs
    given = dict(kwargs.get("features_extractor_kwargs") or {})
    kwargs["features_extractor_class"] = ObstacleSetExtractor
    kwargs["features_extractor_kwargs"] = {
        **collision_extractor_kwargs(config, **extractor_defaults),
        **given,
    }
    return kwargs
