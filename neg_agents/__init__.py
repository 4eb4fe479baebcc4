"""Negative agents built on stable-baselines3.

- :class:`NegRewardDQN`: DQN whose Q-values are <= 0 by construction, for punishment-only envs.
- :class:`NegActionDQN`: DQN whose policy forbids the actions it judges worst.
- :class:`CollisionPlanner`: the model-based limit, planning on the simulation's exact state.
- :data:`ALGOS`: every agent the scripts know, including SB3's DQN trained through
  ``neg_envs.NegativeActionWrapper``, the planner and the random and always-stay baselines.
"""

from neg_agents.algos import ALGOS, AlgoSpec, get_algo
from neg_agents.common import (
    CollisionEvalCallback,
    ConstantAgent,
    RandomAgent,
    evaluate_agent,
    make_env,
)
from neg_agents.common.planner import CollisionPlanner
from neg_agents.neg_action_dqn import NegActionDQN, forbidden_actions
from neg_agents.neg_reward_dqn import NegRewardDQN, PositiveRewardError

__all__ = [
    "ALGOS",
    "AlgoSpec",
    "CollisionEvalCallback",
    "CollisionPlanner",
    "ConstantAgent",
    "NegActionDQN",
    "NegRewardDQN",
    "PositiveRewardError",
    "RandomAgent",
    "evaluate_agent",
    "forbidden_actions",
    "get_algo",
    "make_env",
]
