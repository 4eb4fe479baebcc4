"""The supervised scripts run end to end in smoke configurations on synthetic MNIST files."""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from negdl.cli import parse_args
from supervised.checkpoints import load_checkpoint
from supervised.data import DataFileError
from supervised.models import mnist_net

REPO = Path(__file__).resolve().parents[2]


def run_script(
    name: str, data_dir: Path, options: str, *paths: str
) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/<name>`` on ``data_dir`` with space-separated ``options`` plus path arguments."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / name),
            "--data-dir",
            str(data_dir),
            *options.split(),
            *paths,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cbomf_script_smoke(mnist_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    options = "--seeds 0 1 --epochs 1 --second-epochs 1 --train-subset 128 --test-subset 32"
    options += " --corner-fractions 0.1 0.5 --no-progress --threads 1"
    done = run_script("cbomf.py", mnist_root, options, "--out-dir", str(out))
    assert done.returncode == 0, done.stderr
    with open(out / "mnist" / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
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
    options = "--seeds 0 1 --modes SN HN --epochs 1 --second-epochs 1 --train-subset 96"
    options += " --test-subset 32 --corner-fractions 0.5 --no-progress --threads 1 --stacked"
    done = run_script("cbomf.py", mnist_root, options, "--out-dir", str(out))
    assert done.returncode == 0, done.stderr
    with open(out / "mnist" / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 2 * 6 and {row["seed"] for row in rows} == {"0", "1"}
    assert "all seeds stacked" in (out / "mnist" / "results.md").read_text()
    assert list((out / "mnist" / "seed1" / "HN").glob("events.out.tfevents.*"))
    metadata = load_checkpoint(out / "mnist" / "seed1" / "HN" / "model.pt", mnist_net())
    assert metadata["mode"] == "HN" and metadata["seed"] == 1


def load_script(name: str):
    """Import a script as a module (cheaper than a subprocess for argument checks)."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def test_cbomf_script_rejects_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = load_script("cbomf")
    for argv, message in (
        (["--modes", "SN", "XX"], "unknown CBOMF mode(s) ['XX']"),
        (["--lr", "-1"], "need lr > 0"),
        (["--dataset", "emnist-foo"], "unknown dataset 'emnist-foo'"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            parse_args(script.Args, argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    args = parse_args(
        script.Args, ["--data-dir", str(tmp_path / "nothing"), "--out-dir", str(tmp_path)]
    )
    with pytest.raises(DataFileError, match="missing dataset file"):
        script.main(args)


def test_occlusion_grid_script(mnist_root: Path, tmp_path: Path) -> None:
    png = tmp_path / "grid.png"
    done = run_script("occlusion_grid.py", mnist_root, "--examples 2 --scale 1", "--out", str(png))
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
