"""The supervised scripts run end to end in smoke configurations on synthetic MNIST files."""

from __future__ import annotations

import csv
import dataclasses
import re
import signal
import subprocess
import typing
from pathlib import Path

import pytest
import torch
import tyro
from PIL import Image

from negdl.cli import parse_args
from supervised.checkpoints import load_checkpoint, save_checkpoint
from supervised.cli.common import Report
from supervised.data import DataFileError
from supervised.models import mnist_net
from supervised.synergy import model_metadata

from ..conftest import import_script, run_in_repo

REPO = Path(__file__).resolve().parents[2]


def run_script(
    name: str, data_dir: Path, options: str, *paths: str
) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/<name>`` on ``data_dir`` with space-separated ``options`` plus path arguments."""
    return run_in_repo(name, "--data-dir", str(data_dir), *options.split(), *paths, check=False)


def csv_rows(path: Path) -> list[dict]:
    """The rows of a CSV file a script wrote, as dicts of strings."""
    with open(path) as handle:
        return list(csv.DictReader(handle))


def run_mnist_study(name: str, data_dir: Path, options: str, out: Path) -> tuple[list[dict], str]:
    """Run ``supervised.cli.<name>`` on ``data_dir`` with ``options`` and ``--out-dir out``,
    check that it succeeded, and return the rows of its ``mnist/results.csv`` and its stdout."""
    done = run_script(f"supervised.cli.{name}", data_dir, options, "--out-dir", str(out))
    assert done.returncode == 0, done.stderr
    return csv_rows(out / "mnist" / "results.csv"), done.stdout


def test_cbomf_script_smoke(mnist_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    options = (
        "--seeds 0 1 --cbomf.epochs 1 --cbomf.second-epochs 1 --train-subset 128 --test-subset 32"
    )
    options += " --corner-fractions 0.1 0.5 --no-progress --threads 1"
    rows, _ = run_mnist_study("cbomf", mnist_root, options, out)
    assert len(rows) == 2 * 8 * 7  # seeds x modes x (full, 4 cuts, 2 corners)
    assert {row["mode"] for row in rows} == {"SN", "ONN", "HN", "NR", "ALT", "TP", "HN-K", "NR-K"}
    assert all(0.0 <= float(row["accuracy"]) <= 100.0 for row in rows)
    report = (out / "mnist" / "results.md").read_text()
    assert "| full |" in report and "Compared with the source" in report and "Wall time" in report
    assert list((out / "mnist" / "seed1" / "HN").glob("events.out.tfevents.*"))
    model = mnist_net()
    metadata = load_checkpoint(out / "mnist" / "seed1" / "NR" / "model.pt", model)
    assert metadata["mode"] == "NR" and metadata["seed"] == 1
    nr_full = next(
        float(r["accuracy"])
        for r in rows
        if r["mode"] == "NR" and r["seed"] == "1" and r["test_set"] == "full"
    )
    assert round(metadata["accuracy"]["full"], 2) == nr_full


def test_cbomf_script_stacked_smoke(mnist_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    options = "--seeds 0 1 --modes SN HN --cbomf.epochs 1 --cbomf.second-epochs 1 --train-subset 96"
    options += " --test-subset 32 --corner-fractions 0.5 --no-progress --threads 1 --stacked"
    rows, _ = run_mnist_study("cbomf", mnist_root, options, out)
    assert len(rows) == 2 * 2 * 6 and {row["seed"] for row in rows} == {"0", "1"}
    assert "all seeds stacked" in (out / "mnist" / "results.md").read_text()
    trial = out / "mnist" / "stacked_seeds0-1"  # all seeds are one trial
    assert list((trial / "seed1" / "HN").glob("events.out.tfevents.*"))
    metadata = load_checkpoint(trial / "seed1" / "HN" / "model.pt", mnist_net())
    assert metadata["mode"] == "HN" and metadata["seed"] == 1


@pytest.mark.parametrize(
    ("script", "argv", "message"),
    [
        ("cbomf", ["--modes", "SN", "XX"], "unknown CBOMF mode(s) ['XX']"),
        ("cbomf", ["--cbomf.lr", "-1"], "lr must be a finite number > 0"),
        ("cbomf", ["--dataset", "emnist-foo"], "unknown dataset 'emnist-foo'"),
        ("synergy", ["--dataset", "svhn"], "unknown dataset 'svhn'"),
        ("synergy", ["--arch", "resnet18"], "does not fit dataset 'mnist'"),
        ("synergy", ["--omegas", "-1"], "omegas must be >= 0"),
        ("synergy", ["--extra-modes", "XX"], "unknown CBOMF mode(s) ['XX']"),
        ("robustness", ["--suite-attacks", "DeepFool"], "unknown attack(s) ['DeepFool']"),
        ("robustness", ["--pgd-eps", "2"], "every eps must be in [0, 1]"),
        ("robustness", ["--suite-models", "other"], "suite_models must be among models"),
        ("siamese", ["--margin", "-1"], "margin must be >= 0"),
        ("siamese", ["--schedules", "TSN-P>TSN"], "unknown schedule 'TSN-P>TSN'"),
        ("siamese", ["--miner", "easy"], "miner must be one of None, 'all'"),
        # Failed only after training: k-NN over fewer references than k.
        ("siamese", ["--k", "300", "--train-subset", "256"], "--k 300 neighbours need at least"),
        ("negative_labels", ["--noise-rates", "0.2", "1.0"], "noise rates must be in [0, 1)"),
        ("negative_labels", ["--methods", "SelPL"], "unknown method(s) ['SelPL']"),
        ("negative_aware", ["--sources", "cifar100"], "unknown negative source(s) ['cifar100']"),
        ("negative_aware", ["--weight", "-0.5"], "weight must be >= 0"),
        ("ohem", ["--fractions", "1.5"], "fraction must be in (0, 1]"),
        ("ohem", ["--top-k", "0"], "k must be a positive"),
        ("ohem", ["--mean-lr-scales", "0"], "mean_lr_scales must be positive"),
        # PIL's "unknown file extension: " after the grid was drawn.
        ("occlusion_grid", ["--out", "runs/grid"], "needs an image file name, e.g. ending in .png"),
        ("occlusion_grid", ["--out", "grid.txt"], "needs an image file name"),
        # Nothing to train: these failed inside the trial, or (siamese) in the report.
        ("cbomf", ["--modes"], "give at least one mode with --modes"),
        ("ohem", ["--modes"], "give at least one mode with --modes"),
        ("negative_labels", ["--methods"], "give at least one method with --methods"),
        ("siamese", ["--schedules", "--no-pml-reference"], "nothing to train: give --schedules"),
        # Variants named by their value: one silently replaced the other.
        ("ohem", ["--fractions", "0.5", "0.5000001"], "give each of --fractions once"),
        ("ohem", ["--top-k", "8", "8"], "give each of --top-k once"),
        ("ohem", ["--mean-lr-scales", "2", "2.0"], "give each of --mean-lr-scales once"),
        ("synergy", ["--omegas", "0.5", "0.5"], "give each of --omegas once"),
    ],
)
def test_scripts_reject_bad_arguments(
    script: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(import_script(script).Args, argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_cbomf_script_reports_a_missing_dataset(tmp_path: Path) -> None:
    script = import_script("cbomf")
    args = parse_args(script.Args, ["--data-dir", str(tmp_path), "--out-dir", str(tmp_path)])
    with pytest.raises(DataFileError, match="missing dataset file"):
        script.run(args)


def test_cbomf_script_keeps_the_finished_seeds_on_sigterm(
    mnist_root: Path, tmp_path: Path, interrupt_script
) -> None:
    results = tmp_path / "mnist" / "results.csv"
    options = "--cbomf.epochs 1 --cbomf.second-epochs 1 --train-subset 64 --test-subset 16"
    options += " --no-progress"
    done = interrupt_script(
        "supervised.cli.cbomf",
        *f"{options} --threads 1 --no-save-checkpoints --seeds".split(),
        *map(str, range(50)),
        *("--data-dir", str(mnist_root), "--out-dir", str(tmp_path)),
        ready=results.exists,
        signals=[signal.SIGTERM],
    )
    assert done.returncode == 143 and "Traceback" not in done.stderr, done.stderr
    rows = csv_rows(results)
    modes = 8 * 10  # 8 modes x (full, 4 cuts, 5 corners)
    assert rows and len(rows) % modes == 0 and len(rows) < 50 * modes
    finished = len(rows) // modes
    assert f"stopped by SIGTERM: kept the {finished} finished trials of 50" in done.stderr


def test_occlusion_grid_script(mnist_root: Path, tmp_path: Path) -> None:
    png = tmp_path / "grid.png"
    done = run_script(
        "supervised.cli.occlusion_grid", mnist_root, "--examples 2 --scale 1", "--out", str(png)
    )
    assert done.returncode == 0, done.stderr
    assert Image.open(png).size == (14 * 36 + 4, 14 + 2 * 36 + 4)


def test_bench_script_smoke(mnist_root: Path, tmp_path: Path) -> None:
    table = tmp_path / "bench.md"
    options = "--steps 2 --warmup-steps 1 --repeats 1 --devices cpu --threads 1 --stack-sizes 2"
    done = run_script("bench_supervised.py", mnist_root, options, "--out", str(table))
    assert done.returncode == 0, done.stderr
    text = table.read_text()
    assert "per-sample Dataset + DataLoader" in text and text.count("tensor pipeline") == 2
    assert "head on cached features" in text
    assert "2 models stacked" in text and "2 heads stacked" in text


def test_synergy_and_robustness_scripts_smoke(mnist_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "synergy"
    options = "--seeds 0 1 --epochs 1 --second-epochs 1 --train-subset 128 --test-subset 48"
    options += " --corner-fractions 0.3 --rescued-examples 3 --no-progress --threads 1"
    rows, stdout = run_mnist_study("synergy", mnist_root, options, out)
    models = {
        "normal", "negative", "NR", "synergy", "synergy-w0.5", "synergy-w2", "synergy-product",
        "synergy-max", "synergyF", "trained-synergy", "hot-start-synergy",
    }  # fmt: skip
    assert {row["model"] for row in rows} == models
    assert len(rows) == 2 * len(models) * 6  # seeds x models x (full, 4 cuts, corner30)
    cases = csv_rows(out / "mnist" / "cases.csv")
    assert len(cases) == 2 * 6
    for row in cases:
        parts = sum(int(row[key]) for key in ("both", "only_normal", "only_negative", "neither"))
        assert parts == int(row["total"]) == 48
    report = (out / "mnist" / "results.md").read_text()
    assert "| synergyF |" in report and "Case analysis" in report and "Wall time" in report
    assert list((out / "mnist" / "seed1" / "trained-synergy").glob("events.out.tfevents.*"))
    assert "cases full:" in stdout

    robust = tmp_path / "robustness"
    options = "--seeds 0 1 --test-subset 48 --suite-subset 16 --eps-values 0 0.1 0.3"
    options += " --models normal NR synergy --suite-models normal synergy --no-progress --threads 1"
    done = run_script(
        "supervised.cli.robustness",
        mnist_root,
        options,
        "--models-dir",
        str(out / "mnist"),
        "--out-dir",
        str(robust),
    )
    assert done.returncode == 0, done.stderr
    result = robust / "mnist"
    transfer = csv_rows(result / "transfer.csv")
    assert len(transfer) == 2 * 3 * 3
    suite = csv_rows(result / "suite.csv")
    assert len(suite) == 2 * 8 * 2 and {row["attack"] for row in suite} == {
        "FGSM", "PGD", "BIM", "CW", "RFGSM", "FFGSM", "TPGD", "MIFGSM",
    }  # fmt: skip
    sweep = csv_rows(result / "fgsm.csv")
    clean = {
        row["model"]: float(row["accuracy"])
        for row in rows
        if row["seed"] == "0" and row["test_set"] == "full"
    }
    unattacked = {
        row["model"]: float(row["accuracy"])
        for row in sweep
        if row["seed"] == "0" and float(row["eps"]) == 0.0
    }
    assert unattacked == {name: clean[name] for name in ("normal", "NR", "synergy")}
    text = (result / "results.md").read_text()
    assert (
        "PGD transfer matrix" in text
        and "max-ensemble" in text
        and "Compared with the source" in text
    )
    assert Image.open(result / "fgsm.png").size[0] > 100
    assert list((result / "seed1").glob("events.out.tfevents.*"))


def test_robustness_script_needs_synergy_models_and_cifar_gets_its_defaults(
    tmp_path: Path,
) -> None:
    synergy, robustness = import_script("synergy"), import_script("robustness")
    args = parse_args(robustness.Args, ["--models-dir", str(tmp_path), "--out-dir", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="run negdl-synergy"):
        robustness.run(args)
    cifar = parse_args(synergy.Args, ["--dataset", "cifar10", "--arch", "resnet18"])
    assert (cifar.lr, cifar.momentum, cifar.batch_size) == (0.001, 0.9, 4)


def test_robustness_script_with_two_models_and_no_attack_suite(
    mnist_root: Path, tmp_path: Path
) -> None:
    # Two models (the least it takes) leave each donor's ensemble one member, which crashed the
    # trial, and an empty suite crashed the report ("no rows to write").
    robustness = import_script("robustness")
    for seed, name in ((3, "normal"), (3, "negative"), (7, "normal"), (7, "negative")):
        metadata = {**model_metadata(mnist_net(), "mnist", 10, "relu"), "dataset": "mnist"}
        save_checkpoint(
            tmp_path / "models" / f"seed{seed}" / name / "model.pt", mnist_net(), None, metadata
        )
    out = tmp_path / "out"
    argv = "--models normal negative --suite-models normal --suite-attacks --seeds 3 7"
    argv += " --test-subset 16 --eps-values 0.1 --pgd-steps 1 --no-progress --threads 1"
    extra = ["--models-dir", str(tmp_path / "models"), "--data-dir", str(mnist_root)]
    args = parse_args(robustness.Args, [*argv.split(), *extra, "--out-dir", str(out)])
    (out / "mnist").mkdir(parents=True)
    (out / "mnist" / "suite.csv").write_text("from an earlier run\n")
    robustness.run(args)
    assert len(csv_rows(out / "mnist" / "transfer.csv")) == 2 * 2 * 2
    assert (
        not (out / "mnist" / "suite.csv").exists()
        and not (out / "mnist" / "ensembles.csv").exists()
    )
    text = (out / "mnist" / "results.md").read_text()
    assert (
        "needs at least three --models" in text
        and "--suite-attacks or --suite-models is empty" in text
    )
    with pytest.raises(ValueError, match="give each of --models once"):
        robustness.Args(models=("normal", "normal", "NR"), suite_models=("normal",))


def test_robustness_script_refuses_cbomf_checkpoints_before_any_trial(tmp_path: Path) -> None:
    # negdl-cbomf's checkpoints do not name their architecture: each trial failed on its own.
    robustness = import_script("robustness")
    for name in ("SN", "NR"):
        metadata = {"mode": name, "seed": 0, "dataset": "mnist"}
        save_checkpoint(
            tmp_path / "cbomf" / "seed0" / name / "model.pt", mnist_net(), None, metadata
        )
    argv = ["--models", "SN", "NR", "--suite-models", "SN", "--models-dir", str(tmp_path / "cbomf")]
    args = parse_args(robustness.Args, [*argv, "--out-dir", str(tmp_path / "out")])
    with pytest.raises(
        ValueError, match=r"SN/model.pt: checkpoint metadata lacks .* negdl-synergy"
    ):
        robustness.run(args)
    assert not (tmp_path / "out").exists()


def test_robustness_report_compares_only_mnist_models_with_the_source(tmp_path: Path) -> None:
    # The source's FGSM numbers are MNIST's: CIFAR-10 models were set beside them too, under a
    # plot titled "on MNIST".
    robustness = import_script("robustness")
    fgsm = [{"seed": 0, "model": model, "eps": 0.1, "accuracy": 50.0} for model in ("normal", "NR")]
    transfer = [{"seed": 0, "donor": "normal", "target": "NR", "accuracy": 40.0}]
    timings = [{"seed": 0, "task": "FGSM sweep", "model": "normal", "images": 8, "seconds": 1.0}]
    tables = {"fgsm": fgsm, "transfer": transfer, "suite": [], "ensembles": [], "timings": timings}
    args = robustness.Args(models=("normal", "NR"), suite_models=("normal",))
    for dataset, compared in (("cifar10", False), ("mnist", True)):
        out = tmp_path / dataset
        robustness.write_report(args, Report(tables, out, torch.device("cpu"), 1), dataset)
        text = (out / "results.md").read_text()
        assert ("Compared with the source (MNIST FGSM" in text) == compared
        assert "| normal | 0.1 | 77.34 | 50.00 |" in text or not compared


def test_synergy_script_on_cifar_files(synthetic, tmp_path: Path) -> None:
    root = tmp_path / "data"
    synthetic.write_cifar_archive(root, per_batch=8)
    script = import_script("synergy")
    argv = "--dataset cifar10 --epochs 1 --second-epochs 1 --omegas 2"
    argv += " --corner-fractions 0.3 --no-progress --threads 1"
    args = parse_args(
        script.Args, [*argv.split(), "--data-dir", str(root), "--out-dir", str(tmp_path / "out")]
    )
    assert args.arch == "lenet" and args.batch_size == 4
    script.run(args)
    rows = csv_rows(tmp_path / "out" / "cifar10" / "results.csv")
    assert {row["test_set"] for row in rows} == {"full", "SSK", "SSKR", "MSK", "MSKR", "corner30"}
    assert {row["arch"] for row in rows} == {"lenet"}
    report = (tmp_path / "out" / "cifar10" / "results.md").read_text()
    assert "Compared with the source (CIFAR-10 LeNet)" in report and "| full | synergy |" in report


def test_gpu_check_script_runs_its_device_independent_checks(
    mnist_root: Path, tmp_path: Path
) -> None:
    report = tmp_path / "gpu_check.md"
    options = "--device cpu --train-images 130 --rate-steps 1 --threads 1 --cbomf-modes SN NR"
    done = run_script("gpu_check.py", mnist_root, options, "--out", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    text = report.read_text()
    assert "SKIP captured-step checks" in text and "0 check(s) failed" in text
    assert text.count("- PASS") == 2 and "| MNIST net, batch 64 | fp32 eager (off) |" in text


def option_names(cls: type, prefix: str = "--") -> list[str]:
    """The command-line options of a dataclass, a nested dataclass's as ``--<field>.<option>``
    (or ``--<option>`` when marked ``tyro.conf.OmitArgPrefixes``)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    names = []
    for item in dataclasses.fields(cls):
        name = prefix + item.name.replace("_", "-")
        hint, marks = hints[item.name], ()
        if typing.get_origin(hint) is typing.Annotated:
            hint, *marks = typing.get_args(hint)
        if dataclasses.is_dataclass(hint):
            names += option_names(
                hint, prefix if tyro.conf.OmitArgPrefixes in marks else f"{name}."
            )
        else:
            names.append(name)
    return names


@pytest.mark.parametrize(
    "name",
    [
        "cbomf",
        "synergy",
        "robustness",
        "siamese",
        "negative_aware",
        "negative_labels",
        "ohem",
        "occlusion_grid",
        "gpu_check",
        "bench_supervised",
    ],
)
def test_script_help_lists_each_option_once_with_its_default(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    script = import_script(name)
    with pytest.raises(SystemExit) as exit_info:
        parse_args(script.Args, ["--help"])
    assert exit_info.value.code == 0
    # An option's block runs from its name at the start of a row (after the box's border, when
    # drawn) to the next option's name.
    blocks = re.split(r"^\W{0,2}(?=--[a-z])", capsys.readouterr().out, flags=re.MULTILINE)[1:]
    heads = [re.match(r"--[\w.-]+", block).group() for block in blocks]
    assert sorted(heads) == sorted(option_names(script.Args))  # each once, none lost
    settings = [head.rsplit(".", 1)[-1].removeprefix("--") for head in heads]
    assert len(set(settings)) == len(settings), "a setting is declared twice (e.g. --epochs too)"
    for head, block in zip(heads, blocks, strict=True):
        assert "(default:" in block or "(fixed to:" in block, f"{head} shows no default"
