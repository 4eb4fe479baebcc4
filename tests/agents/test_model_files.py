"""Model files load without unpickling: a crafted entry never runs, through any loading path."""

import base64
import collections
import json
import zipfile

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import NStepReplayBuffer
from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit
from stable_baselines3.common.utils import FloatSchedule, LinearSchedule

from neg_agents import ForbiddingRule, NegActionDQN, NegRewardDQN
from neg_agents.cli import watch
from neg_agents.common.model_files import (
    UnsafeModelFileError,
    from_plain,
    load_model,
    save_model,
    to_plain,
)
from neg_agents.model_io import load_agent, load_policy

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


def tamper(path, change) -> None:
    """Rewrite the ``data`` JSON of model file ``path`` with ``change(data)``."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    data = json.loads(members["data"])
    change(data)
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)


@pytest.fixture
def env():
    env = gym.make("NegCollision-v0", num_obstacles=3)
    yield env
    env.close()


@pytest.fixture
def saved(tmp_path, env):
    """A NegRewardDQN run folder: model.zip (saved by negdl) and config.json."""
    run = tmp_path / "run"
    run.mkdir()
    NegRewardDQN("MlpPolicy", env, seed=0, **TINY).save(run / "model.zip")
    (run / "config.json").write_text(
        json.dumps({"algo": "neg-reward-dqn", "env_kwargs": {"num_obstacles": 3}})
    )
    return run / "model.zip"


def add_extra_entry(marker):
    return lambda data: data.update(innocent_looking=pickled(CreatesAFile(marker)))


def replace_pickles_keep_twins(marker):
    """Every pickled entry's pickle becomes the exploit; the plain twins stay."""

    def change(data):
        for item in data.values():
            if isinstance(item, dict) and ":serialized:" in item:
                item[":serialized:"] = pickled(CreatesAFile(marker))[":serialized:"]

    return change


def drop_twin_of_policy_class(marker):
    """A known entry without its twin, whose pickle is the exploit (rebuilt from the class)."""

    def change(data):
        data["policy_class"] = {**pickled(CreatesAFile(marker)), "__module__": None}
        data["policy_class"].pop("__module__")

    return change


LOADERS = {
    "NegRewardDQN.load": lambda path, env: NegRewardDQN.load(path),
    "NegRewardDQN.load(env=...)": lambda path, env: NegRewardDQN.load(path, env=env),
    "load_agent": lambda path, env: load_agent(path, "neg-reward-dqn", env),
    "load_policy": lambda path, env: load_policy("neg-reward-dqn", path, env),
    "negdl-watch --model": lambda path, env: watch.main(
        ["--model", str(path), "--max-steps", "2", "--output", str(path.with_suffix(".gif"))]
    ),
}


@pytest.mark.parametrize("loader", LOADERS)
def test_an_extra_pickled_entry_is_refused_and_never_runs(saved, env, tmp_path, loader):
    marker = tmp_path / "pwned"
    tamper(saved, add_extra_entry(marker))
    with pytest.raises((UnsafeModelFileError, SystemExit), match="innocent_looking"):
        LOADERS[loader](saved, env)
    assert not marker.exists()


@pytest.mark.parametrize("change", [replace_pickles_keep_twins, drop_twin_of_policy_class])
@pytest.mark.parametrize("loader", LOADERS)
def test_pickles_of_known_entries_are_never_unpickled(saved, env, tmp_path, loader, change):
    marker = tmp_path / "pwned"
    tamper(saved, change(marker))
    LOADERS[loader](saved, env)  # loads: every entry is rebuilt from its twin or the class
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:`n_steps=3` is ignored")
def test_the_crafted_file_does_run_code_through_sb3s_own_loader(saved, tmp_path):
    """Proof that the files above are hostile: SB3's loader (and allow_pickle=True) run them."""
    marker = tmp_path / "pwned"
    tamper(saved, add_extra_entry(marker))
    BaseAlgorithm.load.__func__(NegRewardDQN, saved)
    assert marker.exists()
    marker.unlink()
    NegRewardDQN.load(saved, allow_pickle=True)
    assert marker.exists()


@pytest.mark.parametrize("algo", ["dqn", "dqn-negative-actions"])
def test_plain_sb3_dqn_models_load_safely_too(tmp_path, env, algo):
    model = DQN("MlpPolicy", env, seed=0, **TINY)
    save_model(model, tmp_path / "dqn.zip")
    marker = tmp_path / "pwned"
    tamper(tmp_path / "dqn.zip", replace_pickles_keep_twins(marker))
    loaded = load_agent(tmp_path / "dqn.zip", algo, env)
    assert loaded.train_freq == model.train_freq and loaded.exploration_schedule(1.0) == 1.0
    obs = np.stack([env.observation_space.sample() for _ in range(32)])
    np.testing.assert_array_equal(loaded.predict(obs, True)[0], model.predict(obs, True)[0])
    tamper(tmp_path / "dqn.zip", add_extra_entry(marker))
    with pytest.raises(UnsafeModelFileError, match="innocent_looking"):
        load_agent(tmp_path / "dqn.zip", algo, env)
    assert not marker.exists()


