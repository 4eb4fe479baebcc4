"""The agents' small MLPs run on the CPU unless the user asks for CUDA (issue 14)."""

import dataclasses

import torch

from neg_agents import NegRewardDQN, TrainConfig
from neg_agents.bench import BenchConfig
from neg_agents.cli import train, watch
from neg_agents.hyperparams import AGENT_DEVICE
from neg_agents.watch import WatchOptions

from .conftest import TINY


def test_agents_stay_on_the_cpu_even_where_cuda_is_available(monkeypatch, vec_env):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert AGENT_DEVICE == "cpu"
    assert NegRewardDQN("MlpPolicy", vec_env, **TINY).device == torch.device("cpu")
    for config in (TrainConfig, WatchOptions):
        default = {f.name: f.default for f in dataclasses.fields(config)}["device"]
        assert default == "cpu", config
    assert train.Args().train.device == BenchConfig().train.device == "cpu"
    assert watch.Args().watch.device == "cpu"


def test_the_help_says_why_cpu_is_the_default(capsys):
    try:
        train.main(["--help"])
    except SystemExit:
        pass
    text = " ".join(capsys.readouterr().out.split())
    assert "cpu (the default" in text and "auto (CUDA when available)" in text
