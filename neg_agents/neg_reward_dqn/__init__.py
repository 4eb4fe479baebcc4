from neg_agents.neg_reward_dqn.neg_reward_dqn import NegRewardDQN, PositiveRewardError
from neg_agents.neg_reward_dqn.policies import MlpPolicy, NonPositiveDQNPolicy, NonPositiveQNetwork

__all__ = [
    "MlpPolicy",
    "NegRewardDQN",
    "NonPositiveDQNPolicy",
    "NonPositiveQNetwork",
    "PositiveRewardError",
]
