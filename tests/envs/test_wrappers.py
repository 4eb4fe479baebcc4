"""NegativeActionWrapper and PunishmentOnlyWrapper semantics."""

import gymnasium as gym
import numpy as np
import pytest

import neg_envs  # noqa: F401
from neg_envs import NegativeActionWrapper, PunishmentOnlyWrapper


def test_forbidden_action_is_never_executed_and_others_are_uniform():
    env = NegativeActionWrapper(gym.make("NegCollision-v0"))
    env.reset(seed=0)
    counts = np.zeros((5, 5), dtype=int)
    for step in range(5000):
        forbidden = step % 5
        *_, info = env.step(forbidden)
        assert info["forbidden_action"] == forbidden
        counts[forbidden, info["executed_action"]] += 1
    assert np.all(np.diag(counts) == 0)
    allowed = counts[~np.eye(5, dtype=bool)].reshape(5, 4)
    # 1000 draws over 4 actions: 250 each, std ~14; 5 std is a loose but meaningful band.
    assert np.all(np.abs(allowed - 250) < 70), allowed


def test_negative_action_is_seeded():
    def executed(seed):
        env = NegativeActionWrapper(gym.make("NegCollision-v0"))
        env.reset(seed=seed)
        return [env.step(0)[-1]["executed_action"] for _ in range(50)]

    assert executed(3) == executed(3)
    assert executed(3) != executed(4)


def test_negative_action_works_with_discrete_start_and_other_envs():
    env = NegativeActionWrapper(gym.make("CartPole-v1"))
    env.reset(seed=0)
    assert env.step(0)[-1]["executed_action"] == 1
    env = NegativeActionWrapper(gym.make("NegCollision-v0", allow_stay=False))

    class Shifted(gym.ActionWrapper):
        def __init__(self, inner):
            super().__init__(inner)
            self.action_space = gym.spaces.Discrete(4, start=10)

        def action(self, action):
            return action - 10

    env = NegativeActionWrapper(Shifted(gym.make("NegCollision-v0", allow_stay=False)))
    env.reset(seed=0)
    executed = {env.step(12)[-1]["executed_action"] for _ in range(200)}
    assert executed == {10, 11, 13}
    with pytest.raises(ValueError, match=r"action must be an integer in \[10, 13\]"):
        env.step(3)


def test_negative_action_rejects_bad_spaces_and_actions():
    with pytest.raises(TypeError, match="Discrete action space"):
        NegativeActionWrapper(gym.make("Pendulum-v1"))
    env = NegativeActionWrapper(gym.make("NegCollision-v0"))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be an integer in \[0, 4\]"):
        env.step(7)
    with pytest.raises(TypeError, match="action must be an integer"):
        env.step(1.5)


def test_shift_rule_on_cartpole():
    env = PunishmentOnlyWrapper(
        gym.make("CartPole-v1"), mode="shift", max_reward=1.0, termination_penalty=10.0
    )
    env.reset(seed=0)
    rewards, terminated = [], False
    while not terminated:
        _, reward, terminated, truncated, _ = env.step(0)
        rewards.append(reward)
    assert rewards[:-1] == [0.0] * (len(rewards) - 1)
    assert rewards[-1] == -10.0


def test_negative_part_rule_and_never_positive():
    env = PunishmentOnlyWrapper(gym.make("MountainCarContinuous-v0"), mode="negative_part")
    env.reset(seed=0)
    rewards = [env.step(np.array([1.0]))[1] for _ in range(300)]
    assert max(rewards) <= 0.0 and min(rewards) < 0.0
    assert env.punish(5.0, terminated=False) == 0.0
    assert env.punish(-2.0, terminated=False) == -2.0


def test_shift_rule_rejects_rewards_above_the_bound():
    env = PunishmentOnlyWrapper(gym.make("CartPole-v1"), mode="shift", max_reward=0.5)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="exceeds max_reward=0.5"):
        env.step(0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "clip"}, "mode must be one of"),
        ({"mode": "shift"}, "needs a finite max_reward"),
        (
            {"mode": "shift", "max_reward": float("inf")},
            "max_reward must be a finite number, got inf",
        ),
        ({"mode": "negative_part", "max_reward": 1.0}, "only used with mode='shift'"),
        ({"mode": "negative_part", "termination_penalty": -1.0}, "termination_penalty must be"),
    ],
)
def test_punishment_wrapper_validates(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PunishmentOnlyWrapper(gym.make("CartPole-v1"), **kwargs)


@pytest.mark.filterwarnings("ignore:.*is different from the unwrapped version")
def test_wrapped_envs_can_be_rebuilt_from_their_spec():
    # gym.make(env.spec) (what check_env does) raised "wrapper does not inherit from
    # RecordConstructorArgs, therefore, the wrapper cannot be recreated".
    from gymnasium.utils.env_checker import check_env

    env = PunishmentOnlyWrapper(
        NegativeActionWrapper(gym.make("NegCollision-v0", num_obstacles=3)),
        mode="shift",
        max_reward=0.0,
        termination_penalty=2.0,
    )
    rebuilt = gym.make(env.spec)
    assert isinstance(rebuilt, PunishmentOnlyWrapper)
    assert isinstance(rebuilt.env, NegativeActionWrapper)
    assert (rebuilt.mode, rebuilt.max_reward, rebuilt.termination_penalty) == ("shift", 0.0, 2.0)
    assert rebuilt.unwrapped.config.num_obstacles == 3
    check_env(env, skip_render_check=True)
