from neg_agents.neg_action_dqn.neg_action_dqn import NegActionDQN
from neg_agents.neg_action_dqn.policies import ForbiddingRule, NegActionDQNPolicy, forbidden_actions

__all__ = ["ForbiddingRule", "NegActionDQN", "NegActionDQNPolicy", "forbidden_actions"]
