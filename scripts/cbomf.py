"""Reproduce CBOMF: train every mode from the same seeds, test on full and partial inputs.

Writes ``results.csv`` (one row per mode, seed and test set), ``results.md`` (mean ± std over
seeds, plus the source's MNIST numbers for comparison) and TensorBoard runs under
``<out_dir>/<dataset>/seed<k>/<mode>``. Trained one seed after another (the default on the
CPU), results are rewritten after every seed; with ``--stacked`` (the default on CUDA) all
seeds of each phase train in one stacked step. Ctrl-C (or SIGTERM) stops the training in
progress, keeps the rows of the finished seeds and exits with status 130 (143); a second
Ctrl-C aborts at once.

    python scripts/cbomf.py --seeds 0 1 2 --download     # MNIST into ~/.cache/negdl/data
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter

from negdl.checks import check_int
from negdl.cli import check_out_dir, run_main
from negdl.interrupt import StopOnSignal
from negdl.results import (
    comparison_table,
    machine_description,
    markdown_table,
    write_csv,
    write_text_atomic,
)
from supervised.cbomf import (
    MODES,
    CBOMFConfig,
    TrainedMode,
    evaluate_modes,
    evaluate_modes_stacked,
    train_modes,
    train_modes_stacked,
)
from supervised.checkpoints import save_checkpoint
from supervised.data import EMNIST_CLASSES, DataOptions
from supervised.models import make_activation, mnist_net
from supervised.occlusions import corner_occlusions, mnist_cuts, partial_test_sets
from supervised.runtime import seed_everything, select_device

# The source's MNIST accuracies (%), as quoted in the project brief, section 3.
SOURCE_MNIST = {
    "full": {"SN": 99.13, "ONN": 98.90, "HN": 99.18, "NR": 99.21, "ALT": 99.05, "TP": 96.79},
    "horizontal": {"SN": 44.71, "ONN": 48.96, "HN": 52.33, "NR": 56.07, "ALT": 41.60},
    "vertical": {"SN": 57.46, "ONN": 64.64, "HN": 60.45, "NR": 66.07, "ALT": 69.66},
    "diagonal": {"SN": 52.97, "ONN": 59.59, "HN": 55.40, "NR": 56.01, "ALT": 62.49},
    "triple": {"SN": 40.68, "ONN": 34.62, "HN": 41.19, "NR": 41.73, "ALT": 46.40},
    "corner50": {"SN": 36.55, "NR": 49.35},
}


@dataclass
class Args(DataOptions):
    """Train CBOMF modes and evaluate them on full and occluded test sets."""

    dataset: str = "mnist"
    """mnist, or emnist-<split> with split balanced, mnist, digits or letters"""
    modes: tuple[str, ...] = tuple(MODES)
    """training modes to run (SN ONN HN NR ALT TP HN-K NR-K)"""
    seeds: tuple[int, ...] = (0,)
    """seeds; each mode is trained once per seed"""
    epochs: int = 10
    """epochs of the first (or only) phase"""
    second_epochs: int = 10
    """epochs of the second phase of two-phase modes"""
    lr: float = 0.01
    """SGD learning rate"""
    momentum: float = 0.5
    """SGD momentum"""
    batch_size: int = 64
    """training batch size"""
    activation: str = "relu"
    """activation of the conv blocks (relu, sigmoid, tanh, relu6, leaky_relu); the negation matches it"""
    corner_fractions: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)
    """image fractions of the corner-occlusion test sets"""
    train_subset: int = 0
    """use only the first N training images (0: all); for smoke runs"""
    test_subset: int = 0
    """use only the first N test images (0: all); for smoke runs"""
    cache_features: bool = True
    """train frozen-extractor phases on cached features (same result, faster)"""
    device: str | None = None
    """cpu or cuda; when not given, cuda when available"""
    out_dir: str = "runs/cbomf"
    """where results and TensorBoard runs go"""
    progress: bool = True
    """show progress bars"""
    save_checkpoints: bool = True
    """save each trained model as <out_dir>/<dataset>/seed<k>/<mode>/model.pt"""
    threads: int = 0
    """torch CPU threads (0: torch's default); 1 avoids thrashing on a busy machine"""
    stacked: bool | None = None
    """train all seeds of a phase in one stacked step (same results up to rounding); when not given, on CUDA, where it is faster, and off on the CPU, where separate runs measured faster"""

    def __post_init__(self) -> None:
        unknown = [mode for mode in self.modes if mode not in MODES]
        if unknown:
            raise ValueError(f"unknown CBOMF mode(s) {unknown}; choose from {list(MODES)}")
        if self.dataset != "mnist" and self.dataset.removeprefix("emnist-") not in EMNIST_CLASSES:
            raise ValueError(
                f"unknown dataset {self.dataset!r}; use mnist or emnist-<{'|'.join(EMNIST_CLASSES)}>"
            )
        if not self.seeds or min(self.train_subset, self.test_subset, self.threads) < 0:
            raise ValueError("need at least one seed, and subsets and threads >= 0")
        if len(set(self.seeds)) != len(self.seeds) or len(set(self.modes)) != len(self.modes):
            raise ValueError(
                f"give each seed and mode once, got seeds {self.seeds}, modes {self.modes}"
            )
        for seed in self.seeds:
            check_int("seed", seed, 0)
        self.config()  # validates the hyperparameters
        make_activation(self.activation)
        corner_occlusions(self.corner_fractions)
        select_device(self.device)
        super().__post_init__()  # --data-dir, --download
        check_out_dir("--out-dir", self.out_dir)

    def config(self) -> CBOMFConfig:
        """The training hyperparameters."""
        return CBOMFConfig(
            self.lr,
            self.momentum,
            self.batch_size,
            self.epochs,
            self.second_epochs,
            self.cache_features,
        )


def main(args: Args) -> None:
    start = time.perf_counter()
    device = select_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = args.config()
    train, test = args.load(args.dataset, train=True), args.load(args.dataset, train=False)
    if args.train_subset:
        train = train.subset(slice(0, args.train_subset))
    if args.test_subset:
        test = test.subset(slice(0, args.test_subset))
    train = train.to(device)
    test_sets = {
        name: data.to(device)
        for name, data in partial_test_sets(
            test, {**mnist_cuts(), **corner_occlusions(args.corner_fractions)}
        ).items()
    }
    out_dir = Path(args.out_dir) / args.dataset
    rows: list[dict] = []
    writers: dict[tuple[int, str], SummaryWriter] = {}

    def writer_for(seed: int, mode: str) -> SummaryWriter:
        if (seed, mode) not in writers:
            writers[seed, mode] = SummaryWriter(str(out_dir / f"seed{seed}" / mode))
        return writers[seed, mode]

    def factory():
        return mnist_net(train.num_classes, args.activation)

    stacked = args.stacked if args.stacked is not None else device.type == "cuda"
    with StopOnSignal("cbomf.py") as stop:
        if stacked:
            seed_everything(args.seeds[0])
            with stop.raising():  # training has no safe point: a stop drops every seed's training
                trained = train_modes_stacked(
                    args.modes,
                    factory,
                    train,
                    config,
                    args.seeds,
                    device,
                    writer_for,
                    args.progress,
                )
            accuracies = evaluate_modes_stacked(trained, test_sets, device, writer_for)
            for seed in args.seeds:
                rows += record_seed(args, seed, trained[seed], accuracies[seed], out_dir)
        else:
            for seed in args.seeds:
                seed_everything(seed)

                def seed_writer(mode: str, seed: int = seed) -> SummaryWriter:
                    return writer_for(seed, mode)

                with stop.raising():  # a stop drops this seed's training, keeps the finished seeds
                    trained_seed = train_modes(
                        args.modes, factory, train, config, seed, device, seed_writer, args.progress
                    )
                accuracies_seed = evaluate_modes(trained_seed, test_sets, device, seed_writer)
                rows += record_seed(args, seed, trained_seed, accuracies_seed, out_dir)
                for key in [key for key in writers if key[0] == seed]:
                    writers.pop(key).close()
                write_report(args, rows, out_dir, time.perf_counter() - start, device, stacked)
                stop.check()
    for writer in writers.values():
        writer.close()
    if stop.requested:
        stop.exit(
            f"kept {len(rows)} rows of the finished seeds in {out_dir / 'results.csv'} and "
            "results.md; training still in progress was dropped"
            if rows
            else "no seed had finished, nothing was written"
        )
    write_report(args, rows, out_dir, time.perf_counter() - start, device, stacked)
    print(f"results in {out_dir}/results.md ({time.perf_counter() - start:.0f} s)")


def record_seed(
    args: Args,
    seed: int,
    trained: dict[str, TrainedMode],
    accuracies: dict[str, dict[str, float]],
    out_dir: Path,
) -> list[dict]:
    """Print one seed's accuracies, save its checkpoints and return its result rows."""
    rows = []
    for mode, by_set in accuracies.items():
        rows += [
            {
                "dataset": args.dataset,
                "mode": mode,
                "seed": seed,
                "test_set": name,
                "accuracy": round(value, 2),
            }
            for name, value in by_set.items()
        ]
        print(
            f"seed {seed} {mode}: "
            + ", ".join(f"{name} {value:.2f}" for name, value in by_set.items()),
            flush=True,
        )
        if args.save_checkpoints:
            metadata = {
                "mode": mode,
                "seed": seed,
                "dataset": args.dataset,
                "activation": args.activation,
                "accuracy": by_set,
            }
            save_checkpoint(
                out_dir / f"seed{seed}" / mode / "model.pt", trained[mode].model, metadata=metadata
            )
    return rows


def write_report(
    args: Args, rows: list[dict], out_dir: Path, seconds: float, device, stacked: bool
) -> None:
    """Rewrite results.csv and results.md from every row so far."""
    write_csv(rows, out_dir / "results.csv")
    seeds = sorted({row["seed"] for row in rows})
    text = [
        f"# CBOMF on {args.dataset}: accuracy (%), mean ± std over seeds {seeds}",
        "",
        f"Epochs {args.epochs} + {args.second_epochs}, SGD lr {args.lr} momentum {args.momentum}, batch {args.batch_size}, "
        f"activation {args.activation}, {args.train_subset or 'all'} training images, {args.test_subset or 'all'} test images.",
        f"Machine: {machine_description(device)}. Wall time: {seconds / 60:.1f} min, "
        f"{'all seeds stacked' if stacked else 'one seed after another'}.",
        "",
        markdown_table(rows, "test_set", "mode", "accuracy"),
    ]
    if args.dataset == "mnist":
        text += [
            "",
            "## Compared with the source (MNIST)",
            "",
            comparison_table(rows, SOURCE_MNIST, "test_set", "mode"),
        ]
    write_text_atomic(out_dir / "results.md", "\n".join(text) + "\n")


if __name__ == "__main__":
    run_main("cbomf.py", Args, main)
