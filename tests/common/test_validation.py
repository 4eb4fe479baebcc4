"""Every public entry point refuses bad input with its own error: the argument, the value and
the allowed range or the fix. One test per class of problem, parametrised over the cases."""

from __future__ import annotations

import math
import re

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

import neg_envs
from neg_agents import NegActionDQN, NegRewardDQN, TrainConfig
from neg_agents.bench import BenchConfig
from neg_agents.cli import bench, train, watch
from neg_agents.model_io import load_agent
from neg_agents.training import TrainSettings
from neg_agents.watch import WatchOptions
from negdl.cli import run_main
from negdl.devices import resolve_device
from supervised import (
    CBOMFConfig,
    LabelledImages,
    Phase,
    Trainer,
    evaluate,
    load_emnist,
    load_mnist,
    mnist_net,
    train_modes,
)
from supervised.checkpoints import load_checkpoint, save_checkpoint
from supervised.cli import cbomf as cbomf_cli
from supervised.cli import occlusion_grid as occlusion_grid_cli
from supervised.context import RunContext
from supervised.models import NegatableClassifier, Standardize, mlp_head
from supervised.occlusions import (
    CornerOcclusion,
    HorizontalCut,
    RandomSquares,
    Rectangles,
    corner_occlusions,
)
from supervised.runtime import seed_everything, select_device
from supervised.training import TrainerOptions

from ..conftest import import_script

NAN = float("nan")
CUDA = torch.cuda.is_available()


def small_env() -> gym.Env:
    return gym.make("NegCollision-v0", num_obstacles=2)


def dqn(**arguments):
    return NegRewardDQN(
        "MlpPolicy", small_env(), **{"buffer_size": 64, "batch_size": 16, **arguments}
    )


def images(count: int = 2) -> torch.Tensor:
    return torch.zeros(count, 1, 28, 28)


def labelled(count: int = 2) -> LabelledImages:
    return LabelledImages(images(count), torch.zeros(count, dtype=torch.long), ("a", "b"))


def trainer(**arguments) -> Trainer:
    model = nn.Linear(1, 2)
    return Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        context=RunContext(progress=False),
        **arguments,
    )


def tiny_data() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(4, 1), torch.zeros(4, dtype=torch.long)


