import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor

from neg_agents import NegActionDQN, NegRewardDQN, evaluate_agent, make_env
from neg_agents.algos import get_algo
from neg_agents.common.env_util import importable_id
from neg_agents.training import TrainConfig, train_agent

from .conftest import TINY


@pytest.mark.parametrize("vec_env", ["single", "dummy", "subproc", "native"])
@pytest.mark.parametrize("algo_class", [NegRewardDQN, NegActionDQN])
def test_trains_a_few_hundred_steps_on_every_kind_of_env(vec_env, algo_class, small_env_kwargs):
    if vec_env == "single":
        env = gym.make("NegCollision-v0", **small_env_kwargs)
    else:
        env = make_env(
            "NegCollision-v0", n_envs=2, seed=0, env_kwargs=small_env_kwargs, vec_env=vec_env
        )
        expected = {"dummy": DummyVecEnv, "subproc": SubprocVecEnv, "native": VecMonitor}[vec_env]
        assert isinstance(env, expected)
    try:
        model = algo_class("MlpPolicy", env, seed=0, **TINY).learn(300)
        assert model.num_timesteps >= 300
        assert model._n_updates > 0
    finally:
        env.close()


def test_sb3_evaluate_policy_plays_the_episodes_evaluate_agent_plays(vec_env, small_env_kwargs):
    model = NegActionDQN("MlpPolicy", vec_env, seed=0, **TINY)
    returns, lengths = evaluate_policy(
        model, vec_env, n_eval_episodes=2, return_episode_rewards=True
    )
    # The same seeded scenes through negdl's own evaluation: the same greedy episodes.
    env = make_vec_env("NegCollision-v0", n_envs=2, seed=0, env_kwargs=small_env_kwargs)
    stats = evaluate_agent(model, env, 2)
    env.close()
    assert lengths == stats.lengths
    np.testing.assert_allclose(returns, stats.returns, rtol=1e-5)  # Monitor rounds to 6 digits


def test_same_seed_same_training(small_env_kwargs):
    def run(seed: int):
        result = train_agent(
            "neg-action-dqn",
            env_kwargs=small_env_kwargs,
            total_timesteps=400,
            seed=seed,
            n_envs=2,
            hyperparams=TINY,
            eval_freq=200,
            eval_episodes=2,
        )
        params = np.concatenate(
            [p.detach().numpy().ravel() for p in result.model.policy.parameters()]
        )
        return params, result.history

    params_a, history_a = run(1)
    timed = train_agent(
        "neg-reward-dqn",
        env_kwargs=small_env_kwargs,
        total_timesteps=200,
        n_envs=2,
        hyperparams=TINY,
        eval_freq=100,
        eval_episodes=1,
    )
    # The learning-curve evaluations are timed apart from training.
    assert 0 < timed.eval_time_s < timed.wall_time_s
    assert timed.train_time_s == pytest.approx(timed.wall_time_s - timed.eval_time_s)
    params_b, history_b = run(1)
    params_c, _ = run(2)
    np.testing.assert_array_equal(params_a, params_b)
    assert history_a == history_b
    assert len(history_a) == 2 and history_a[-1]["timesteps"] == 400
    assert not np.array_equal(params_a, params_c)


def test_negative_actions_need_single_envs(small_env_kwargs):
    with pytest.raises(ValueError, match="NegativeActionWrapper"):
        make_env(
            "NegCollision-v0",
            2,
            env_kwargs=small_env_kwargs,
            vec_env="native",
            negative_actions=True,
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"algo": "ppo"}, "unknown algorithm"),
        ({"algo": "random"}, "baseline"),
        ({"algo": "dqn", "total_timesteps": -5}, r"total_timesteps must be an integer >= 1"),
        ({"algo": "dqn", "seed": -1}, r"seed must be an integer in \[0, 4294967295\]"),
        ({"algo": "dqn", "env_id": "NoSuchEnv-v0"}, "unknown env id"),
        ({"algo": "dqn", "env_kwargs": {"num_obstacle": 3}}, "bad option"),
        ({"algo": "dqn", "vec_env": "threads"}, "vec_env must be one of"),
        # Evaluations count collisions: on another env training ended at the first one.
        ({"algo": "dqn", "env_id": "CartPole-v1", "eval_freq": 5}, "--eval-freq 0"),
        (
            {"algo": "dqn", "hyperparams": {"learning_rat": 1.0}},
            "unknown hyperparameter 'learning_rat'",
        ),
    ],
)
def test_bad_arguments_fail_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_agent(**{"total_timesteps": 10, "eval_freq": 0, **kwargs})


def test_subprocess_workers_import_the_package_that_registers_the_id(small_env_kwargs):
    assert importable_id("NegCollision-v0") == "neg_envs.collision:NegCollision-v0"
    assert importable_id("neg_envs:NegCollision-v0") == "neg_envs:NegCollision-v0"
    # A spawned worker imports nothing of ours before it unpickles the env factory.
    venv = make_vec_env(
        importable_id("NegCollision-v0"),
        n_envs=1,
        env_kwargs=small_env_kwargs,
        vec_env_cls=SubprocVecEnv,
        vec_env_kwargs={"start_method": "spawn"},
    )
    try:
        venv.reset()
        assert venv.step(np.array([4]))[1][0] <= 0
    finally:
        venv.close()


def test_train_config_checks_its_settings_when_built():
    assert TrainConfig("neg-action-dqn", seed=3).hyperparams == {}
    for settings, message in [
        ({"algo": "stay"}, "baseline"),
        ({"n_envs": 0}, "n_envs must be an integer >= 1"),
        ({"eval_freq": -1}, "eval_freq must be an integer >= 0"),
        ({"eval_freq": 10, "eval_episodes": 0}, "eval_episodes must be an integer >= 1"),
    ]:
        with pytest.raises(ValueError, match=message):
            TrainConfig(**settings)


