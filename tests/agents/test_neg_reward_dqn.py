import gymnasium as gym
import numpy as np
import pytest
import torch

from neg_agents import NegRewardDQN, PositiveRewardError
from neg_agents.neg_reward_dqn import NonPositiveDQNPolicy, NonPositiveQNetwork
from neg_agents.neg_reward_dqn.heads import (
    HEADS,
    NegativeAbs,
    NegativeSoftplus,
    NonPositiveClamp,
    NonPositiveDueling,
)
from neg_agents.neg_reward_dqn.policies import DEFAULT_HEAD
from neg_envs import PunishmentOnlyWrapper

from .conftest import TINY, round_trip


def test_mlp_policy_alias_builds_non_positive_networks(vec_env):
    model = NegRewardDQN("MlpPolicy", vec_env, **TINY)
    assert isinstance(model.policy, NonPositiveDQNPolicy)
    assert isinstance(model.q_net, NonPositiveQNetwork)
    assert isinstance(model.q_net_target, NonPositiveQNetwork)


@pytest.mark.parametrize("q_head", sorted(HEADS))
def test_q_values_are_non_positive_on_random_inputs(vec_env, q_head):
    policy_kwargs = {**TINY["policy_kwargs"], "q_head": q_head}
    model = NegRewardDQN("MlpPolicy", vec_env, seed=0, **{**TINY, "policy_kwargs": policy_kwargs})
    # Push the last layer's bias far in both directions: the values the agent acts on and
    # bootstraps from (evaluation mode, as SB3 uses them) must still be <= 0.
    model.policy.set_training_mode(False)
    last_linear = [m for m in model.q_net.q_net if isinstance(m, torch.nn.Linear)][-1]
    obs = torch.randn(512, vec_env.observation_space.shape[0]) * 10
    for bias in (-50.0, 0.0, 50.0):
        with torch.no_grad():
            last_linear.bias.fill_(bias)
            for net in (model.q_net, model.q_net_target):
                assert (net(obs) <= 0).all()


def test_trains_and_keeps_non_positive_values(vec_env):
    model = NegRewardDQN("MlpPolicy", vec_env, seed=0, **TINY).learn(300)
    obs = torch.as_tensor(np.stack([vec_env.observation_space.sample() for _ in range(64)]))
    with torch.no_grad():
        assert (model.q_net(obs) <= 0).all()
    assert model.num_timesteps >= 300


def test_positive_reward_raises_and_suggests_the_wrapper():
    env = gym.make("CartPole-v1")  # +1 per step
    model = NegRewardDQN("MlpPolicy", env, **TINY)
    with pytest.raises(PositiveRewardError, match="PunishmentOnlyWrapper"):
        model.learn(10)


def test_punishment_only_wrapper_makes_a_positive_env_trainable():
    env = PunishmentOnlyWrapper(
        gym.make("CartPole-v1"), mode="shift", max_reward=1.0, termination_penalty=1.0
    )
    NegRewardDQN("MlpPolicy", env, seed=0, **TINY).learn(100)


def test_rejects_a_policy_that_can_output_positive_values(vec_env):
    from stable_baselines3.dqn.policies import DQNPolicy

    with pytest.raises(TypeError, match="NonPositiveDQNPolicy"):
        NegRewardDQN(DQNPolicy, vec_env)


def test_save_load_round_trip_preserves_predictions_and_arguments(vec_env, tmp_path):
    model, loaded, _ = round_trip(
        "neg-reward-dqn", vec_env, tmp_path, 200, gamma=0.9, exploration_final_eps=0.03
    )
    for name in (
        "gamma",
        "exploration_final_eps",
        "learning_starts",
        "batch_size",
        "target_update_interval",
    ):
        assert getattr(loaded, name) == getattr(model, name)
    assert loaded.policy_kwargs == model.policy_kwargs
    assert isinstance(loaded.q_net, NonPositiveQNetwork)
    assert loaded.q_net.q_head == model.q_net.q_head == DEFAULT_HEAD
    assert type(loaded.q_net.features_extractor) is type(model.q_net.features_extractor)


@pytest.mark.parametrize("q_head", sorted(HEADS))
def test_save_load_keeps_the_head(vec_env, tmp_path, q_head):
    policy_kwargs = {**TINY["policy_kwargs"], "q_head": q_head}
    _, loaded, _ = round_trip("neg-reward-dqn", vec_env, tmp_path, 100, policy_kwargs=policy_kwargs)
    assert loaded.q_net.q_head == loaded.q_net_target.q_head == q_head


def test_heads_resolve_a_move_cost_near_zero_where_softplus_saturates():
    # Outputs 0 and -0.01 (stay free, a move costs 0.01) and their gradients w.r.t. the inputs.
    for head, x in (
        (NonPositiveClamp().eval(), torch.tensor([[0.0, -0.01]])),
        (NegativeAbs(), torch.tensor([[0.0, 0.01]])),
        (NonPositiveDueling(), torch.tensor([[0.0, 0.0, -0.01]])),
    ):
        x.requires_grad_(True)
        q = head(x)
        torch.testing.assert_close(q, torch.tensor([[0.0, -0.01]]))
        q[0, 1].backward()
        assert x.grad.abs().max() == 1.0  # a unit gradient: no saturation
    # -softplus needs x = -18.4 for Q = -1e-8, where its gradient is 1e-8 too.
    x = torch.tensor([-18.4], requires_grad=True)
    NegativeSoftplus()(x).backward()
    assert x.grad.abs().item() < 1e-7


