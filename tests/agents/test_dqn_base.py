"""NegDQNBase changes only DQN's bootstrap value: checked against stable-baselines3's own DQN."""

import ast
import inspect
import textwrap

import numpy as np
import torch
from stable_baselines3 import DQN
from stable_baselines3.dqn.policies import QNetwork

from neg_agents import make_env
from neg_agents.common.dqn_base import BootstrapValues, NegDQNBase
from neg_agents.common.extractors import collision_policy_kwargs
from neg_agents.hyperparams import EXTRACTOR_KWARGS, hyperparams_for

from .conftest import TINY

SEAM = (
    "NegDQNBase.train swaps DQN's target network for BootstrapValues and relies on SB3's "
    "DQN.train calling self.q_net_target(replay_data.next_observations) exactly once and taking "
    ".max(dim=1) of the result as the bootstrap value. stable-baselines3's DQN.train no longer "
    "does: read its new train() and adapt NegDQNBase.train / BootstrapValues (neg_agents/common/"
    "dqn_base.py) so that next_state_values() still replaces exactly that value."
)


def test_sb3_dqn_train_still_bootstraps_through_the_seam():
    tree = ast.parse(textwrap.dedent(inspect.getsource(DQN.train)))
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "q_net_target"
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    ]
    assert len(calls) == 1, SEAM
    assigns = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and ast.unparse(node.value) == "self.q_net_target(replay_data.next_observations)"
    ]
    assert len(assigns) == 1 and isinstance(assigns[0].targets[0], ast.Name), SEAM
    name = assigns[0].targets[0].id
    uses = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load)
    ]
    maxed = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node) == f"{name}.max(dim=1)"
    ]
    # The raw target-network output is read once, by its max over actions.
    assert len(maxed) == 1 and ast.unparse(maxed[0].func.value) == name, SEAM
    first_use = min(uses, key=lambda node: (node.lineno, node.col_offset))
    assert first_use is maxed[0].func.value, SEAM


def parameters(model) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in model.policy.parameters()])


def test_default_bootstrap_trains_exactly_like_sb3_dqn(small_env_kwargs):
    trained = []
    for algo in (DQN, NegDQNBase):
        env = make_env("NegCollision-v0", 2, seed=0, env_kwargs=small_env_kwargs)
        # The policy NegDQNBase builds on NegCollision envs, given to SB3's DQN too.
        policy_kwargs = collision_policy_kwargs(TINY["policy_kwargs"], env, **EXTRACTOR_KWARGS)
        params = {**hyperparams_for("dqn"), **TINY, "policy_kwargs": policy_kwargs}
        trained.append(parameters(algo("MlpPolicy", env, seed=0, **params).learn(200)))
        env.close()
    np.testing.assert_array_equal(trained[0], trained[1], err_msg=SEAM)


class RecordingDQN(NegDQNBase):
    """Bootstraps on a constant and records what the hook saw."""

    def next_state_values(self, next_observations: torch.Tensor) -> torch.Tensor:
        self.seen.append((next_observations.shape, type(self.q_net_target)))
        return torch.full((next_observations.shape[0],), -1.0)


def test_train_bootstraps_on_the_hook_with_the_real_target_network(small_env_kwargs):
    env = make_env("NegCollision-v0", 2, seed=0, env_kwargs=small_env_kwargs)
    model = RecordingDQN("MlpPolicy", env, seed=0, **TINY)
    model.seen = []
    model.learn(100)
    model.seen.clear()
    model.train(gradient_steps=3, batch_size=8)
    obs_dim = env.observation_space.shape[0]
    assert model.seen == [((8, obs_dim), QNetwork)] * 3
    assert (
        isinstance(model.q_net_target, QNetwork) and model.q_net_target is model.policy.q_net_target
    )
    assert not isinstance(model.q_net_target, BootstrapValues)
    env.close()
