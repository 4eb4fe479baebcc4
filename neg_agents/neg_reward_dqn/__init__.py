from neg_agents.neg_reward_dqn.neg_reward_dqn import NegRewardDQN, PositiveRewardError
from neg_agents.neg_reward_dqn.policies import NonPositiveDQNPolicy, NonPositiveQNetwork

__all__ = ["NegRewardDQN", "NonPositiveDQNPolicy", "NonPositiveQNetwork", "PositiveRewardError"]
