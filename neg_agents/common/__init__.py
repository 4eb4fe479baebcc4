"""Machinery shared by the negative agents: DQN base, baselines, evaluation, callbacks, envs and
the adapter that hands the batched env to stable-baselines3."""

from neg_agents.common.baselines import ConstantAgent, RandomAgent
from neg_agents.common.callbacks import CollisionEvalCallback
from neg_agents.common.dqn_base import NegDQNBase
from neg_agents.common.env_util import VEC_ENV_KINDS, make_env
from neg_agents.common.evaluation import EpisodeStats, evaluate_agent
from neg_agents.common.sb3_vec_env import SB3VecEnvAdapter

__all__ = [
    "VEC_ENV_KINDS",
    "CollisionEvalCallback",
    "ConstantAgent",
    "EpisodeStats",
    "NegDQNBase",
    "RandomAgent",
    "SB3VecEnvAdapter",
    "evaluate_agent",
    "make_env",
]
