"""negdl.sweeps: one grid gives the same numbers in-process, in a process pool and on Ray; a
restarted sweep runs only what had not finished; a failing trial is reported while the others
finish; Ctrl-C keeps the finished trials; the aggregate table holds the hand-computed means."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from negdl.cli import parse_args
from negdl.errors import UserError
from negdl.results import markdown_table
from negdl.sweep_backends import Backend, InProcess, ProcessPool, Ray
from negdl.sweeps import (
    Grid,
    Sweep,
    SweepOptions,
    TrialsFailed,
    execution_fields,
    execution_only,
)

from .sweep_trials import counted, fit_line

REPO = Path(__file__).resolve().parents[2]
GRID = Grid(seed=(0, 1, 2), lr=(0.01, 0.1))


def calls(path: Path) -> list[str]:
    """The trial names ``counted`` wrote, in order."""
    return path.read_text().split() if path.exists() else []


def test_a_grid_is_every_combination_first_axis_slowest():
    grid = Grid(num_obstacles=(10, 30), seed=(0, 1), algo=("dqn",))
    assert len(grid) == 4
    assert [tuple(p.values()) for p in grid] == [
        (10, 0, "dqn"), (10, 1, "dqn"), (30, 0, "dqn"), (30, 1, "dqn"),
    ]  # fmt: skip
    names = [
        t.name
        for t in Sweep(fit_line, grid, "out", name="n{num_obstacles}/{algo}/s{seed}").trials()
    ]
    assert names == ["n10/dqn/s0", "n10/dqn/s1", "n30/dqn/s0", "n30/dqn/s1"]
    default = Sweep(fit_line, Grid(seed=(0,), lr=(0.1,)), "out").trials()[0]
    assert default.name == "seed=0/lr=0.1" and default.dir == Path("out/seed=0/lr=0.1")
    stacked = Sweep(fit_line, Grid(seeds=((0, 1, 2),)), "out", name="stacked_seeds{seeds}")
    assert stacked.trials()[0].name == "stacked_seeds0-1-2"
    by_function = Sweep(
        fit_line, Grid(noise=(0.2,)), "out", name=lambda p: f"noise{round(100 * p['noise'])}"
    )
    assert by_function.trials()[0].name == "noise20"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Grid(), "at least one axis"),
        (lambda: Grid(seed=()), "non-empty sequence"),
        (lambda: Grid(seed=(0, 0)), "repeats a value"),
        (lambda: Grid(seed=(None,)), "numbers, text or bools"),
        (lambda: Grid(lr=(float("nan"),)), "numbers, text or bools"),
        (lambda: Sweep(fit_line, GRID, "o", name="seed{seed}").trials(), "name several trials"),
        (lambda: Sweep(fit_line, GRID, "o", name="{epochs}").trials(), "not a grid axis"),
        (
            lambda: Sweep(fit_line, Grid(s=("a", "a/b")), "o", name="{s}").trials(),
            "inside trial 'a'",
        ),
        (lambda: Sweep(fit_line, Grid(s=("..",)), "o", name="{s}").trials(), "relative path"),
    ],
)
def test_bad_grids_and_trial_names_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    """The grid's rows run in this process: the reference of the other backends."""
    out = tmp_path_factory.mktemp("in-process")
    sweep = Sweep(functools.partial(fit_line, 2.0), GRID, out, name="seed{seed}/lr{lr}")
    return sweep.run(InProcess(), progress=False).rows("results")


@pytest.fixture(scope="module")
def ray_instance():
    """One new local Ray instance for the module (``ray.init`` takes about 5 s on the 2-core
    machine), never a cluster a user already runs: ``address="local"`` starts a new instance
    even when ``RAY_ADDRESS`` is set or ``ray start`` left one running (Ray's docs), where a
    plain ``ray.init(num_cpus=2)`` would attach to it and fail."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("RAY_ADDRESS", raising=False)  # nor may the trials' workers find it
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        yield
        ray.shutdown()


def test_only_drops_the_combinations_its_predicate_rejects_and_keeps_the_order():
    grid = Grid(seed=(0, 1, 2), algo=("planner", "dqn")).only(
        lambda p: p["algo"] != "planner" or p["seed"] == 0
    )
    assert list(grid) == [
        {"seed": 0, "algo": "planner"},
        {"seed": 0, "algo": "dqn"},
        {"seed": 1, "algo": "dqn"},
        {"seed": 2, "algo": "dqn"},
    ]
    assert len(grid) == 4 and len(Grid(seed=(0, 1, 2), algo=("planner", "dqn"))) == 6


def other_processes(backend: str, request: pytest.FixtureRequest) -> Backend:
    """A backend whose trials run in other processes: 2 local workers, or the module's Ray."""
    if backend == "ray":
        request.getfixturevalue("ray_instance")  # skipped without the ray extra
        return Ray()
    return ProcessPool(2)


