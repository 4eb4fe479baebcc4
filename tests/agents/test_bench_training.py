"""scripts/bench_training.py end to end in a smoke configuration, and its argument checks."""

import re

import pytest

from negdl.cli import parse_args

from ..conftest import import_script


def test_bench_training_reports_every_row_against_todays_path(run_script, tmp_path):
    out = tmp_path / "speed.md"
    result = run_script(
        "bench_training.py",
        "--total-timesteps", "2300", "--repeats", "1", "--bound-seconds", "0.05",
        "--hyperparams", "batch_size=64", "--agent-n-envs", "8", "--out", str(out),
    )  # fmt: skip
    text = out.read_text()
    assert text in result.stdout
    assert "torch threads" in text and "load average" in text
    rows = dict(re.findall(r"^\| ([^|]+?) \| ([\d,]+) \(", text, flags=re.M))
    for name in (
        "today's path (SB3 DQN, negdl 0.1 extractor and schedule)",
        "dqn (SB3 DQN, current extractor)",
        "neg-reward-dqn",
        "neg-reward-dqn-shielded (the main job)",
        "neg-action-dqn",
        "neg-reward-dqn (n_envs=8 batch_size=64)",  # the schedule's row, beside the defaults
        "env alone (random actions, same vec env)",
        "policy forward, batch 16 (acting): today's path",
        "policy forward, batch 256 (training): today's path",
        "gradient step alone, batch 256: today's path",
        "policy forward, batch 64 (acting): neg-reward-dqn",
        "gradient step alone, batch 512: neg-reward-dqn",
        "policy forward, batch 8 (acting): neg-reward-dqn (n_envs=8 batch_size=64)",
        "policy forward, batch 64 (training): neg-reward-dqn (n_envs=8 batch_size=64)",
        "gradient step alone, batch 64: neg-reward-dqn (n_envs=8 batch_size=64)",
    ):
        assert float(rows[name].replace(",", "")) > 0, name
    today = next(line for line in text.splitlines() if line.startswith("| today's path"))
    assert today.endswith("| 1.00x | 1.00x |")
    # Today's path keeps negdl 0.1's schedule whatever the defaults are.
    assert "(today's path: 16, its schedule then)" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--repeats", "0"], "--repeats"),
        (["--hyperparams", "batch_size"], "name=value"),
        (["--device", "tpu"], "device"),
        (["--threads", "-1"], "--threads"),
        (["--agent-n-envs", "0"], "--agent-n-envs"),
    ],
)
def test_bench_training_rejects_bad_arguments(argv, message, capsys):
    bench = import_script("bench_training")
    with pytest.raises(SystemExit) as exit_info:
        parse_args(bench.Args, argv, prog="bench_training.py")
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
