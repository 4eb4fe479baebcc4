import importlib.util
from pathlib import Path

import pytest

from neg_agents import ALGOS, get_algo, make_env
from neg_agents.common.dqn_arguments import sb3_learning_rate
from neg_agents.hyperparams import DQN_HYPERPARAMS, hyperparams_for, zoo_yaml

ZOO_FILE = Path(__file__).resolve().parents[2] / "neg_agents" / "zoo" / "dqn.yml"


def test_zoo_file_is_generated_from_the_defaults():
    assert ZOO_FILE.read_text() == zoo_yaml(), (
        "regenerate: python -m neg_agents.hyperparams > neg_agents/zoo/dqn.yml"
    )


def test_hyperparams_are_fresh_copies():
    params = hyperparams_for("dqn")
    params["policy_kwargs"]["net_arch"].append(1)
    assert hyperparams_for("dqn")["policy_kwargs"] == DQN_HYPERPARAMS["policy_kwargs"]


@pytest.mark.parametrize(
    "name", [name for name, spec in ALGOS.items() if spec.trainable and spec.available]
)
def test_every_trainable_agent_builds_from_its_defaults(name):
    spec = get_algo(name)
    env = make_env("NegCollision-v0", 2, seed=0, negative_actions=spec.negative_actions)
    params = hyperparams_for(name)
    # As build_model does: SB3's own classes take "lin_<rate>" as the schedule it names.
    rate = sb3_learning_rate(params["learning_rate"])
    model = spec.model_class("MlpPolicy", env, **{**params, "learning_rate": rate})
    for key, value in params.items():
        if key == "train_freq":
            assert model.train_freq.frequency == value
        elif key == "learning_rate":  # "lin_<rate>" is built as SB3's LinearSchedule
            assert repr(model.learning_rate) == repr(sb3_learning_rate(value))
        elif key != "policy_kwargs":
            assert getattr(model, key) == value
    env.close()


@pytest.mark.parametrize("name", ["neg-reward-dqn", "neg-action-dqn"])
def test_negdl_agents_default_to_the_tuned_values(name):
    env = make_env("NegCollision-v0", 1, seed=0)
    model = get_algo(name).model_class("MlpPolicy", env)
    assert model.policy_kwargs["net_arch"] == DQN_HYPERPARAMS["policy_kwargs"]["net_arch"]
    for key in ("learning_rate", "gamma", "n_steps", "batch_size", "target_update_interval"):
        assert getattr(model, key) == DQN_HYPERPARAMS[key]
    env.close()


def test_rl_zoo3_trains_the_env_from_the_zoo_file(tmp_path):
    # Only looked up, not imported: importing rl_zoo3 patches gymnasium's TimeLimit for the
    # whole process (rl_zoo3.gym_patches: truncated becomes False when an episode terminates
    # at its time limit), which would change what every later test's envs return.
    if importlib.util.find_spec("rl_zoo3") is None:
        pytest.skip("rl-zoo3 is an extra: pip install 'negdl[zoo]'")
    import subprocess
    import sys

    command = [
        sys.executable,
        "-m",
        "rl_zoo3.train",
        "--algo",
        "dqn",
        "--env",
        "NegCollision-v0",
        "--gym-packages",
        "neg_envs",
        "--conf-file",
        str(ZOO_FILE),
        "-n",
        "300",
        "--eval-freq",
        "-1",
        "-f",
        str(tmp_path),
        "--hyperparams",
        "learning_starts:100",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.rglob("NegCollision-v0.zip"))