@pytest.mark.parametrize("backend", ["processes", "ray"])
def test_the_same_grid_gives_the_same_numbers_on_every_backend(
    backend, in_process, tmp_path, request
):
    sweep = Sweep(functools.partial(fit_line, 2.0), GRID, tmp_path, name="seed{seed}/lr{lr}")
    result = sweep.run(other_processes(backend, request), progress=False)
    assert result.complete and not result.failed and result.slots == 2
    rows = result.rows("results")
    assert [{k: v for k, v in r.items() if k != "pid"} for r in rows] == [
        {k: v for k, v in r.items() if k != "pid"} for r in in_process
    ]
    assert os.getpid() not in {row["pid"] for row in rows}  # the trials ran in other processes
    for trial in sweep.trials():
        record = json.loads((trial.dir / "trial.json").read_text())
        assert record["status"] == "finished" and record["params"] == dict(trial.params)
        assert (trial.dir / "weight.txt").exists() and (trial.dir / "results.csv").exists()
        assert (
            f"seed {trial.params['seed']} lr {trial.params['lr']}: loss"
            in (trial.dir / "trial.log").read_text()
        )


def test_a_failing_trial_is_reported_and_the_others_finish(tmp_path, capsys):
    log = tmp_path / "calls.txt"
    seen: list[int] = []
    sweep = Sweep(
        functools.partial(counted, str(log), (1,)),
        Grid(seed=(0, 1, 2)),
        tmp_path / "out",
        name="seed{seed}",
    )
    result = sweep.run(progress=False, on_update=lambda r: seen.append(len(r.finished)))
    assert calls(log) == ["seed0", "seed1", "seed2"] and seen == [1, 2]
    assert sorted(result.finished) == ["seed0", "seed2"] and list(result.failed) == ["seed1"]
    assert [row["seed"] for row in result.rows("results")] == [0] * 4 + [2] * 4
    trial_dir = tmp_path / "out" / "seed1"
    assert "RuntimeError: seed 1 is cursed" in (trial_dir / "trial.log").read_text()
    record = json.loads((trial_dir / "trial.json").read_text())
    assert record["status"] == "failed" and "Traceback" in record["error"]
    err = capsys.readouterr().err
    assert "trial seed1 (seed=1) failed:" in err and "Traceback" in err
    with pytest.raises(TrialsFailed) as failure:
        result.raise_for_failures()
    message = str(failure.value)
    assert (
        "1 of 3 trials failed" in message
        and "seed1 (seed=1): RuntimeError: seed 1 is cursed" in message
    )
    assert str(trial_dir / "trial.log") in message


@pytest.mark.parametrize("backend", ["processes", "ray"])
def test_a_trial_failing_in_another_process_is_reported_and_its_rerun_resumes(
    backend, tmp_path, request
):
    log = tmp_path / "calls.txt"

    def sweep(fail: tuple[int, ...]) -> Sweep:
        function = functools.partial(counted, str(log), fail)
        return Sweep(function, Grid(seed=(0, 1, 2)), tmp_path / "out", name="seed{seed}")

    first = sweep(fail=(1,)).run(other_processes(backend, request), progress=False)
    assert sorted(first.finished) == ["seed0", "seed2"] and list(first.failed) == ["seed1"]
    assert "Traceback" in first.failed["seed1"]
    assert "RuntimeError: seed 1 is cursed" in first.failed["seed1"]
    assert "RuntimeError: seed 1 is cursed" in (tmp_path / "out/seed1/trial.log").read_text()
    assert sorted(calls(log)) == ["seed0", "seed1", "seed2"]
    assert sorted(first.seconds) == ["seed0", "seed2"]  # a failed trial has no finished time
    second = sweep(fail=()).run(other_processes(backend, request), progress=False)
    assert calls(log)[3:] == ["seed1"] and second.resumed == ["seed0", "seed2"]
    # The resumed trials keep the times their records hold; the rerun one has its own.
    assert {name: second.seconds[name] for name in first.seconds} == first.seconds
    assert sorted(second.seconds) == ["seed0", "seed1", "seed2"]
    assert (
        second.complete
        and [row["seed"] for row in second.rows("results")] == [0] * 4 + [1] * 4 + [2] * 4
    )


