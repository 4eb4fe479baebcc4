"""The agents negdl trains and compares, by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.type_aliases import PolicyPredictor

from neg_agents.common.baselines import ConstantAgent, RandomAgent
from neg_agents.neg_action_dqn import NegActionDQN
from neg_agents.neg_reward_dqn import NegRewardDQN
from neg_envs.collision_core import STAY


@dataclass(frozen=True)
class AlgoSpec:
    """How to build, train and evaluate one agent.

    :param name: the name scripts use.
    :param description: one line for ``--help`` and tables.
    :param model_class: the SB3 algorithm, or None for a baseline that learns nothing.
    :param negative_actions: the env is wrapped in ``neg_envs.NegativeActionWrapper`` (the
        agent's action k means "do not do k").
    :param deterministic: how the agent is evaluated (``predict(deterministic=...)``).
    :param baseline: builds the baseline from ``(observation_space, action_space, seed)``.
    """

    name: str
    description: str
    model_class: type[BaseAlgorithm] | None = None
    negative_actions: bool = False
    deterministic: bool = True
    baseline: Callable[[spaces.Space, spaces.Discrete, int | None], PolicyPredictor] | None = None

    @property
    def trainable(self) -> bool:
        return self.model_class is not None

    def make_baseline(
        self, observation_space: spaces.Space, action_space: spaces.Discrete, seed: int | None
    ) -> PolicyPredictor:
        if self.baseline is None:
            raise ValueError(
                f"{self.name} is a trained agent, not a baseline; train it or load a saved model"
            )
        return self.baseline(observation_space, action_space, seed)


ALGOS: dict[str, AlgoSpec] = {
    spec.name: spec
    for spec in (
        AlgoSpec(
            "neg-reward-dqn", "DQN with a Q-network that can only output values <= 0", NegRewardDQN
        ),
        AlgoSpec(
            "neg-action-dqn",
            "DQN that forbids its worst actions, uniform among the rest",
            NegActionDQN,
            deterministic=False,
        ),
        AlgoSpec(
            "dqn-negative-actions",
            "SB3 DQN choosing which action NOT to take (NegativeActionWrapper)",
            DQN,
            negative_actions=True,
        ),
        AlgoSpec("dqn", "SB3's standard DQN", DQN),
        AlgoSpec(
            "random",
            "uniformly random actions",
            baseline=lambda obs, act, seed: RandomAgent(obs, act, seed),
        ),
        AlgoSpec(
            "stay",
            "always stays (action 4)",
            baseline=lambda obs, act, seed: ConstantAgent(obs, act, STAY),
        ),
    )
}


def get_algo(name: str) -> AlgoSpec:
    """The spec of agent ``name``, or a ``ValueError`` listing the known names."""
    try:
        return ALGOS[name]
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; choose one of: {', '.join(ALGOS)}") from None
