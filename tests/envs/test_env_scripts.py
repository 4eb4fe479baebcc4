"""scripts/play.py and scripts/bench_env.py run end to end (as subprocesses, headless)."""


def test_play_runs_headless(run_script):
    out = run_script(
        "play.py", "--episodes", "2", "--max-steps", "5", "--num-obstacles", "3"
    ).stdout
    assert out.count("return") == 2 and "steps 5" in out


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