def test_ray_trials_reserve_their_cpus_and_gpus(ray_instance, tmp_path):
    # The module's instance has 2 CPUs and no GPU.
    sweep = Sweep(functools.partial(fit_line, 2.0), Grid(seed=(0, 1), lr=(0.1,)), tmp_path)
    result = sweep.run(Ray(cpus_per_trial=2), progress=False)
    assert result.complete and result.slots == 1 and "2 CPU(s) and 0 GPU(s)" in result.backend
    with pytest.raises(UserError, match=r"2 CPUs and 0 GPUs, too few for one trial"):
        sweep.run(Ray(gpus_per_trial=1), progress=False, resume=False)


def test_a_restarted_sweep_runs_only_what_had_not_finished(tmp_path):
    log, out = tmp_path / "calls.txt", tmp_path / "out"

    def sweep(fail: tuple[int, ...], epochs: int = 1) -> Sweep:
        function = functools.partial(counted, str(log), fail)
        return Sweep(
            function, Grid(seed=(0, 1, 2)), out, name="seed{seed}", settings={"epochs": epochs}
        )

    first = sweep(fail=(1,)).run(progress=False)
    assert list(first.failed) == ["seed1"] and calls(log) == ["seed0", "seed1", "seed2"]
    second = sweep(fail=()).run(progress=False)
    assert calls(log)[3:] == ["seed1"] and second.resumed == ["seed0", "seed2"]
    assert second.complete and not second.failed
    assert [row["seed"] for row in second.rows("results")] == [0] * 4 + [1] * 4 + [2] * 4
    third = sweep(fail=()).run(progress=False)
    assert len(calls(log)) == 4 and third.rows("results") == second.rows("results")
    with pytest.raises(UserError, match=r"other settings \(epochs=1; now epochs=2\).*--no-resume"):
        sweep(fail=(), epochs=2).run(progress=False)
    sweep(fail=(), epochs=2).run(progress=False, resume=False)
    assert calls(log)[4:] == ["seed0", "seed1", "seed2"]


def test_a_folder_holding_files_no_sweep_wrote_is_left_alone(tmp_path):
    (tmp_path / "seed0").mkdir()
    (tmp_path / "seed0" / "notes.txt").write_text("mine")
    sweep = Sweep(
        functools.partial(counted, str(tmp_path / "c"), ()),
        Grid(seed=(0,)),
        tmp_path,
        name="seed{seed}",
    )
    with pytest.raises(UserError, match="holds files that no sweep wrote"):
        sweep.run(progress=False)
    assert (tmp_path / "seed0" / "notes.txt").read_text() == "mine"


def test_the_aggregate_table_holds_the_hand_computed_means_of_what_finished(tmp_path):
    # Values seed * 10 + i (mode A: i = 0, B: 1) on test set "full", plus 100 on "half".
    sweep = Sweep(
        functools.partial(counted, str(tmp_path / "c"), (1,)),
        Grid(seed=(0, 1, 2)),
        tmp_path,
        name="s{seed}",
    )
    rows = sweep.run(progress=False).rows("results")  # seed 1 failed: seeds 0 and 2 are averaged
    # A full: 0, 20 -> 10 ± 14.14; B half: 101, 121 -> 111 ± 14.14 (sample std: 20 / sqrt(2)).
    assert markdown_table(rows, "mode", "test_set", "value").splitlines() == [
        "| mode | full | half |",
        "| --- | ---: | ---: |",
        "| A | 10.00 ± 14.14 | 110.00 ± 14.14 |",
        "| B | 11.00 ± 14.14 | 111.00 ± 14.14 |",
    ]


TOY = textwrap.dedent(
    """
    import functools, sys
    from dataclasses import dataclass
    sys.path.insert(0, {repo!r})
    from negdl.cli import run_main
    from negdl.sweeps import Grid, Sweep, SweepOptions
    from tests.common.sweep_trials import sleepy

    @dataclass
    class Args(SweepOptions):
        out: str = ""
        seconds: float = 0.0

    def main(args: Args) -> None:
        sweep = Sweep(functools.partial(sleepy, args.seconds), Grid(seed=tuple(range(20))),
                      args.out, name="seed{{seed}}")
        result = args.run_sweep(sweep, "toy", progress=False)
        print(f"finished {{len(result.finished)}}, resumed {{len(result.resumed)}}")

    if __name__ == "__main__":
        run_main("toy", Args, main)
    """
)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_keeps_the_finished_trials_and_the_same_command_runs_the_rest(
    workers, tmp_path, interrupt_script, run_script
):
    script = tmp_path / "toy.py"
    script.write_text(TOY.format(repo=str(REPO)))
    out = tmp_path / "out"
    result = interrupt_script(
        str(script), "--out", str(out), "--seconds", "0.3", "--workers", workers,
        ready=lambda: (out / "seed0" / "trial.json").exists(),
    )  # fmt: skip
    assert result.returncode == 130 and "Traceback" not in result.stderr, result.stderr
    finished = sorted(p.parent.name for p in out.glob("*/trial.json"))
    assert 1 <= len(finished) < 20
    assert (
        f"toy: stopped by SIGINT: kept the {len(finished)} finished trials of 20" in result.stderr
    )
    rerun = run_script(str(script), "--out", str(out), "--workers", workers)
    assert f"finished 20, resumed {len(finished)}" in rerun.stdout


