"""Saved runs load without unpickling: a crafted pickle in a model file never runs, through any
loading path, and a run loads back exactly as it was saved."""

import base64
import io
import json
import zipfile
from dataclasses import asdict

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from neg_agents import NegRewardDQN, UnsafeModelFileError
from neg_agents.cli import watch
from neg_agents.model_io import load_agent, load_policy, save_run, write_config
from neg_agents.training import TrainConfig, build_model, train_and_save

from .conftest import TINY


class CreatesAFile:
    """Unpickling this creates ``path``: the stand-in for any code a hostile file could run."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def pickled(obj) -> dict:
    return {
        ":type:": str(type(obj)),
        ":serialized:": base64.b64encode(cloudpickle.dumps(obj)).decode(),
    }


def tamper(path, name, change) -> None:
    """Rewrite entry ``name`` of model file ``path`` with ``change(bytes)``."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    members[name] = change(members[name])
    with zipfile.ZipFile(path, "w") as archive:
        for member, payload in members.items():
            archive.writestr(member, payload)


def in_data(change):
    """A change of the model file's ``data`` JSON."""

    def rewrite(payload: bytes) -> bytes:
        data = json.loads(payload)
        change(data)
        return json.dumps(data).encode()

    return rewrite


def add_extra_entry(marker):
    return in_data(lambda data: data.update(innocent_looking=pickled(CreatesAFile(marker))))


def replace_every_pickle(marker):
    def change(data):
        for item in data.values():
            if isinstance(item, dict) and ":serialized:" in item:
                item[":serialized:"] = pickled(CreatesAFile(marker))[":serialized:"]

    return in_data(change)


def hostile_weights(marker):
    """The policy's weights replaced by a torch file holding the exploit."""

    def change(payload: bytes) -> bytes:
        buffer = io.BytesIO()
        torch.save({"q_net.weight": CreatesAFile(marker)}, buffer)
        return buffer.getvalue()

    return change


@pytest.fixture
def env():
    env = gym.make("NegCollision-v0", num_obstacles=3)
    yield env
    env.close()


@pytest.fixture
def saved(tmp_path):
    """A NegRewardDQN run folder: model.zip and config.json, as save_run writes them."""
    config = TrainConfig("neg-reward-dqn", env_kwargs={"num_obstacles": 3}, hyperparams=TINY)
    model = build_model(config, gym.make("NegCollision-v0", num_obstacles=3))
    return save_run(model, asdict(config), tmp_path / "run")


LOADERS = {
    "load_agent": lambda path, env: load_agent(path, "neg-reward-dqn", env),
    "load_agent(env=None)": lambda path, env: load_agent(path),
    "load_policy": lambda path, env: load_policy("neg-reward-dqn", path, env),
    "negdl-watch --model": lambda path, env: watch.main(
        ["--model", str(path), "--max-steps", "2", "--output", str(path.with_suffix(".gif"))]
    ),
}


@pytest.mark.parametrize("change", [add_extra_entry, replace_every_pickle])
@pytest.mark.parametrize("loader", LOADERS)
def test_the_pickled_data_of_a_model_file_is_never_read(saved, env, tmp_path, loader, change):
    marker = tmp_path / "pwned"
    tamper(saved, "data", change(marker))
    LOADERS[loader](saved, env)  # loads: the model comes from config.json, the weights are tensors
    assert not marker.exists()


@pytest.mark.parametrize("loader", LOADERS)
def test_weights_holding_a_pickled_object_are_refused_and_never_run(saved, env, tmp_path, loader):
    marker = tmp_path / "pwned"
    tamper(saved, "policy.pth", hostile_weights(marker))
    with pytest.raises((UnsafeModelFileError, SystemExit), match="not plain tensors"):
        LOADERS[loader](saved, env)
    assert not marker.exists()


def test_negdl_classes_refuse_to_unpickle_unless_told(saved, tmp_path):
    marker = tmp_path / "pwned"
    tamper(saved, "data", add_extra_entry(marker))
    with pytest.raises(UnsafeModelFileError, match="load_agent.*allow_pickle=True"):
        NegRewardDQN.load(saved)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:`n_steps=3` is ignored")
