"""Bad inputs that reached a traceback or passed silently, by class (issue 23): a command whose
reader closes the pipe, a ``name=value`` option of the wrong type, seeds beyond 32 or 64 bits,
rewards that are no number, the wrong number of actions."""

from __future__ import annotations

import contextlib
import os
import signal
import sys

import gymnasium as gym
import numpy as np
import pytest

import neg_envs  # noqa: F401  (registers the env ids)
from neg_agents.cli import bench as bench_cli
from neg_agents.cli import train as train_cli
from neg_agents.cli import watch as watch_cli
from neg_agents.common.env_util import make_env
from neg_agents.common.sb3_vec_env import SB3VecEnvAdapter
from neg_agents.training import EVAL_SEED_OFFSET
from neg_envs import PunishmentOnlyWrapper
from negdl.checks import check_bool, check_int, check_number
from negdl.cli import run_main
from negdl.errors import UserError

from .test_cli import Example

#: What a shell reports for a command its reader's exit killed (SIGPIPE): ``yes | head -1``.
BROKEN_PIPE_STATUS = 128 + signal.SIGPIPE
COMMANDS = {
    "negdl-train": train_cli.main,
    "negdl-watch": watch_cli.main,
    "negdl-bench": bench_cli.main,
}


@contextlib.contextmanager
def stdout_to_a_closed_pipe(monkeypatch: pytest.MonkeyPatch):
    """``sys.stdout`` writing into a pipe nobody reads any more (``| head`` after its lines).

    Afterwards the stream must flush without error: what the interpreter does at exit, which
    would otherwise print ``Exception ignored ... BrokenPipeError``.
    """
    read_end, write_end = os.pipe()
    os.close(read_end)
    stream = open(write_end, "w", buffering=1)  # noqa: SIM115  (closed below)
    monkeypatch.setattr(sys, "stdout", stream)
    try:
        yield
        stream.write("left in the buffer\n" * 1000)
        stream.flush()
    finally:
        monkeypatch.undo()
        with contextlib.suppress(OSError):
            stream.close()


@pytest.mark.parametrize("name", COMMANDS)
def test_help_into_a_closed_pipe_ends_quietly(name, monkeypatch, capsys):
    with stdout_to_a_closed_pipe(monkeypatch), pytest.raises(SystemExit) as exit_info:
        COMMANDS[name](["--help"])
    assert exit_info.value.code == BROKEN_PIPE_STATUS
    assert capsys.readouterr().err == ""


def test_output_of_a_run_into_a_closed_pipe_ends_quietly(monkeypatch, capsys):
    def chatty(args: Example) -> None:
        for step in range(10_000):
            print(f"step {step}")

    with stdout_to_a_closed_pipe(monkeypatch), pytest.raises(SystemExit) as exit_info:
        run_main("example", Example, chatty, [])
    assert exit_info.value.code == BROKEN_PIPE_STATUS
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "option",
    [
        "learning_rate=abc",
        "gamma=abc",
        "batch_size=2.5",
        "optimize_memory_usage=1",
        "policy_kwargs=abc",
        "target_update_interval=abc",
    ],
)
def test_train_hyperparameter_of_the_wrong_type_is_one_error_line(option, tmp_path, capsys):
    name = option.partition("=")[0]
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main(["--hyperparams", option, "--out-dir", str(tmp_path)])
    # An argument error: status 2 and one line, as argparse reports one.
    message = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert message.startswith(f"negdl-train: error: {name} must be"), message
    assert message.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # refused before a run folder was made


@pytest.mark.parametrize("option", ["num_obstacles=abc", "allow_stay=1", "agent_radius=big"])
@pytest.mark.parametrize("command", ["negdl-train", "negdl-watch"])
def test_env_option_of_the_wrong_type_is_one_error_line(command, option, tmp_path):
    argv = ["--env-kwargs", option]
    argv += ["--out-dir", str(tmp_path)] if command == "negdl-train" else ["--algo", "random"]
    with pytest.raises(SystemExit) as exit_info:
        COMMANDS[command](argv)
    message = str(exit_info.value.code)
    assert message.startswith(f"{command}: error: ") and option.partition("=")[0] in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "check",
    [lambda: check_int("n", "3"), lambda: check_number("x", "abc"), lambda: check_bool("b", 1)],
)
def test_wrong_types_are_type_errors_that_commands_report_as_user_errors(check):
    with pytest.raises(TypeError) as error_info:
        check()
    assert isinstance(error_info.value, UserError)
    # A TypeError from a bug is no user error: run_main keeps its traceback.
    with pytest.raises(TypeError, match="a bug"):
        run_main("example", Example, lambda args: (_ for _ in ()).throw(TypeError("a bug")), [])


