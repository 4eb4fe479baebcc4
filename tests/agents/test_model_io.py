import json

import gymnasium as gym
import pytest

from neg_agents import NegRewardDQN
from neg_agents.model_io import load_agent, read_config, save_run

from .conftest import TINY


@pytest.fixture
def saved(vec_env, tmp_path):
    model = NegRewardDQN("MlpPolicy", vec_env, seed=0, **TINY)
    return save_run(
        model,
        {
            "algo": "neg-reward-dqn",
            "env_id": "NegCollision-v0",
            "env_kwargs": {"num_obstacles": 3},
            "hyperparams": TINY,
        },
        tmp_path / "run",
    )


def test_save_run_writes_model_and_config(saved):
    assert saved.is_file()
    assert read_config(saved)["env_kwargs"] == {"num_obstacles": 3}


def test_load_checks_the_env_spaces(saved):
    assert (
        load_agent(
            saved, "neg-reward-dqn", gym.make("NegCollision-v0", num_obstacles=3)
        ).num_timesteps
        == 0
    )
    with pytest.raises(ValueError, match="another observation space.*num_obstacles"):
        load_agent(saved, "neg-reward-dqn", gym.make("NegCollision-v0", num_obstacles=10))
    with pytest.raises(ValueError, match="another action space"):
        load_agent(
            saved, "neg-reward-dqn", gym.make("NegCollision-v0", num_obstacles=3, allow_stay=False)
        )


def test_missing_corrupt_and_mismatched_files_fail_clearly(saved, tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file"):
        load_agent(tmp_path / "nothing.zip", "neg-reward-dqn")
    corrupt = saved.with_name("corrupt.zip")  # beside the run's config.json
    corrupt.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a valid neg-reward-dqn model"):
        load_agent(corrupt, "neg-reward-dqn")
    alone = tmp_path / "alone.zip"
    alone.write_bytes(saved.read_bytes())
    with pytest.raises(ValueError, match="no config.json beside.*allow_pickle=True"):
        load_agent(alone, "neg-reward-dqn")
    with pytest.raises(ValueError, match="not a valid neg-action-dqn model.*neg-reward-dqn"):
        load_agent(saved, "neg-action-dqn")
    with pytest.raises(ValueError, match="unknown algorithm"):
        load_agent(saved, "a2c")


def with_model_state(saved, state):
    """``saved``'s config.json with its ``model_state`` replaced by ``state``."""
    config_path = saved.with_name("config.json")
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "model_state": state}))


def test_load_restores_the_saved_model_state(saved):
    with_model_state(saved, {"num_timesteps": 123, "_n_updates": 7, "exploration_rate": 0.25})
    model = load_agent(saved)
    assert (model.num_timesteps, model._n_updates, model.exploration_rate) == (123, 7, 0.25)


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"bogus": 1}, "config.json: unknown model_state entry 'bogus'"),
        ({"exploration_rate": 1.5}, "config.json: exploration_rate must be"),
        ({"num_timesteps": -1}, "config.json: num_timesteps must be"),
        ({"_n_updates": 2.5}, "config.json: _n_updates must be an integer"),
    ],
)
def test_load_refuses_a_bad_model_state(saved, state, message):
    """A corrupt config.json is a ValueError naming the file, a value of the wrong type too."""
    with_model_state(saved, state)
    with pytest.raises(ValueError, match=message):
        load_agent(saved)