def test_files_without_twins_load_from_the_class_and_env(tmp_path, env):
    """A plain SB3 file (or one from an older negdl): spaces come from the env, the rest from
    the class; without an env, the loader says what to pass."""
    model = NegActionDQN("MlpPolicy", env, margin=0.2, num_forbidden=0, seed=0, **TINY)
    BaseAlgorithm.save(model, tmp_path / "plain.zip")  # SB3's own format, no twins
    with pytest.raises(UnsafeModelFileError, match="rule.*allow_pickle=True"):
        NegActionDQN.load(tmp_path / "plain.zip", env=env)
    dqn = DQN("MlpPolicy", env, seed=0, **{**TINY, "train_freq": 4})
    BaseAlgorithm.save(dqn, tmp_path / "dqn.zip")
    with pytest.raises(UnsafeModelFileError, match="observation_space only pickled.*pass env="):
        load_model(DQN, tmp_path / "dqn.zip")
    with pytest.warns(UserWarning, match="train_freq only pickled"):
        loaded = load_model(DQN, tmp_path / "dqn.zip", env=env)
    assert loaded.observation_space == env.observation_space
    # Trusted old files: load them unpickled once, save them again, and they load safely.
    NegActionDQN.load(tmp_path / "plain.zip", allow_pickle=True).save(tmp_path / "resaved")
    assert NegActionDQN.load(tmp_path / "resaved.zip").rule == ForbiddingRule(0.2, 0)


def test_saved_twins_restore_every_entry(tmp_path, vec_env):
    model = NegActionDQN("MlpPolicy", vec_env, margin=0.3, seed=0, **TINY).learn(100)
    model.save(tmp_path / "m")  # SB3's convention: .zip is added
    loaded = NegActionDQN.load(tmp_path / "m")
    for name in ("train_freq", "replay_buffer_class", "policy_class", "rule", "_n_calls"):
        assert getattr(loaded, name) == getattr(model, name), name
    np.testing.assert_array_equal(loaded._last_obs, model._last_obs)
    assert loaded.ep_info_buffer == model.ep_info_buffer
    assert loaded.observation_space == model.observation_space
    assert loaded.exploration_schedule(0.5) == model.exploration_schedule(0.5)


def test_plain_records_round_trip_and_refuse_what_could_run_code():
    values = [
        (1, "step"),
        TrainFreq(4, TrainFrequencyUnit.EPISODE),
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.int64(7),
        collections.deque([{"r": -1.5, "l": 3}], maxlen=5),
        gym.spaces.Box(-1.0, 1.0, (3,)),
        gym.spaces.Dict({"a": gym.spaces.Discrete(3, start=1), "b": gym.spaces.MultiBinary(2)}),
        ForbiddingRule(0.1, 2),
        NStepReplayBuffer,
        {"net_arch": [16, 16], "inf": float("inf")},
    ]
    for value in values:
        back = from_plain(json.loads(json.dumps(to_plain(value))))
        assert type(back) is type(value)
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(back, value)
        else:
            assert back == value
    schedule = from_plain(to_plain(FloatSchedule(LinearSchedule(1.0, 0.1, 0.5))))
    assert schedule(0.75) == pytest.approx(0.55)
    for record, message in [
        ({"$class": "os:system"}, "outside the modules"),
        ({"$class": "builtins:open"}, "outside the modules"),
        ({"$class": "torch.nn:Linear.__init__.__globals__"}, "not a class name"),
        ({"$class": "torch.nn:functional"}, "not a class defined"),
        (
            {
                "$dataclass": {
                    "class": "stable_baselines3.common.type_aliases:TrainFreq",
                    "fields": {},
                }
            },
            "outside",
        ),
        ({"$ndarray": {"dtype": "O", "shape": [1], "data": ""}}, "not plain numbers"),
        ({"$ndarray": {"dtype": "<f4", "shape": [10**9], "data": "AAAAAA=="}}, "holds 4 bytes"),
        ({"$eval": "print(1)"}, "unknown plain record"),
    ]:
        with pytest.raises(UnsafeModelFileError, match=message):
            from_plain(record)
    with pytest.raises(TypeError, match="no plain form"):
        to_plain(lambda progress: progress)


def test_a_twin_must_name_a_class_of_the_right_kind(saved):
    tamper(
        saved, lambda data: data["policy_class"].update({":plain:": {"$class": "torch.nn:Linear"}})
    )
    with pytest.raises(UnsafeModelFileError, match="policy_class.*BasePolicy"):
        NegRewardDQN.load(saved)