def test_seeds_near_the_32_bit_bound_reach_the_eval_envs():
    """negdl-train and negdl-bench accept model seeds up to 2**32 - 1 and seed their eval envs
    ``seed + EVAL_SEED_OFFSET``: beyond the bound, which the envs take."""
    seed = 2**32 - 1 + EVAL_SEED_OFFSET
    for kind in ("dummy", "native"):
        env = make_env("NegCollision-v0", 2, seed, {"num_obstacles": 2}, kind)
        first = env.reset()
        env.seed(seed)
        np.testing.assert_array_equal(env.reset(), first)
        assert not np.array_equal(first[0], first[1])  # seed + i: sub-envs differ
        env.close()


@pytest.mark.parametrize("seed", [2**64, 2**64 + 1, 2**100])
def test_seeds_beyond_64_bits_seed_the_envs_reproducibly(seed):
    single = gym.make("NegCollision-v0", num_obstacles=3)
    obs, _ = single.reset(seed=seed)
    np.testing.assert_array_equal(single.reset(seed=seed)[0], obs)
    assert not np.array_equal(single.reset(seed=seed + 1)[0], obs)
    vector = gym.make_vec("NegCollision-v0", num_envs=2, num_obstacles=3)
    batch, _ = vector.reset(seed=seed)
    np.testing.assert_array_equal(batch[0], obs)
    adapter = SB3VecEnvAdapter(vector)
    adapter.seed(seed)
    np.testing.assert_array_equal(adapter.reset(), batch)
    adapter.close()


class ScriptedRewards(gym.Env):
    """An env that returns the rewards it is given, one per step."""

    observation_space = gym.spaces.Box(0.0, 1.0, (1,))
    action_space = gym.spaces.Discrete(2)

    def __init__(self, rewards):
        self.rewards = list(rewards)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(1, dtype=np.float32), self.rewards.pop(0), False, False, {}


@pytest.mark.parametrize(
    "kwargs", [{"mode": "shift", "max_reward": 1.0}, {"mode": "negative_part"}]
)
def test_punishment_wrapper_refuses_nan_and_array_rewards(kwargs):
    bad = [
        (float("nan"), ValueError, "NaN reward"),
        (np.float32("nan"), ValueError, "NaN reward"),
        (np.array([0.5, -1.0]), TypeError, r"one real-number reward .* shape \(2,\)"),
        (np.array([0.5]), TypeError, r"shape \(1,\)"),
        ("0.5", TypeError, "got str"),
    ]
    env = PunishmentOnlyWrapper(ScriptedRewards([reward for reward, _, _ in bad]), **kwargs)
    env.reset(seed=0)
    for _, error, message in bad:
        with pytest.raises(error, match=message):
            env.step(0)
    # Numbers of any real type, a 0-d array included, are punished as floats.
    env = PunishmentOnlyWrapper(ScriptedRewards([np.float32(-0.5), np.array(-2.0), -1]), **kwargs)
    env.reset(seed=0)
    shift = 1.0 if kwargs["mode"] == "shift" else 0.0
    for expected in (-0.5, -2.0, -1.0):
        reward = env.step(0)[1]
        assert type(reward) is float and reward == expected - shift


@pytest.mark.parametrize("actions", [[0, 1], [[0, 1, 2]], 1, [[0, 1], [2, 3]]])
def test_sb3_adapter_step_needs_one_action_per_sub_env(actions):
    adapter = SB3VecEnvAdapter(gym.make_vec("NegCollision-v0", num_envs=3, num_obstacles=2))
    adapter.reset()
    with pytest.raises(ValueError, match=r"one action per sub-env, shape \(3,\), got .*shape"):
        adapter.step(np.array(actions))
    # A column of actions, what some callers build, is one per sub-env too.
    assert adapter.step(np.array([[0], [1], [2]]))[0].shape[0] == 3
    adapter.close()


@pytest.mark.parametrize("seed", [2**63, 2**64, -1])
def test_a_seed_sweep_refuses_seeds_its_trials_cannot_use_before_starting(seed, tmp_path):
    """Before, each such seed became a trial that failed inside (torch's and numpy's seeding
    take at most 2**63 - 1), after the sweep had made its folders."""
    from negdl.sweeps import MAX_SEED, SweepOptions

    with pytest.raises(ValueError, match=r"seeds must be an integer in \[0, 9223372036854775807\]"):
        SweepOptions().seed_sweep(print, [0, seed], tmp_path / "sweep")
    assert not (tmp_path / "sweep").exists()
    assert SweepOptions().seed_sweep(print, [0, MAX_SEED], tmp_path / "sweep") is not None


def test_train_maskable_ppo_hyperparameter_of_the_wrong_type_is_one_error_line(tmp_path, capsys):
    pytest.importorskip("sb3_contrib", reason="maskable-ppo needs negdl[contrib]")
    argv = ["--algo", "maskable-ppo", "--total-timesteps", "32", "--eval-freq", "0"]
    argv += ["--env-kwargs", "num_obstacles=2", "--no-progress-bar", "--out-dir", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main([*argv, "--hyperparams", "n_epochs=abc", "n_steps=16", "batch_size=16"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("negdl-train: error: n_epochs must be")
    assert list(tmp_path.iterdir()) == []