# fmt: off
BAD_VALUES = {
    # agents: every DQN argument, before anything is built
    "gamma above 1": (lambda: dqn(gamma=1.5), ValueError, r"gamma must be a finite number in \[0, 1\], got 1.5"),
    "gamma NaN": (lambda: dqn(gamma=NAN), ValueError, "gamma must be a finite number in"),
    "batch_size 0": (lambda: dqn(batch_size=0), ValueError, "batch_size must be an integer >= 1, got 0"),
    "buffer_size 0": (lambda: dqn(buffer_size=0), ValueError, "buffer_size must be an integer >= 1"),
    "buffer below batch": (lambda: dqn(buffer_size=8), ValueError, r"buffer_size \(8\) must be >= batch_size \(16\)"),
    "exploration_fraction 5": (lambda: dqn(exploration_fraction=5), ValueError, r"exploration_fraction must be a finite number in \[0, 1\], got 5"),
    "final epsilon negative": (lambda: dqn(exploration_final_eps=-0.1), ValueError, "exploration_final_eps"),
    "learning rate NaN": (lambda: dqn(learning_rate=NAN), ValueError, "learning_rate must be a finite number > 0"),
    "learning rate 0": (lambda: dqn(learning_rate=0), ValueError, "learning_rate must be a finite number > 0"),
    "schedule ending below 0": (lambda: dqn(learning_rate=lambda progress: progress - 0.5), ValueError, r"learning_rate\(0\) \(a schedule, at the end\) must be a finite number >= 0"),
    "schedule starting at 0": (lambda: dqn(learning_rate=lambda progress: 0.0), ValueError, r"learning_rate\(1\) \(a schedule, at the start\) must be a finite number > 0"),
    "linear rate without a number": (lambda: dqn(learning_rate="lin_abc"), ValueError, r"learning_rate must be a number > 0, a schedule or 'lin_<number > 0>'.*got 'lin_abc'"),
    "linear rate from 0": (lambda: dqn(learning_rate="lin_0"), ValueError, "got 'lin_0'"),
    "learning rate as text": (lambda: dqn(learning_rate="1e-3"), ValueError, "got '1e-3'"),
    "target update 0": (lambda: dqn(target_update_interval=0), ValueError, "target_update_interval must be an integer >= 1"),
    "train_freq 0": (lambda: dqn(train_freq=0), ValueError, "train_freq must be an integer >= 1"),
    "train_freq unit": (lambda: dqn(train_freq=(1, "epoch")), ValueError, "train_freq's unit must be 'step' or 'episode'"),
    "gradient_steps 0": (lambda: dqn(gradient_steps=0), ValueError, r"gradient_steps must be >= 1, or -1"),
    "n_steps 0": (lambda: dqn(n_steps=0), ValueError, "n_steps must be an integer >= 1"),
    "tau 0": (lambda: dqn(tau=0), ValueError, r"tau must be a finite number in \(0, 1\]"),
    "max_grad_norm NaN": (lambda: dqn(max_grad_norm=NAN), ValueError, "max_grad_norm must be a number > 0"),
    "seed negative": (lambda: dqn(seed=-1), ValueError, r"seed must be an integer in \[0, 4294967295\]"),
    "learning_starts fractional": (lambda: dqn(learning_starts=1.5), TypeError, "learning_starts must be an integer >= 0, got float 1.5"),
    "batch_size True": (lambda: dqn(batch_size=True), TypeError, "batch_size must be an integer"),
    "margin negative": (lambda: NegActionDQN("MlpPolicy", small_env(), margin=-1), ValueError, "margin must be a number >= 0"),
    # training and bench settings
    "hyperparameter gamma 2": (lambda: TrainConfig(hyperparams={"gamma": 2}), ValueError, "gamma must be a finite number"),
    "run setting as hyperparameter": (lambda: TrainConfig(hyperparams={"seed": 1}), ValueError, "seed is a setting of the run"),
    "unknown hyperparameter": (lambda: TrainConfig("neg-action-dqn", hyperparams={"marginn": 1}), ValueError, "unknown hyperparameter 'marginn' for NegActionDQN; it takes: .*margin"),
    "verbose 3": (lambda: TrainConfig(verbose=3), ValueError, r"verbose must be an integer in \[0, 2\]"),
    "vec_env threads": (lambda: TrainConfig(vec_env="threads"), ValueError, "vec_env must be one of 'dummy', 'subproc', 'native'"),
    "bench seeds twice": (lambda: BenchConfig(seeds=(0, 0)), ValueError, r"give at least one of seeds, each once; got \[0, 0\]"),
    "bench obstacles beyond the env": (lambda: BenchConfig(num_obstacles=(200_000,)), ValueError, r"num_obstacles must be an integer in \[0, 100000\]"),
    "bench workers 0": (lambda: BenchConfig(workers=0), ValueError, "workers must be an integer >= 1"),
    "watch fps 0": (lambda: watch.watch_agent("stay", options=WatchOptions(fps=0, output="x.gif")), ValueError, r"fps must be an integer in \[1, 1000\], got 0"),
    # environments
    "batched reset seed 1.5": (lambda: gym.make_vec("NegCollision-v0", num_envs=2).reset(seed=1.5), TypeError, "seed must be None, an integer >= 0 or a sequence of 2 of them, got float 1.5"),
    "batched reset seed list": (lambda: gym.make_vec("NegCollision-v0", num_envs=2).reset(seed=[0, "a"]), TypeError, "seed must be an integer >= 0, got str 'a'"),
    "reset seed negative": (lambda: small_env().reset(seed=-1), ValueError, "seed must be an integer >= 0, got -1"),
    # supervised: occlusions, models, data, configs, runtime, checkpoints
    "corner fraction string": (lambda: CornerOcclusion("0.3"), TypeError, r"fraction must be a finite number in \(0, 0.5\], got str '0.3'"),
    "background NaN": (lambda: HorizontalCut(background=NAN), ValueError, "background must be a finite number, got nan"),
    "square size fractional": (lambda: RandomSquares(2.5), TypeError, "size must be an integer >= 1, got float 2.5"),
    "square count fractional": (lambda: RandomSquares(3, count=1.5), TypeError, "count must be an integer >= 1"),
    "box height fractional": (lambda: Rectangles([(0, 0, 2.5, 3)]), TypeError, r"boxes\[0\].height must be an integer >= 1"),
    "corners rounding together": (lambda: corner_occlusions([0.301, 0.304]), ValueError, "corner fractions 0.301 and 0.304 both round to the name corner30"),
    "std NaN": (lambda: Standardize([0.5], [NAN]), ValueError, r"std\[0\] must be a finite number > 0, got nan"),
    "mean infinite": (lambda: Standardize([math.inf], [1.0]), ValueError, r"mean\[0\] must be a finite number"),
    "num_classes float": (lambda: mnist_net(num_classes=10.0), TypeError, "num_classes must be an integer >= 1, got float 10.0"),
    "head size 0": (lambda: mlp_head([800, 0]), ValueError, r"sizes\[1\] must be an integer >= 1, got 0"),
    "head not a module": (lambda: NegatableClassifier(nn.Flatten(), "head"), ValueError, "head must be a torch.nn.Module, got str"),
    "negation switch 'no'": (lambda: mnist_net().set_negation("no"), TypeError, "enabled must be True or False, got str 'no'"),
    "emnist split list": (lambda: load_emnist(["balanced"]), ValueError, r"unknown EMNIST split \['balanced'\]"),
    "mnist train 'yes'": (lambda: load_mnist(train="yes"), TypeError, "train must be True or False, got str 'yes'"),
    "labels beyond the classes": (lambda: LabelledImages(images(), torch.tensor([0, 3]), ("a", "b")), ValueError, r"labels span \[0, 3\] but there are 2 classes"),
    "images NaN": (lambda: LabelledImages(images().fill_(NAN), torch.tensor([0, 1]), ("a", "b")), ValueError, "images hold NaN or infinite values"),
    "cbomf lr NaN": (lambda: CBOMFConfig(lr=NAN), ValueError, "lr must be a finite number > 0, got nan"),
    "cbomf momentum 1": (lambda: CBOMFConfig(momentum=1.0), ValueError, r"momentum must be a finite number in \[0, 1\)"),
    "cbomf epochs fractional": (lambda: CBOMFConfig(epochs=1.5), TypeError, "epochs must be an integer >= 0, got float 1.5"),
    "seed_everything 1.5": (lambda: seed_everything(1.5), TypeError, "seed must be an integer"),
    # supervised training and evaluation
    "trainer batch_size 0": (lambda: trainer(batch_size=0), ValueError, "batch_size must be an integer >= 1, got 0"),
    "trainer optimizer missing": (lambda: Trainer(nn.Linear(1, 1), "sgd"), ValueError, "optimizer must be a torch.optim.Optimizer, got str"),
    "trainer amp 'yes'": (lambda: TrainerOptions(amp="yes"), TypeError, "amp must be True or False"),
    "fit epochs fractional": (lambda: trainer().fit(tiny_data(), 1.5), TypeError, "epochs must be an integer >= 0, got float 1.5"),
    "fit NaN inputs": (lambda: trainer().fit((torch.full((4, 1), NAN), torch.zeros(4, dtype=torch.long)), 1), ValueError, "inputs hold NaN or infinite values"),
    "fit generator seed": (lambda: trainer().fit(tiny_data(), 1, generator=0), ValueError, "generator must be a torch.Generator or None, got int"),
    "evaluate batch_size 0": (lambda: evaluate(mnist_net(), {"full": labelled()}, batch_size=0), ValueError, "batch_size must be an integer >= 1, got 0"),
    "evaluate plain tensors": (lambda: evaluate(mnist_net(), {"full": images()}), ValueError, "test set 'full' must be LabelledImages, got Tensor"),
    "evaluate empty test set": (lambda: evaluate(mnist_net(), {"none": labelled().subset(slice(0, 0))}), ValueError, "test set 'none' is empty"),
    "phase epochs fractional": (lambda: Phase(1.5), TypeError, "epochs must be an integer >= 0, got float 1.5"),
    "train_modes modes as one string": (lambda: train_modes("SN", mnist_net, labelled()), ValueError, r"modes must be a non-empty list of mode names, e.g. \['SN'\], got 'SN'"),
    "train_modes negative seed": (lambda: train_modes(["SN"], mnist_net, labelled(), seeds=(-1,)), ValueError, "seed must be an integer >= 0, got -1"),
    "train_modes tensors for data": (lambda: train_modes(["SN"], mnist_net, images()), ValueError, "data must be LabelledImages, got Tensor"),
    "checkpoint numpy metadata": (lambda: save_checkpoint( "unused.pt", nn.Linear(1, 1), metadata={"accuracy": np.float64(99.0)}),
        ValueError,
        r"metadata\['accuracy'\] is a float64",
    ),
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_bad_values_and_types_are_refused_by_name_value_and_range(case):
    make, error, message = BAD_VALUES[case]
    with pytest.raises(error, match=message):
        make()


DEVICES = {
    "agent": lambda: dqn(device="cuda"),
    "loaded agent": lambda: load_agent("model.zip", "neg-reward-dqn", device="cuda"),
    "training run": lambda: TrainConfig(device="cuda"),
    "bench": lambda: BenchConfig(train=TrainSettings(device="cuda:0")),
    "supervised": lambda: select_device("cuda"),
    "checkpoint": lambda: load_checkpoint("model.pt", nn.Linear(1, 1), map_location="cuda"),
}


@pytest.mark.skipif(CUDA, reason="this machine has CUDA")
@pytest.mark.parametrize("case", DEVICES)
def test_a_device_that_is_not_there_is_an_error_not_a_cpu_run(case):
    with pytest.raises(ValueError, match="'cuda(:0)?' was requested but CUDA is not available"):
        DEVICES[case]()


def test_unknown_devices_are_refused():
    for device, message in [("tpu", "invalid device 'tpu'"), ("cuda:99", "was requested but")]:
        with pytest.raises(ValueError, match=message):
            resolve_device(device)


def out_of_space_inputs():
    env = neg_envs.NegCollisionEnv(num_obstacles=2, obstacle_speed=0.01)
    env.reset(seed=0)
    agents = [dqn(), NegActionDQN("MlpPolicy", small_env(), buffer_size=64, batch_size=16)]
    obs = np.zeros((3, env.observation_space.shape[0]), dtype=np.float32)
    nan_obs, inf_obs = obs.copy(), obs.copy()
    nan_obs[1, 4], inf_obs[0, 0] = NAN, math.inf
    agent, positions, velocities = np.full(2, 0.5), np.full((2, 2), 0.2), np.zeros((2, 2))
    # fmt: off
    return {
        "NaN observation, NegRewardDQN": (lambda: agents[0].predict(nan_obs), "1 NaN or infinite value.*flat index 14"),
        "inf observation, NegActionDQN": (lambda: agents[1].predict(inf_obs), "NaN or infinite"),
        "velocity beyond the top speed": (lambda: env.set_state(agent, positions, velocities + 0.05), r"\|dx\|, \|dy\| <= 0.01"),
        "NaN velocity": (lambda: env.set_state(agent, positions, velocities * NAN), "velocities must be finite"),
        "NaN position": (lambda: env.set_state(agent * NAN, positions, velocities), "positions must be finite"),
    }


def test_inputs_outside_their_space_are_refused():
    for case, (call, message) in out_of_space_inputs().items():
        with pytest.raises(ValueError, match=message):
            call()
            raise AssertionError(case)


def script_errors(tmp_path):
    file = tmp_path / "a_file"
    file.write_text("")
    # fmt: off
    cases = {
        "negdl-cbomf: missing --data-dir": (cbomf_cli, ["--data-dir", str(tmp_path / "none")], "--data-dir '.*none' does not exist"),
        "negdl-cbomf: --out-dir is a file": (cbomf_cli, ["--out-dir", str(file)], "--out-dir '.*a_file' is a file; give a folder"),
        "negdl-cbomf: corners rounding together": (cbomf_cli, ["--corner-fractions", "0.301", "0.304"], "both round to the name corner30"),
        "bench_env.py: --seconds 0": ("bench_env.py", ["--seconds", "0"], r"--seconds must be a finite number in \(0, 3600\], got 0.0"),
        "bench_env.py: --out is a folder": ("bench_env.py", ["--out", str(tmp_path)], "is a folder; give a file name"),
        "negdl-occlusion-grid: --examples 0": (occlusion_grid_cli, ["--examples", "0"], r"--examples must be an integer in \[1, 10000\]"),
        "play.py: --env-id CartPole-v1": ("play.py", ["--env-id", "CartPole-v1"], "'CartPole-v1' is not a NegCollision env"),
        "negdl-train: --env-id with Box actions": (train, ["--env-id", "Pendulum-v1", "--out-dir", str(tmp_path)], r"needs an env with discrete actions \(Discrete\); Pendulum-v1 has Box"),
        "negdl-train: --hyperparams gamma=1.5": (train, ["--hyperparams", "gamma=1.5", "--out-dir", str(tmp_path)], r"gamma must be a finite number in \[0, 1\], got 1.5"),
        "negdl-train: --out-dir is a file": (train, ["--out-dir", str(file)], "is a file; give a folder"),
        "negdl-bench: --seeds 0 0": (bench, ["--seeds", "0", "0", "--out-dir", str(tmp_path)], "each once"),
        "negdl-watch: --output in a file": (watch, ["--algo", "stay", "--output", str(file / "x.gif")], "a_file' is a file; give a folder"),
    }
    # fmt: on
    if not CUDA:
        cases.update(
            {
                "negdl-cbomf: --device cuda": (
                    cbomf_cli,
                    ["--device", "cuda"],
                    "CUDA is not available",
                ),
                "bench_supervised.py: --devices cuda": (
                    "bench_supervised.py",
                    ["--devices", "cuda"],
                    "CUDA is not available",
                ),
                "negdl-train: --device cuda": (
                    train,
                    ["--device", "cuda", "--out-dir", str(tmp_path)],
                    "CUDA is not available",
                ),
                "negdl-watch: --device cuda": (
                    watch,
                    ["--algo", "stay", "--device", "cuda"],
                    "CUDA is not available",
                ),
            }
        )
    return cases


def test_script_arguments_end_in_one_error_line(tmp_path, capsys):
    for case, (command, argv, message) in script_errors(tmp_path).items():
        with pytest.raises(SystemExit) as exit_info:
            if isinstance(command, str):
                module = import_script(command.removesuffix(".py"))
                run_main(command, module.Args, module.main, argv)
            else:
                command.main(argv)
        said = capsys.readouterr().err + (
            exit_info.value.code if isinstance(exit_info.value.code, str) else ""
        )
        lines = said.strip().splitlines()
        prog = command if isinstance(command, str) else "negdl-"
        assert len(lines) == 1 and lines[0].startswith(prog) and ": error: " in lines[0], (
            case,
            said,
        )
        assert re.search(message, lines[0]), (case, lines[0])
