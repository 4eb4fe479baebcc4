"""The environment scripts (play, bench_env, render_frame) and update_docs.py run end to end (as subprocesses, headless)."""

from ..conftest import import_script


def test_play_runs_headless(run_script):
    out = run_script(
        "play.py", "--episodes", "2", "--max-steps", "5", "--num-obstacles", "3"
    ).stdout
    assert out.count("return") == 2 and "steps 5" in out


def test_play_keeps_the_registered_scene_unless_told(monkeypatch):
    # --num-obstacles defaulted to 10 and was always passed, so --env-id NegCollisionCrowd-v0
    # played 10 obstacles, not the crowd's 300, and NegCollisionMix-v0 lost its varying count.
    play = import_script("play")
    counts = []

    def no_episodes(env, *args, **kwargs):
        counts.append(env.unwrapped.config.num_obstacles)
        return iter(())

    monkeypatch.setattr(play, "play_episodes", no_episodes)
    for env_id in ("NegCollision-v0", "NegCollisionCrowd-v0", "NegCollisionMix-v0"):
        play.main(play.Args(env_id=env_id))
    play.main(play.Args(env_id="NegCollisionCrowd-v0", num_obstacles=5))
    assert counts == [10, 300, (0, 300), 5]


def test_bench_env_writes_its_table(run_script, tmp_path):
    table = tmp_path / "bench.md"
    out = run_script(
        "bench_env.py", "--seconds", "0.02", "--rounds", "1", "--out", str(table)
    ).stdout
    text = table.read_text()
    assert text.strip() == out.strip()
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| NegCollision") or line.startswith("| CartPole")
    ]
    assert len(rows) == 8
    assert rows[0].startswith("| CartPole-v1 (gym.make) |") and rows[0].endswith("| 1.00x | - |")


def test_bench_env_rates_are_positive_however_short_the_time():
    # --seconds 1e-9 (valid: > 0) measured no step at all, a rate of 0, and the table's ratio
    # to CartPole-v1 raised ZeroDivisionError.
    import gymnasium as gym

    bench_env = import_script("bench_env")
    assert bench_env.single_env_rate(gym.make("CartPole-v1"), 1e-12, 0) > 0
    vector = gym.make_vec("NegCollision-v0", num_envs=2)
    assert bench_env.vector_env_rate(vector, 1e-12, 0) > 0


def test_render_frame_writes_the_readme_picture(run_script, tmp_path):
    from PIL import Image

    png = tmp_path / "frame.png"
    run_script("render_frame.py", "--out", str(png), "--window-size", "128")
    with Image.open(png) as image:
        width, height = image.size
    assert width == 128 and height > 128  # the arena and the HUD band above it


def test_render_frame_with_the_bird_at_the_right_wall(run_script, tmp_path):
    # From --steps 24 on the bird reaches the right wall, and the obstacle placed up and to its
    # right left the arena: set_state refused it ("must lie in the unit square").
    png = tmp_path / "frame.png"
    run_script("render_frame.py", "--out", str(png), "--window-size", "64", "--steps", "499")
    assert png.is_file()


def test_update_docs_lists_and_dry_runs_its_jobs(run_script):
    listed = run_script("update_docs.py", "--list").stdout
    assert "envs-bench:" in listed and "python scripts/bench_env.py" in listed
    planned = run_script("update_docs.py", "--jobs", "occlusions", "ohem", "--dry-run").stdout
    assert "--out docs/supervised/occlusions.png" in planned
    # A sweep reruns every trial, unless asked to resume an interrupted job.
    assert "--out-dir runs/ohem --no-resume" in planned
    resumed = run_script("update_docs.py", "--jobs", "ohem", "--dry-run", "--resume").stdout
    assert "--out-dir runs/ohem\n" in resumed
    refused = run_script("update_docs.py", "--jobs", "nope", check=False)
    assert refused.returncode == 2 and "unknown job(s) ['nope']" in refused.stderr
