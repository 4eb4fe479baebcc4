"""Each script end to end, as a subprocess, in a smoke configuration."""

import csv
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from neg_agents.cli import bench, train, watch

ROOT = Path(__file__).resolve().parents[2]
TINY = ["learning_starts=50", "batch_size=16", "policy_kwargs={'net_arch': [16]}"]


def run(script: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYTHONHASHSEED": "0"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def scalar_tags(folder: Path) -> set[str]:
    tags: set[str] = set()
    for events in folder.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    return tags


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train")
    run(
        "train.py",
        "--algo",
        "neg-action-dqn",
        "--total-timesteps",
        "300",
        "--n-envs",
        "2",
        "--env-kwargs",
        "num_obstacles=3",
        "--eval-freq",
        "150",
        "--eval-episodes",
        "2",
        "--checkpoint-freq",
        "150",
        "--out-dir",
        str(out),
        "--no-progress-bar",
        "--hyperparams",
        *TINY,
    )
    return out / "neg-action-dqn-NegCollision-v0-s0"


def test_train_writes_model_config_checkpoints_and_tensorboard(trained):
    assert (trained / "model.zip").is_file()
    config = (trained / "config.json").read_text()
    assert '"num_obstacles": 3' in config and '"margin": 0.05' in config
    assert sorted(p.name for p in (trained / "checkpoints").iterdir()) == [
        "neg-action-dqn_150_steps.zip",
        "neg-action-dqn_300_steps.zip",
    ]
    assert {"eval/collisions_per_episode", "eval/return", "eval/moves_per_episode"} <= scalar_tags(
        trained / "tensorboard"
    )


def test_watch_writes_a_gif_and_prints_the_episode(trained, tmp_path):
    gif = tmp_path / "rollout.gif"
    result = run(
        "watch.py", "--model", str(trained / "model.zip"), "--output", str(gif), "--max-steps", "20"
    )
    assert "return" in result.stdout and "collisions" in result.stdout
    with Image.open(gif) as image:
        assert image.n_frames == 21


def test_watch_fails_clearly_on_bad_model_files(trained, tmp_path, capsys):
    def error(*args: str) -> str:
        with pytest.raises(SystemExit) as exit_info:
            watch.main([*args, "--output", str(tmp_path / "x.gif")])
        return str(exit_info.value)

    assert "no model file" in error("--model", str(tmp_path / "missing.zip"), "--algo", "dqn")
    corrupt = tmp_path / "model.zip"
    corrupt.write_bytes(b"garbage")
    assert "not a valid dqn model" in error("--model", str(corrupt), "--algo", "dqn")
    assert "another observation space" in error(
        "--model", str(trained / "model.zip"), "--env-kwargs", "num_obstacles=5"
    )
    assert "no config.json" in error("--model", str(corrupt))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algo", "ppo"], "unknown or untrainable algorithm"),
        (["--algo", "stay"], "unknown or untrainable algorithm"),
        (["--total-timesteps", "-5"], "total_timesteps must be a positive"),
        (["--env-id", "NoSuchEnv-v0"], "unknown env id"),
        (["--env-kwargs", "num_obstacles"], "must look like name=value"),
        (["--checkpoint-freq", "-1"], "checkpoint_freq must be >= 0"),
        (["--n-envs", "0", "--checkpoint-freq", "100"], "n_envs must be >= 1"),
    ],
)
def test_train_rejects_bad_arguments(args, message, tmp_path):
    with pytest.raises(SystemExit, match=message):
        train.main([*args, "--out-dir", str(tmp_path)])


def test_bench_rejects_bad_arguments(tmp_path):
    with pytest.raises(SystemExit, match="unknown algorithm 'sarsa'"):
        bench.main(["--algos", "sarsa", "--out-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="total_timesteps must be a positive"):
        bench.main(["--total-timesteps", "0", "--out-dir", str(tmp_path)])


def test_bench_writes_csv_markdown_plot_and_tensorboard(tmp_path):
    run(
        "bench_agents.py",
        "--algos",
        "neg-reward-dqn",
        "dqn-negative-actions",
        "planner",
        "stay",
        "--seeds",
        "0",
        "--num-obstacles",
        "3",
        "4",
        "--no-crowd",
        "--total-timesteps",
        "200",
        "--n-envs",
        "2",
        "--eval-freq",
        "100",
        "--eval-episodes",
        "1",
        "--final-episodes",
        "2",
        "--out-dir",
        str(tmp_path),
        "--tensorboard-dir",
        str(tmp_path / "tb"),
        "--no-progress-bar",
    )
    with open(tmp_path / "bench.csv") as handle:
        rows = list(csv.DictReader(handle))
    trained, baselines = ["neg-reward-dqn", "dqn-negative-actions"], ["planner", "stay"]
    assert [r["algo"] for r in rows if r["num_obstacles"] == "3"] == trained + baselines
    # Each agent trained at 3 obstacles is also evaluated at 4 without retraining.
    transferred = [r for r in rows if r["trained_on"]]
    assert [r["algo"] for r in transferred] == trained
    assert {r["trained_on"] for r in transferred} == {"NegCollision-v0 N=3"}
    assert {r["num_obstacles"] for r in transferred} == {"4"}
    planner = next(r for r in rows if r["algo"] == "planner")
    assert float(planner["collisions_per_episode"]) == 0
    assert {
        "return",
        "collisions_per_episode",
        "moves_per_episode",
        "collision_free_share",
        "train_time_s",
        "env_steps_per_s",
    } <= set(rows[0])
    assert all(float(r["return"]) <= 0 for r in rows)
    markdown = (tmp_path / "bench.md").read_text()
    assert (
        "| neg-reward-dqn |" in markdown
        and "| planner | -0.0" in markdown
        and "| neg-reward-dqn, trained on NegCollision-v0 N=3 |" in markdown
        and "return / planner" in markdown
        and "Machine:" in markdown
        and "negdl-bench --algos neg-reward-dqn" in markdown
    )
    assert (tmp_path / "learning_curves.png").stat().st_size > 0
    tags = scalar_tags(tmp_path / "tb")
    assert {
        "eval/collisions_per_episode",
        "eval/return",
        "final/moves_per_episode",
        "time/fps",
    } <= tags


@pytest.mark.skipif(shutil.which("negdl-bench") is None, reason="console scripts not installed")
@pytest.mark.parametrize("name", ["negdl-train", "negdl-watch", "negdl-bench"])
def test_console_entry_points(name):
    result = subprocess.run([name, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--seed" in result.stdout


@pytest.mark.parametrize("algo", ["stay", "planner"])
def test_watch_plays_a_baseline_in_a_window(monkeypatch, capsys, algo):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    watch.main(["--algo", algo, "--max-steps", "3", "--fps", "1000", "--episodes", "2"])
    out = capsys.readouterr().out
    assert out.count("collisions") == 2 and "steps 3" in out


@pytest.mark.skipif(
    any(importlib.util.find_spec(name) for name in ("imageio_ffmpeg", "av")),
    reason="an MP4 encoder is installed",
)
def test_watch_asks_for_the_video_extra_before_playing(trained, tmp_path):
    with pytest.raises(SystemExit, match=r"negdl\[video\]"):
        watch.main(["--model", str(trained / "model.zip"), "--output", str(tmp_path / "x.mp4")])