def test_a_vec_env_the_agent_cannot_step_is_refused_with_the_config(tmp_path, capsys):
    """Refused when make_env ran, negdl-train had made the run's folder by then: a rerun under
    the same --run-name then needed --overwrite."""
    from neg_agents.cli import train

    with pytest.raises(ValueError, match="NegativeActionWrapper wraps single envs"):
        TrainConfig("dqn-negative-actions", vec_env="native")
    with pytest.raises(ValueError, match="MountainCar-v0 has no natively batched version"):
        TrainConfig("dqn", env_id="MountainCar-v0", vec_env="native")
    argv = ["--algo", "dqn-negative-actions", "--vec-env", "native", "--out-dir", str(tmp_path)]
    with pytest.raises(SystemExit):
        train.main([*argv, "--run-name", "r1"])
    assert "wraps single envs" in capsys.readouterr().err
    assert not (tmp_path / "dqn-negative-actions" / "r1").exists()


def test_negdl_train_steps_the_native_batched_env_unless_the_agent_needs_single_envs():
    from neg_agents.common.env_util import preferred_vec_env

    assert preferred_vec_env("NegCollision-v0") == "native"
    assert preferred_vec_env("NegCollision-v0", negative_actions=True) == "dummy"
    # Maskable agents read the batched env's masks through SB3VecEnvAdapter.env_method.
    assert get_algo("neg-reward-dqn-shielded").vec_env_for("NegCollision-v0") == "native"
    assert get_algo("dqn-negative-actions").vec_env_for("NegCollision-v0") == "dummy"
    assert preferred_vec_env("CartPole-v1") == "dummy"
    assert preferred_vec_env("NegCollision-v0", env_kwargs={"window_size": 64}) == "dummy"
    assert preferred_vec_env("NoSuchEnv-v0") == "dummy"


def test_a_config_round_trips_through_the_command_line_and_config_json():
    import json
    from dataclasses import asdict, fields

    from neg_agents.cli import train
    from negdl.cli import parse_args

    config = TrainConfig(
        "neg-action-dqn",
        env_kwargs={"num_obstacles": 30, "observation": "nearest", "obstacle_speed": (0.0, 0.02)},
        total_timesteps=1234,
        seed=7,
        n_envs=3,
        vec_env="subproc",
        hyperparams={"learning_rate": "lin_5e-4", "margin": 0.01},
        eval_freq=0,
        progress_bar=False,
        tensorboard_log="tb",
    )
    argv = []
    for f in fields(TrainConfig):
        value = getattr(config, f.name)
        if f.name in ("log_dir", "tb_log_name"):  # set by negdl-train itself
            continue
        flag = (
            "--tensorboard-dir" if f.name == "tensorboard_log" else "--" + f.name.replace("_", "-")
        )
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, dict):
            argv += [flag, *(f"{k}={v!r}" for k, v in value.items())]
        else:
            argv += [flag, str(value)]
    parsed = parse_args(train.Args, argv).train
    assert parsed == config
    # config.json is asdict(config) (plus the run's metadata); JSON turns tuples into lists.
    record = json.loads(json.dumps(asdict(parsed)))
    record["env_kwargs"]["obstacle_speed"] = tuple(record["env_kwargs"]["obstacle_speed"])
    assert TrainConfig(**record) == config


def test_negdl_train_lists_each_option_once_with_its_default(capsys):
    import re

    from neg_agents.cli import train

    with pytest.raises(SystemExit):
        train.main(["--help"])
    text = capsys.readouterr().out
    listed = re.findall(r"^\W*(--[a-z][a-z-]*)", text, flags=re.MULTILINE)
    assert len(listed) == len(set(listed)), listed
    for flag in (
        "--algo",
        "--env-kwargs",
        "--vec-env",
        "--tensorboard-dir",
        "--out-dir",
        "--device",
    ):
        assert flag in listed
    assert text.count("(default: 200000)") == 1  # total_timesteps
    assert text.count("(default:") >= len(listed) - 1  # every option but --help


def test_a_linear_learning_rate_falls_to_zero_over_training_and_loads_from_config_json(tmp_path):
    from dataclasses import asdict

    from neg_agents.model_io import load_agent, save_run

    config = TrainConfig(
        "neg-action-dqn",
        env_kwargs={"num_obstacles": 3},
        total_timesteps=640,
        n_envs=2,
        hyperparams={**TINY, "learning_rate": "lin_2e-3"},
        eval_freq=0,
    )
    model = train_agent(config).model
    assert model.lr_schedule(1.0) == pytest.approx(2e-3)
    assert model.lr_schedule(0.25) == pytest.approx(5e-4)
    # The optimizer's rate was set at the last update, near the end of training.
    assert 0 <= model.policy.optimizer.param_groups[0]["lr"] < 2e-5
    loaded = load_agent(save_run(model, asdict(config), tmp_path))
    assert loaded.lr_schedule(0.5) == pytest.approx(1e-3)


def test_make_env_monitors_an_env_that_is_not_a_negcollision_env(tmp_path):
    """The monitor's cumulative_collisions column is for NegCollision envs only: on another env
    (negdl-train --algo dqn --env-id CartPole-v1) it raised a KeyError at the first episode's
    end, whose info has no such key."""
    env = make_env("CartPole-v1", 2, seed=0, monitor_dir=tmp_path)
    env.reset()
    finished = 0
    while finished < 2:
        _, _, dones, _ = env.step(np.zeros(2, dtype=int))  # always left: short episodes
        finished += int(dones.sum())
    env.close()
    assert "cumulative_collisions" not in (tmp_path / "0.monitor.csv").read_text()
