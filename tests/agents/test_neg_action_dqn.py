import math

import numpy as np
import pytest
import torch

from neg_agents import NegActionDQN, forbidden_actions
from neg_agents.neg_action_dqn import ForbiddingRule, NegActionDQNPolicy

from .conftest import TINY, round_trip


def test_forbidding_rule_on_hand_values():
    q = torch.tensor([[0.0, -0.01, -0.5, -0.2, -0.04], [-1.0, -1.0, -1.0, -1.0, -1.0]])
    # margin 0.05: -0.5 and -0.2 are too far below the best; the worst (-0.5) is forbidden anyway.
    # Row 2 ties everywhere: the first index counts as best, the next one as worst.
    expected = torch.tensor([[False, False, True, True, False], [False, True, False, False, False]])
    assert torch.equal(forbidden_actions(q, 0.05, 1), expected)
    # Only the worst, whatever the margin.
    assert torch.equal(
        forbidden_actions(q, math.inf, 1)[0], torch.tensor([False, False, True, False, False])
    )
    # Nothing forbidden: uniform over everything.
    assert not forbidden_actions(q, math.inf, 0).any()
    # All but the best forbidden, even on ties: one action always stays allowed.
    assert torch.equal(forbidden_actions(q, 0.0, 4).sum(dim=1), torch.tensor([4, 4]))
    assert not forbidden_actions(q, 0.0, 4)[torch.arange(2), q.argmax(dim=1)].any()


def q_values(model, obs):
    with torch.no_grad():
        return model.q_net(torch.as_tensor(obs))


def test_never_selects_a_forbidden_action_and_spreads_over_the_allowed(vec_env):
    model = NegActionDQN("MlpPolicy", vec_env, margin=0.05, num_forbidden=2, seed=0, **TINY).learn(
        200
    )
    model.exploration_rate = 0.0  # exploration has its own, looser rule (next test)
    obs = np.repeat(vec_env.observation_space.sample()[None], 4000, axis=0)
    allowed = ~forbidden_actions(q_values(model, obs[:1]), 0.05, 2)[0].numpy()
    actions, _ = model.predict(obs)
    counts = np.bincount(actions, minlength=5)
    assert counts[~allowed].sum() == 0
    share = counts[allowed] / counts.sum()
    assert np.all(np.abs(share - 1 / allowed.sum()) < 0.05), share


def test_exploration_never_takes_the_worst_action(vec_env):
    model = NegActionDQN("MlpPolicy", vec_env, margin=0.0, num_forbidden=1, **TINY)
    model.exploration_rate = 1.0
    obs = np.repeat(vec_env.observation_space.sample()[None], 4000, axis=0)
    worst = int(q_values(model, obs[:1])[0].argmin())
    counts = np.bincount(model.predict(obs)[0], minlength=5)
    assert counts[worst] == 0
    assert (np.delete(counts, worst) > 800).all()
    # The policy on its own is the pure rule: margin 0 leaves only the best action.
    best = int(q_values(model, obs[:1])[0].argmax())
    assert (model.policy.predict(obs, deterministic=False)[0] == best).all()


def test_deterministic_means_the_best_action(vec_env):
    model = NegActionDQN("MlpPolicy", vec_env, margin=10.0, **TINY)
    obs = np.stack([vec_env.observation_space.sample() for _ in range(64)])
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], q_values(model, obs).argmax(dim=1).numpy()
    )


def test_td_target_uses_the_mean_over_allowed_actions_of_the_target_network(vec_env):
    model = NegActionDQN("MlpPolicy", vec_env, margin=0.05, num_forbidden=1, **TINY)
    obs = torch.as_tensor(np.stack([vec_env.observation_space.sample() for _ in range(8)]))
    torch.manual_seed(0)
    with torch.no_grad():  # online and target are equal after construction: make them differ
        for parameter in model.q_net.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))

    def mean_over_allowed(q: torch.Tensor) -> torch.Tensor:
        allowed = ~forbidden_actions(q, 0.05, 1)
        return torch.stack([row[mask].mean() for row, mask in zip(q, allowed, strict=True)])

    with torch.no_grad():
        values = model.next_state_values(obs)
        torch.testing.assert_close(values, mean_over_allowed(model.q_net_target(obs)))
        assert not torch.allclose(values, mean_over_allowed(model.q_net(obs)))


@pytest.mark.parametrize(
    ("margin", "num_forbidden"), [(-0.1, 1), (float("nan"), 1), (0.1, 5), (0.1, -1), (0.1, 1.5)]
)
def test_rejects_bad_rule_parameters(vec_env, margin, num_forbidden):
    with pytest.raises(ValueError, match="margin|num_forbidden"):
        NegActionDQN("MlpPolicy", vec_env, margin=margin, num_forbidden=num_forbidden)


def test_save_load_round_trip_preserves_rule_and_predictions(vec_env, tmp_path):
    model, loaded, obs = round_trip(
        "neg-action-dqn", vec_env, tmp_path, 200, 256, margin=0.3, num_forbidden=2, gamma=0.9
    )
    assert (loaded.margin, loaded.num_forbidden, loaded.gamma) == (0.3, 2, 0.9)
    assert isinstance(loaded.policy, NegActionDQNPolicy)
    assert (loaded.policy.rule.margin, loaded.policy.rule.num_forbidden) == (0.3, 2)
    torch.manual_seed(5)
    stochastic = model.policy.predict(obs, deterministic=False)[0]
    torch.manual_seed(5)
    np.testing.assert_array_equal(stochastic, loaded.policy.predict(obs, deterministic=False)[0])


def test_the_rule_is_one_object_shared_by_model_and_policy_and_saved_once(vec_env, tmp_path):
    model = NegActionDQN("MlpPolicy", vec_env, margin=0.3, num_forbidden=2, **TINY)
    assert model.rule == ForbiddingRule(0.3, 2)
    assert model.policy.rule is model.rule and model.policy_kwargs["rule"] is model.rule
    assert not {"margin", "num_forbidden"} & set(model.policy_kwargs)
    model.save(tmp_path / "m.zip")
    loaded = NegActionDQN.load(tmp_path / "m.zip", allow_pickle=True)  # SB3's file layout
    assert loaded.rule == model.rule and loaded.policy.rule is loaded.rule
    with pytest.raises(ValueError, match="pass margin and num_forbidden to NegActionDQN"):
        NegActionDQN("MlpPolicy", vec_env, policy_kwargs={"num_forbidden": 3})


def test_models_saved_with_margin_and_num_forbidden_apart_still_load(vec_env, tmp_path):
    model = NegActionDQN("MlpPolicy", vec_env, margin=0.3, num_forbidden=2, seed=0, **TINY)
    # The layout of models saved before ForbiddingRule: two attributes, both in policy_kwargs.
    del model.rule
    model.__dict__.update(margin=0.3, num_forbidden=2)
    kept = {key: value for key, value in model.policy_kwargs.items() if key != "rule"}
    model.policy_kwargs = {**kept, "margin": 0.3, "num_forbidden": 2}
    model.save(tmp_path / "old.zip")
    loaded = NegActionDQN.load(tmp_path / "old.zip", allow_pickle=True)
    assert loaded.rule == ForbiddingRule(0.3, 2) and loaded.policy.rule is loaded.rule
    assert "margin" not in loaded.__dict__ and loaded.policy_kwargs == {**kept, "rule": loaded.rule}
