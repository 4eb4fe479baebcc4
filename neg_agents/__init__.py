"""Negative agents built on stable-baselines3.

- :class:`NegRewardDQN`: DQN whose Q-values are <= 0 by construction, for punishment-only envs.
- :class:`NegActionDQN`: DQN whose policy forbids the actions it judges worst.
- :class:`CollisionPlanner`: the model-based limit, planning on the simulation's exact state.
- :data:`ALGOS`: every agent the scripts know, including SB3's DQN trained through
  ``neg_envs.NegativeActionWrapper``, the planner and the random and always-stay baselines.
- :func:`train_agent` with a :class:`TrainConfig`: one training run, as ``negdl-train`` and the
  bench do it; :func:`~neg_agents.watch.watch_agent` and :func:`~neg_agents.bench.run_bench`
  are ``negdl-watch`` and ``negdl-bench``.
- :class:`SB3VecEnvAdapter`: hands ``neg_envs``' natively batched env to stable-baselines3.
- Saved runs load without unpickling anything (``neg_agents.model_io.load_agent``); weights
  holding pickled objects raise :class:`UnsafeModelFileError`.
"""

from neg_agents.algos import ALGOS, AlgoSpec, get_algo
from neg_agents.common.baselines import ConstantAgent, RandomAgent
from neg_agents.common.callbacks import CollisionEvalCallback
from neg_agents.common.env_util import make_env
from neg_agents.common.evaluation import evaluate_agent
from neg_agents.common.model_files import UnsafeModelFileError
from neg_agents.common.planner import CollisionPlanner
from neg_agents.common.sb3_vec_env import SB3VecEnvAdapter
from neg_agents.neg_action_dqn import ForbiddingRule, NegActionDQN, forbidden_actions
from neg_agents.neg_reward_dqn import NegRewardDQN, PositiveRewardError
from neg_agents.training import TrainConfig, TrainResult, train_agent

__all__ = [
    "ALGOS",
    "AlgoSpec",
    "CollisionEvalCallback",
    "CollisionPlanner",
    "ConstantAgent",
    "ForbiddingRule",
    "NegActionDQN",
    "NegRewardDQN",
    "PositiveRewardError",
    "RandomAgent",
    "SB3VecEnvAdapter",
    "TrainConfig",
    "TrainResult",
    "UnsafeModelFileError",
    "evaluate_agent",
    "forbidden_actions",
    "get_algo",
    "make_env",
    "train_agent",
]