def test_dueling_head_keeps_the_best_action_at_the_state_value():
    x = torch.tensor([[2.0, 0.5, 0.2, -1.0], [-0.3, 0.0, 0.0, 0.0]])
    q = NonPositiveDueling()(x)
    torch.testing.assert_close(q, torch.tensor([[-2.0, -2.3, -3.5], [-0.3, -0.3, -0.3]]))


def test_unknown_head_fails_clearly(vec_env):
    policy_kwargs = {**TINY["policy_kwargs"], "q_head": "relu"}
    with pytest.raises(ValueError, match="q_head must be one of"):
        NegRewardDQN("MlpPolicy", vec_env, **{**TINY, "policy_kwargs": policy_kwargs})


def test_clamp_head_projects_values_and_regresses_like_a_linear_head():
    x = torch.tensor([[0.3, -0.2, 0.1]])
    head = NonPositiveClamp().eval()
    torch.testing.assert_close(head(x), torch.tensor([[0.0, -0.2, 0.0]]))
    # Two actions clamp to the same 0: the greedy choice takes the larger pre-activation.
    assert head.preference(x).argmax().item() == 0
    # Inside a gradient step the loss sees the linear values, errors of both signs included.
    torch.testing.assert_close(head.train()(x), x)


def test_training_step_bootstraps_on_clamped_target_values(vec_env):
    policy_kwargs = {**TINY["policy_kwargs"], "q_head": "clamp"}
    model = NegRewardDQN("MlpPolicy", vec_env, seed=0, **{**TINY, "policy_kwargs": policy_kwargs})
    last = [m for m in model.q_net_target.q_net if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.bias.fill_(5.0)  # a target network that believes in positive returns
    obs = torch.as_tensor(np.stack([vec_env.observation_space.sample() for _ in range(16)]))
    assert (model.next_state_values(obs) <= 0).all()


def test_greedy_action_breaks_clamped_ties_by_pre_activation(vec_env):
    policy_kwargs = {**TINY["policy_kwargs"], "q_head": "clamp"}
    model = NegRewardDQN("MlpPolicy", vec_env, seed=0, **{**TINY, "policy_kwargs": policy_kwargs})
    last = [m for m in model.q_net.q_net if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.1, 0.2, -0.5, 0.3, 0.25]))
    obs = np.stack([vec_env.observation_space.sample() for _ in range(4)])
    with torch.no_grad():
        assert (model.q_net(torch.as_tensor(obs)) == torch.tensor([0, 0, -0.5, 0, 0])).all()
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], [3, 3, 3, 3])


def _prefer_model(vec_env, **prefer):
    policy_kwargs = {**TINY["policy_kwargs"], **prefer}
    return NegRewardDQN("MlpPolicy", vec_env, seed=0, **{**TINY, "policy_kwargs": policy_kwargs})


def test_preferred_action_is_taken_within_its_margin_of_the_best(vec_env):
    policy = _prefer_model(vec_env, prefer=4, prefer_margin=0.01).policy
    scores = torch.tensor(
        [
            [-0.10, -0.005, -0.2, -0.3, -0.012],  # stay 0.007 below the best: stay
            [-0.10, 0.0, -0.2, -0.3, -0.02],  # stay 0.02 below: the best move
            [-0.10, -0.005, -0.2, -0.3, -torch.inf],  # stay forbidden by a mask: the best
            [-0.10, -0.10, -0.2, -0.3, -0.09],  # stay is the best
        ]
    )
    assert policy.choose(scores, deterministic=True).tolist() == [4, 1, 1, 4]
    # The same rule on every acting path: predict, with and without masks.
    last = [m for m in policy.q_net.q_net if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([-0.1, -0.005, -0.2, -0.3, -0.012]))
    obs = np.stack([vec_env.observation_space.sample() for _ in range(3)])
    model = _prefer_model(vec_env, prefer=4, prefer_margin=0.01)
    model.policy.load_state_dict(policy.state_dict())
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], [4, 4, 4])
    masks = np.array([[True] * 5, [True] * 4 + [False], [False, False, True, True, True]])
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True, action_masks=masks)[0], [4, 1, 4]
    )
    greedy = _prefer_model(vec_env)  # no preference: the best action
    greedy.policy.load_state_dict(policy.state_dict())
    np.testing.assert_array_equal(greedy.predict(obs, deterministic=True)[0], [1, 1, 1])


def test_save_load_keeps_the_preferred_action(vec_env, tmp_path):
    policy_kwargs = {**TINY["policy_kwargs"], "prefer": 4, "prefer_margin": 0.01}
    _, loaded, _ = round_trip("neg-reward-dqn", vec_env, tmp_path, 100, policy_kwargs=policy_kwargs)
    assert (loaded.policy.prefer, loaded.policy.prefer_margin) == (4, 0.01)


@pytest.mark.parametrize(
    ("prefer", "match"),
    [
        # Say how to drop the main job's preference for stay on an env without it.
        ({"prefer": 5}, r"prefer must be an integer.*pass policy_kwargs=dict\(prefer=None\)"),
        ({"prefer": True}, "prefer must be an integer"),
        ({"prefer": 4, "prefer_margin": -0.1}, "prefer_margin must be a finite number"),
    ],
)
def test_bad_preference_fails_clearly(vec_env, prefer, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _prefer_model(vec_env, **prefer)
