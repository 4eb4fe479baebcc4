"""Each command end to end, as a subprocess, in a smoke configuration; and the files a run leaves
(run folders, monitor.csv, evaluations.npz, TensorBoard keys, videos) read with SB3's own tools."""

import csv
import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from stable_baselines3.common.monitor import load_results
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from neg_agents.algos import MAIN_ALGO
from neg_agents.bench import PROBE_SCENES, BenchConfig
from neg_agents.cli import bench, train, watch
from neg_agents.hyperparams import NEG_ACTION_RULE
from neg_agents.model_io import load_agent, resolve_run
from negdl.cli import parse_args

from ..conftest import import_script

TINY = ["learning_starts=50", "batch_size=16", "policy_kwargs={'net_arch': [16]}"]
HAS_MP4 = all(importlib.util.find_spec(name) for name in ("imageio", "imageio_ffmpeg"))


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every TensorBoard scalar under ``folder``: tag -> [(step, value)]."""
    found: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(folder.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            found.setdefault(tag, []).extend((e.step, e.value) for e in accumulator.Scalars(tag))
    return found


def scalar_tags(folder: Path) -> set[str]:
    return set(scalars(folder))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, run_script) -> Path:
    out = tmp_path_factory.mktemp("train")
    video = ["--capture-video", "--video-freq", "150", "--video-length", "5"] if HAS_MP4 else []
    result = run_script(
        "neg_agents.cli.train",
        "--algo",
        "neg-action-dqn",
        "--total-timesteps",
        "300",
        "--n-envs",
        "2",
        "--env-kwargs",
        "num_obstacles=3",
        "max_episode_steps=40",
        "window_size=64",
        "--eval-freq",
        "150",
        "--eval-episodes",
        "2",
        "--checkpoint-freq",
        "150",
        "--out-dir",
        str(out),
        "--no-progress-bar",
        *video,
        "--hyperparams",
        *TINY,
    )
    run_dir = out / "neg-action-dqn" / "NegCollision-v0_1"
    assert result.stdout.count(str(run_dir)) == 2  # printed at the start and at the end
    return run_dir


def test_train_writes_model_config_checkpoints_and_tensorboard(trained):
    assert (trained / "model.zip").is_file()
    config = json.loads((trained / "config.json").read_text())
    assert (
        config["env_kwargs"]["num_obstacles"] == 3
        and config["hyperparams"]["margin"] == NEG_ACTION_RULE["margin"]
    )
    assert config["finished"] is not None
    assert sorted(p.name for p in (trained / "checkpoints").iterdir()) == [
        "neg-action-dqn_150_steps.zip",
        "neg-action-dqn_300_steps.zip",
    ]
    tags = scalar_tags(trained / "tensorboard")
    # SB3's own keys, so its users' TensorBoard habits and plotting scripts work on our runs.
    assert {"rollout/ep_rew_mean", "rollout/ep_len_mean", "eval/mean_reward"} <= tags
    assert {"eval/mean_ep_length", "eval/collisions_per_episode", "eval/moves_per_episode"} <= tags


def test_monitor_and_evaluations_load_with_sb3_readers_and_agree(trained):
    episodes = load_results(str(trained))  # every <i>.monitor.csv of the run
    assert len(episodes) == 2 * (150 // 40)  # two envs of 150 steps each, episodes of 40
    assert (episodes["l"] == 40).all() and (episodes["r"] <= 0).all()
    # r = -(collisions + 0.01 per move): between -collisions - 0.4 and -collisions.
    collisions = episodes["cumulative_collisions"]
    assert (
        (episodes["r"] <= -collisions + 1e-6) & (episodes["r"] >= -collisions - 0.4 - 1e-6)
    ).all()
    logged = scalars(trained / "tensorboard")
    rewards = episodes.sort_values("t")["r"].to_numpy()
    last_mean = logged["rollout/ep_rew_mean"][-1][1]
    assert any(
        np.isclose(last_mean, rewards[:k].mean(), atol=1e-4) for k in range(1, len(rewards) + 1)
    )

    evaluations = np.load(trained / "evaluations.npz")
    assert evaluations["timesteps"].tolist() == [150, 300]
    assert evaluations["results"].shape == evaluations["ep_lengths"].shape == (2, 2)
    assert (evaluations["ep_lengths"] == 40).all()
    np.testing.assert_allclose(
        evaluations["results"].mean(axis=1), [v for _, v in logged["eval/mean_reward"]], atol=1e-5
    )
    final = json.loads((trained / "config.json").read_text())["final_eval"]
    assert final["return"] == pytest.approx(evaluations["results"][-1].mean())
    assert final["collisions_per_episode"] == pytest.approx(evaluations["collisions"][-1].mean())
    assert final["moves_per_episode"] == pytest.approx(evaluations["moves"][-1].mean())


@pytest.mark.skipif(not HAS_MP4, reason="--capture-video needs the video extra (imageio-ffmpeg)")
def test_capture_video_records_evaluation_episodes(trained):
    videos = sorted(p.name for p in (trained / "videos").glob("*.mp4"))
    assert videos == [
        "eval-000000150-steps-episode-0.mp4",
        "eval-000000300-steps-episode-0.mp4",
    ]
    assert all((trained / "videos" / name).stat().st_size > 1000 for name in videos)


def tiny_train(out: Path, *more: str) -> None:
    train.main(
        [
            "--total-timesteps", "64", "--n-envs", "1", "--eval-freq", "0", "--no-progress-bar",
            "--env-kwargs", "num_obstacles=2", "--out-dir", str(out), "--hyperparams", *TINY,
            *more,
        ]
    )  # fmt: skip


def test_consecutive_runs_keep_both_models_and_watch_finds_the_latest(tmp_path, capsys):
    tiny_train(tmp_path)
    tiny_train(tmp_path, "--seed", "1")
    runs = tmp_path / MAIN_ALGO
    assert sorted(p.name for p in runs.iterdir()) == ["NegCollision-v0_1", "NegCollision-v0_2"]
    seeds = [
        json.loads((runs / n / "config.json").read_text())["seed"]
        for n in ("NegCollision-v0_1", "NegCollision-v0_2")
    ]
    assert seeds == [0, 1] and all(
        (runs / n / "model.zip").is_file() for n in ("NegCollision-v0_1", "NegCollision-v0_2")
    )
    capsys.readouterr()
    # negdl-watch with no --model: the latest run of the main job.
    watch.main(
        ["--runs-dir", str(tmp_path), "--output", str(tmp_path / "w.gif"), "--max-steps", "2"]
    )
    assert f"watching the latest run: {runs / 'NegCollision-v0_2'}" in capsys.readouterr().out


def test_run_names_are_overwritten_only_when_asked(tmp_path):
    tiny_train(tmp_path, "--run-name", "mine")
    config = tmp_path / MAIN_ALGO / "mine" / "config.json"
    first = config.read_text()
    with pytest.raises(SystemExit, match="already holds a run; pass --overwrite"):
        tiny_train(tmp_path, "--run-name", "mine", "--seed", "1")
    assert config.read_text() == first
    tiny_train(tmp_path, "--run-name", "mine", "--seed", "1", "--overwrite")
    assert json.loads(config.read_text())["seed"] == 1
    with pytest.raises(SystemExit, match="overwrite replaces the run named by run_name"):
        tiny_train(tmp_path, "--overwrite")
    with pytest.raises(SystemExit, match="plain folder name"):
        tiny_train(tmp_path, "--run-name", "../elsewhere")


def test_watch_fails_clearly_without_a_run(tmp_path):
    with pytest.raises(SystemExit, match=f"no finished run of {MAIN_ALGO} on NegCollision-v0"):
        watch.main(["--runs-dir", str(tmp_path), "--output", str(tmp_path / "x.gif")])


def test_watch_writes_a_gif_and_prints_the_episode(trained, tmp_path, run_script):
    gif = tmp_path / "rollout.gif"
    result = run_script(
        "neg_agents.cli.watch",
        "--model",
        str(trained / "model.zip"),
        "--output",
        str(gif),
        "--max-steps",
        "20",
    )
    assert "return" in result.stdout and "collisions" in result.stdout
    with Image.open(gif) as image:
        assert image.n_frames == 21


def test_watch_env_options_go_on_top_of_the_runs(trained):
    # They replaced the run's: --env-kwargs max_episode_steps=10 dropped num_obstacles=3.
    algo, env_id, env_kwargs = resolve_run(
        trained / "model.zip", env_kwargs={"max_episode_steps": 10}
    )
    assert (algo, env_id) == ("neg-action-dqn", "NegCollision-v0")
    assert env_kwargs == {"num_obstacles": 3, "max_episode_steps": 10, "window_size": 64}


def test_watch_fails_clearly_on_bad_model_files(trained, tmp_path, capsys):
    def error(*args: str) -> str:
        with pytest.raises(SystemExit) as exit_info:
            watch.main([*args, "--output", str(tmp_path / "x.gif")])
        return str(exit_info.value)

    assert "no model file" in error("--model", str(tmp_path / "missing.zip"), "--algo", "dqn")
    (tmp_path / "config.json").write_text((trained / "config.json").read_text())
    corrupt = tmp_path / "model.zip"
    corrupt.write_bytes(b"garbage")
    assert "not a valid neg-action-dqn model" in error("--model", str(corrupt))
    assert "another observation space" in error(
        "--model", str(trained / "model.zip"), "--env-kwargs", "num_obstacles=5"
    )
    (tmp_path / "config.json").unlink()
    assert "no config.json" in error("--model", str(corrupt))
    assert "no config.json" in error("--model", str(corrupt), "--algo", "dqn")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algo", "ppo"], "unknown algorithm 'ppo'"),
        (["--algo", "stay"], "stay is a baseline"),
        (["--total-timesteps", "-5"], "total_timesteps must be an integer >= 1"),
        (["--env-id", "NoSuchEnv-v0"], "unknown env id"),
        (["--env-kwargs", "num_obstacles"], "must look like name=value"),
        (["--checkpoint-freq", "-1"], "checkpoint_freq must be an integer >= 0"),
        (["--n-envs", "0", "--checkpoint-freq", "100"], "n_envs must be an integer >= 1"),
    ],
)
def test_train_rejects_bad_arguments(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main([*args, "--out-dir", str(tmp_path)])
    # An argument error (status 2) or a run that cannot start: one line naming the problem.
    assert message in f"{exit_info.value.code} {capsys.readouterr().err}"


def test_bench_rejects_bad_arguments(tmp_path, capsys):
    for args, message in [
        (["--algos", "sarsa"], "unknown algorithm 'sarsa'"),
        (["--total-timesteps", "0"], "total_timesteps must be an integer >= 1"),
    ]:
        with pytest.raises(SystemExit):
            bench.main([*args, "--out-dir", str(tmp_path)])
        assert message in capsys.readouterr().err


def test_bench_writes_the_scene_table_csv_markdown_plots_and_tensorboard(tmp_path, capsys):
    """The whole bench, in process and cut to what its files need: trained agents on a scene
    and on the mix, moved to every scene, the planner and a baseline."""
    bench.main(
        [
            *("--algos", "neg-reward-dqn", "neg-reward-dqn-shielded", "planner", "random"),
            *("--seeds", "0", "--num-obstacles", "3", "--no-crowd", "--mix", "--probes"),
            *("--total-timesteps", "200", "--mix-timesteps", "300", "--n-envs", "2"),
            *("--eval-freq", "100", "--eval-episodes", "1", "--final-episodes", "2"),
            *("--episode-steps", "40", "--out-dir", str(tmp_path)),
            *("--tensorboard-dir", str(tmp_path / "tb"), "--no-progress-bar"),
        ]
    )
    assert capsys.readouterr().out.strip().endswith(f"wrote {tmp_path / 'bench.md'}")
    with open(tmp_path / "bench.csv") as handle:
        rows = list(csv.DictReader(handle))
    scenes = ["NegCollision-v0-n3", "NegCollisionMix-v0", *(s.name for s in PROBE_SCENES)]
    # Every agent on every scene: the baselines once, each trained agent from each scene it
    # trained on (the mix only for the generalist, neg-reward-dqn-shielded).
    trained_on = {
        ("neg-reward-dqn", "NegCollision-v0-n3"),
        ("neg-reward-dqn-shielded", "NegCollisionMix-v0"),
        ("neg-reward-dqn-shielded", "NegCollision-v0-n3"),
        ("planner", ""),
        ("random", ""),
    }
    assert {(r["algo"], r["trained_on"]) for r in rows} == trained_on
    for agent in trained_on:
        here = [r["scene"] for r in rows if (r["algo"], r["trained_on"]) == agent]
        assert here == scenes, agent
    empty = [r for r in rows if r["scene"] == "NegCollision-v0-n0"]
    assert all(float(r["collisions_per_episode"]) == 0 for r in empty)
    assert [float(r["return"]) for r in empty if r["algo"] == "planner"] == [0.0]
    generalist = [r for r in rows if r["trained_on"] == "NegCollisionMix-v0"]
    assert {r["timesteps"] for r in generalist} == {"300"}
    assert all(int(r["episodes"]) == 2 for r in rows)
    assert {"collisions_ci95", "return_ci95", "train_collisions", "train_collisions_per_1k"} <= set(
        rows[0]
    )
    assert all(r["train_collisions"] == "" for r in rows if r["algo"] in ("planner", "random"))
    assert all(int(r["train_collisions"]) >= 0 for r in rows if r["trained_on"])
    markdown = (tmp_path / "bench.md").read_text()
    table = markdown.split("**Every agent on every scene**")[1].split("\n\n**")[0]
    assert "| neg-reward-dqn-shielded, trained on NegCollisionMix-v0 |" in table
    assert "| planner | 0.00 (1x) |" in table
    scene = markdown.split("**NegCollision-v0-n3**")[1]
    assert (
        "| neg-reward-dqn | " in scene
        and " ± " in scene.split("| neg-reward-dqn | ")[1].split("|")[0]
    )
    assert "held-out test episodes" in markdown and "1,000,000" in markdown
    assert "(40 steps each," in markdown  # --episode-steps, not the registered 500
    assert "collisions while learning" in markdown and "Machine:" in markdown
    assert "**Across seeds**" in markdown
    assert (tmp_path / "learning_curves.png").stat().st_size > 0
    with open(tmp_path / "bench_curves.csv") as handle:
        curves = list(csv.DictReader(handle))
    assert curves and all(int(point["train_collisions"]) >= 0 for point in curves)
    tags = scalar_tags(tmp_path / "tb")
    assert {
        "eval/collisions_per_episode",
        "eval/mean_reward",
        "rollout/collisions_total",
        "rollout/collisions_per_1k_steps",
        "final/NegCollision-v0-n3/moves_per_episode",
        "time/fps",
    } <= tags
    run = tmp_path / "tb" / "NegCollision-v0-n3" / "neg-reward-dqn" / "s0"
    assert np.load(run / "evaluations.npz")["timesteps"].tolist() == [100, 200]
    assert load_results(str(run)).shape[0] == 2 * (100 // 40)  # 40-step episodes, 100 per env


def test_bench_runs_maskable_ppo_by_default_exactly_when_sb3_contrib_is_installed():
    # negdl[contrib], part of dev; without it the bench runs the other agents.
    installed = importlib.util.find_spec("sb3_contrib") is not None
    assert ("maskable-ppo" in BenchConfig().algos) == installed


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


def test_watch_refuses_an_env_that_is_not_a_negcollision_env(tmp_path, capsys):
    """Episodes count collisions and moves: on CartPole-v1 watch died of KeyError 'collisions'."""
    with pytest.raises(SystemExit, match="CartPole-v1 is not one"):
        watch.main(
            ["--algo", "random", "--env-id", "CartPole-v1", "--output", str(tmp_path / "x.gif")]
        )
    assert not (tmp_path / "x.gif").exists()


def test_watch_and_videos_choose_the_render_mode_whatever_the_env_options_say(tmp_path, capsys):
    """A run trained with --env-kwargs render_mode=rgb_array: its videos (--capture-video) and
    negdl-watch died of TypeError: make() got multiple values for keyword argument 'render_mode'."""
    watch.main(
        ["--algo", "stay", "--env-kwargs", "render_mode=human", "--max-steps", "2"]
        + ["--output", str(tmp_path / "x.gif")]
    )
    assert (tmp_path / "x.gif").stat().st_size > 0
    assert "wrote 3 frames" in capsys.readouterr().out


def test_watch_asks_for_the_video_extra_before_playing(trained, tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec

    def without_ffmpeg(name, *args):
        return None if name == "imageio_ffmpeg" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_ffmpeg)
    with pytest.raises(SystemExit, match=r"negdl\[video\]"):
        watch.main(["--model", str(trained), "--output", str(tmp_path / "x.mp4")])
    assert not (tmp_path / "x.mp4").exists()


def test_watch_streams_a_long_episode_to_a_gif_in_flat_memory(tmp_path):
    """Frames go to the file as they are drawn: 1,000 steps cost no more memory than 100."""
    import tracemalloc

    from neg_agents.watch import WatchOptions, watch_agent

    def peak_bytes(steps: int) -> int:
        tracemalloc.start()
        watch_agent(
            "stay", env_kwargs={"num_obstacles": 3, "max_episode_steps": 1000},
            options=WatchOptions(max_steps=steps, size=96, output=str(tmp_path / f"{steps}.gif")),
        )  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    short, long = peak_bytes(100), peak_bytes(1000)
    assert long < 200 * 2**20
    # 900 more frames of 134 x 96 x 3 bytes would add 35 MB if they were kept.
    assert long - short < 2 * 2**20
    with Image.open(tmp_path / "1000.gif") as image:
        assert image.n_frames == 1001 and image.size == (96, 134)


def test_train_saves_the_model_so_far_on_ctrl_c(tmp_path, interrupt_script):
    run_dir = tmp_path / MAIN_ALGO / "NegCollision-v0_1"
    result = interrupt_script(
        "neg_agents.cli.train",
        *("--total-timesteps", "1000000", "--n-envs", "2", "--eval-freq", "0"),
        *("--env-kwargs", "num_obstacles=3", "--no-progress-bar", "--out-dir", str(tmp_path)),
        *("--hyperparams", *TINY),
        ready=lambda: (run_dir / "tensorboard").exists(),
    )
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr
    assert "stopped by SIGINT: saved the model after" in result.stderr
    config = json.loads((run_dir / "config.json").read_text())
    assert config["interrupted"] is True and 0 < config["num_timesteps"] < 1_000_000
    model = load_agent(run_dir / "model.zip", MAIN_ALGO)
    assert model.num_timesteps == config["num_timesteps"]


def test_a_bench_of_baselines_leaves_no_earlier_runs_learning_curves(tmp_path):
    (tmp_path / "bench_curves.csv").write_text("scene,algo,seed,timesteps,return\nold,dqn,0,1,-1\n")
    bench.main(
        [
            *("--algos", "random", "--seeds", "0", "--num-obstacles", "3", "--no-crowd"),
            *("--no-mix", "--no-probes", "--final-episodes", "1", "--episode-steps", "5"),
            *("--out-dir", str(tmp_path), "--tensorboard-dir", str(tmp_path / "tb")),
            "--no-progress-bar",
        ]
    )
    assert (tmp_path / "bench.csv").exists() and not (tmp_path / "bench_curves.csv").exists()


def test_bench_keeps_the_finished_runs_on_ctrl_c(tmp_path, interrupt_script):
    result = interrupt_script(
        "neg_agents.cli.bench",
        *("--algos", "random", "stay", "--seeds", *map(str, range(20)), "--num-obstacles", "3"),
        *("--final-episodes", "2", "--no-progress-bar", "--out-dir", str(tmp_path)),
        *("--tensorboard-dir", str(tmp_path / "tb"), "--no-crowd", "--no-mix", "--no-probes"),
        ready=lambda: (tmp_path / "bench.csv").exists(),
    )
    assert result.returncode == 130 and "Traceback" not in result.stderr, result.stderr
    with open(tmp_path / "bench.csv") as handle:
        rows = list(csv.DictReader(handle))
    # stay is deterministic: one run, for the first seed; random one per seed.
    assert 1 <= len(rows) < 21 and sum(r["algo"] == "stay" for r in rows) <= 1
    assert f"stopped by SIGINT: kept the {len(rows)} finished trials of 21" in result.stderr
    assert "(incomplete" in (tmp_path / "bench.md").read_text()


def test_ablation_script_writes_a_row_per_variant_observation_and_seed(tmp_path, run_script):
    run_script(
        "ablate_agents.py",
        *("--variants", "neg-reward-dqn", "dqn, flat MLP", "--observations", "absolute", "nearest"),
        *("--seeds", "0", "--total-timesteps", "200", "--n-envs", "2", "--final-episodes", "1"),
        *("--out-dir", str(tmp_path)),
    )
    with open(tmp_path / "ablation.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["variant"], r["observation"]) for r in rows] == [
        ("neg-reward-dqn", "absolute"),
        ("dqn, flat MLP", "absolute"),
        ("neg-reward-dqn", "nearest"),
        ("dqn, flat MLP", "nearest"),
    ]
    assert "| dqn, flat MLP |" in (tmp_path / "ablation.md").read_text()


def test_ablation_script_rejects_an_unknown_variant(tmp_path, run_script):
    result = run_script(
        "ablate_agents.py", "--variants", "sarsa", "--out-dir", str(tmp_path), check=False
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "ablate_agents.py: error: unknown variant(s)" in result.stderr


def test_schedule_check_trains_each_schedule_on_each_seed(tmp_path, run_script):
    out = tmp_path / "schedule.md"
    run_script(
        "schedule_check.py",
        *("--schedules", "n_envs=2 learning_starts=50", "n_envs=4 gradient_steps=2 batch_size=16"),
        *("--seeds", "0", "1", "--total-timesteps", "200", "--episodes", "2", "--out", str(out)),
    )
    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| n_envs=")]
    # A row per schedule and seed, then one mean per schedule.
    assert len(rows) == 6
    assert "validation episodes (reset seeds from 500,000)" in text


def test_schedule_check_rejects_bad_arguments(capsys):
    schedule_check = import_script("schedule_check")
    bad = {
        "--schedules batch_size": "name=value",
        "--episodes 0": "--episodes",
        "--algo sarsa": "sarsa",
        "--schedules learning_rat=0.1": "learning_rat",  # checked before anything trains
        "--schedules n_envs=0": "n_envs",
    }
    for argv, message in bad.items():
        with pytest.raises(SystemExit) as exit_info:
            parse_args(schedule_check.Args, argv.split(), prog="schedule_check.py")
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