def test_the_crafted_file_does_run_code_through_sb3s_own_loader(saved, tmp_path):
    """Proof that the files above are hostile: SB3's loader (and allow_pickle=True) run them."""
    marker = tmp_path / "pwned"
    tamper(saved, "data", add_extra_entry(marker))
    BaseAlgorithm.load.__func__(NegRewardDQN, saved)
    assert marker.exists()
    for load in (
        lambda: NegRewardDQN.load(saved, allow_pickle=True),
        lambda: load_agent(saved, allow_pickle=True),
    ):
        marker.unlink()
        load()
        assert marker.exists()


@pytest.mark.parametrize("algo", ["neg-action-dqn", "neg-reward-dqn-shielded", "dqn"])
def test_a_run_loads_through_config_json_and_predicts_as_before_saving(tmp_path, algo):
    config = TrainConfig(
        algo, env_kwargs={"num_obstacles": 3}, total_timesteps=300, n_envs=2, eval_freq=0,
        hyperparams={**TINY, "exploration_final_eps": 0.2},
    )  # fmt: skip
    model = train_and_save(config, tmp_path).model
    loaded = load_agent(tmp_path / "model.zip")
    assert type(loaded) is type(model) and loaded.policy_kwargs == model.policy_kwargs
    for name in ("num_timesteps", "_n_calls", "exploration_rate", "gamma", "buffer_size"):
        assert getattr(loaded, name) == getattr(model, name), name
    if algo == "neg-action-dqn":
        assert loaded.rule == model.rule and loaded.policy.rule is loaded.rule
    obs = np.stack([model.observation_space.sample() for _ in range(256)])
    for deterministic in (True, False):  # not deterministic: the same exploration rate
        actions = []
        for agent in (model, loaded):
            np.random.seed(3)  # noqa: NPY002 (SB3's epsilon draw uses the global generator)
            torch.manual_seed(3)
            agent.action_space.seed(3)
            actions.append(agent.predict(obs, deterministic=deterministic)[0])
        np.testing.assert_array_equal(*actions)
    np.testing.assert_array_equal(
        loaded.policy.predict(obs, deterministic=True)[0],
        model.policy.predict(obs, deterministic=True)[0],
    )
    loaded.learn(64, reset_num_timesteps=False)  # and trains on, in an env made from config.json
    assert loaded.num_timesteps > model.num_timesteps


def test_a_plain_sb3_file_loads_safely_once_a_config_json_describes_it(tmp_path, env):
    """A file saved by SB3's own ``save`` (no negdl run folder): refused until a config.json
    says what it is; then its pickles are never read either."""
    config = TrainConfig("dqn", env_kwargs={"num_obstacles": 3}, hyperparams=TINY)
    model = build_model(config, env)
    BaseAlgorithm.save(model, tmp_path / "dqn.zip")
    with pytest.raises(ValueError, match="no config.json.*allow_pickle=True"):
        load_agent(tmp_path / "dqn.zip", "dqn", env)
    write_config(asdict(config), tmp_path)
    marker = tmp_path / "pwned"
    tamper(tmp_path / "dqn.zip", "data", replace_every_pickle(marker))
    loaded = load_agent(tmp_path / "dqn.zip", "dqn", env)
    obs = np.stack([env.observation_space.sample() for _ in range(32)])
    np.testing.assert_array_equal(loaded.predict(obs, True)[0], model.predict(obs, True)[0])
    assert not marker.exists()


def test_a_config_json_that_does_not_fit_the_weights_is_an_error(saved):
    config = json.loads(saved.with_name("config.json").read_text())
    config["hyperparams"]["policy_kwargs"]["net_arch"] = [32]
    write_config(config, saved.parent)
    with pytest.raises(ValueError, match="(?s)not a valid neg-reward-dqn model.*size mismatch"):
        load_agent(saved)
    write_config({**config, "env_id": "os:system"}, saved.parent)
    with pytest.raises(ValueError, match="unknown env id .os:system."):
        load_agent(saved)
