"""Negative agents built on stable-baselines3.

- :class:`NegRewardDQN`: DQN whose Q-values are <= 0 by construction, for punishment-only envs.
- :class:`NegActionDQN`: DQN whose policy forbids the actions it judges worst.
- :data:`ALGOS`: every agent the scripts know, including SB3's DQN trained through
  ``neg_envs.NegativeActionWrapper`` and the random and always-stay baselines.
- :class:`SB3VecEnvAdapter`: hands ``neg_envs``' natively batched env to stable-baselines3.
"""

from neg_agents.algos import ALGOS, AlgoSpec, get_algo
from neg_agents.common import (
    CollisionEvalCallback,
    ConstantAgent,
    RandomAgent,
    SB3VecEnvAdapter,
    evaluate_agent,
    make_env,
)
from neg_agents.neg_action_dqn import NegActionDQN, forbidden_actions
from neg_agents.neg_reward_dqn import NegRewardDQN, PositiveRewardError

__all__ = [
    "ALGOS",
    "AlgoSpec",
    "CollisionEvalCallback",
    "ConstantAgent",
    "NegActionDQN",
    "NegRewardDQN",
    "PositiveRewardError",
    "RandomAgent",
    "SB3VecEnvAdapter",
    "evaluate_agent",
    "forbidden_actions",
    "get_algo",
    "make_env",
]