@dataclass
class ScriptArgs(SweepOptions):
    """A script's arguments: the sweep's options and its own."""

    seeds: tuple[int, ...] = (0,)
    epochs: int = 1
    threads: int = execution_only(0)
    out_dir: str = execution_only("runs")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--backend", "dask"],
            "backend must be one of 'in-process', 'processes', 'ray'; got 'dask'",
        ),
        (["--workers", "0"], "workers must be an integer >= 1"),
        (["--workers", "2", "--backend", "in-process"], "--workers is for --backend processes"),
        (["--address", "auto"], "are for --backend ray"),
        (["--gpus-per-trial", "1", "--backend", "processes"], "are for --backend ray"),
        (["--cpus-per-trial", "0"], "cpus_per_trial must be a finite number > 0"),
    ],
)
def test_sweep_options_refuse_what_their_backend_cannot_do(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(ScriptArgs, argv, "test")
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_sweep_options_choose_the_backend_and_leave_execution_out_of_settings(monkeypatch):
    assert isinstance(parse_args(ScriptArgs, []).make_backend(), InProcess)
    assert isinstance(parse_args(ScriptArgs, ["--workers", "3"]).make_backend(), ProcessPool)
    args = parse_args(ScriptArgs, ["--seeds", "0", "1", "--threads", "2", "--no-resume"])
    assert args.sweep_settings("seeds") == {"epochs": 1} and args.resume is False
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None)
    with pytest.raises(ValueError, match=r"pip install 'negdl\[ray\]'"):
        ScriptArgs(backend="ray")
    with pytest.raises(UserError, match=r"pip install 'negdl\[ray\]'"):
        Ray()


@dataclass
class RunsElsewhere(ScriptArgs):
    """A script that declares an execution-only field again, with another default."""

    out_dir: str = "elsewhere"
    batch_size: int = 64


def test_a_field_marked_execution_only_is_left_out_of_the_settings_and_others_are_kept():
    sweep_options = {"backend", "workers", "address", "cpus_per_trial", "gpus_per_trial", "resume"}
    assert execution_fields(ScriptArgs) == sweep_options | {"threads", "out_dir"}
    assert execution_fields(RunsElsewhere()) == execution_fields(ScriptArgs)  # the mark stays
    args = RunsElsewhere(seeds=(1,), epochs=2, threads=3, out_dir="there", workers=2)
    assert args.sweep_settings() == {"seeds": [1], "epochs": 2, "batch_size": 64}
    assert args.sweep_settings("seeds", ignore=["batch_size"]) == {"epochs": 2}


def test_processes_need_a_trial_function_that_pickles(tmp_path):
    sweep = Sweep(lambda trial: {}, Grid(seed=(0,)), tmp_path)
    started = time.perf_counter()
    with pytest.raises(UserError, match="cannot be pickled"):
        sweep.run(ProcessPool(2), progress=False)
    assert time.perf_counter() - started < 5  # refused before any worker starts


def test_bench_sweeps_script_times_the_bench_on_a_backend(tmp_path, run_script):
    out = tmp_path / "times.md"
    run_script(
        "bench_sweeps.py", "--backends", "in-process", "--rounds", "1", "--total-timesteps", "50",
        "--algos", "stay", "--seeds", "0", "--num-obstacles", "3", "--no-crowd",
        "--final-episodes", "1",
        "--work-dir", str(tmp_path / "work"), "--out", str(out),
    )  # fmt: skip
    text = out.read_text()
    assert "| in-process | 1 |" in text and "(timing columns aside): yes" in text
    assert "negdl-bench --total-timesteps 50 --algos stay" in text and "--no-crowd" in text


def test_a_sweep_whose_trials_all_finished_before_reports_its_backends_slots(tmp_path):
    sweep = Sweep(functools.partial(fit_line, 2.0), Grid(seed=(0,), lr=(0.1,)), tmp_path)
    assert sweep.run(InProcess(), progress=False).complete
    again = sweep.run(ProcessPool(2), progress=False)  # nothing left to run: no worker starts
    assert again.resumed and not again.backend and again.slots == 2
