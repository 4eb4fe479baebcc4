from neg_agents.neg_action_dqn.neg_action_dqn import NegActionDQN
from neg_agents.neg_action_dqn.policies import (
    ForbiddingRule,
    MlpPolicy,
    NegActionDQNPolicy,
    forbidden_actions,
)

__all__ = ["ForbiddingRule", "MlpPolicy", "NegActionDQN", "NegActionDQNPolicy", "forbidden_actions"]
