"""Reproduce CBOMF: train every mode from the same seeds, test on full and partial inputs.

A sweep with one trial per seed (``negdl.sweeps``): a trial trains every mode from its seed
(the modes share their first phase) and evaluates them. Writes ``results.csv`` (one row per
mode, seed and test set) and ``results.md`` (mean ± std over seeds, plus the source's MNIST
numbers for comparison), rewritten after every finished seed, and per seed
``<out_dir>/<dataset>/seed<k>/``: TensorBoard runs and checkpoints per mode, the seed's rows,
its log and its record. Trials run one after another by default, ``--workers N`` at once in
local processes, or as Ray tasks with ``--backend ray``. With ``--stacked`` (the default on
CUDA) all seeds are one trial whose every phase trains them in one stacked step
(``<out_dir>/<dataset>/stacked_seeds0-1-2/seed<k>/``). Running the command again skips the
seeds that finished; Ctrl-C (or SIGTERM) drops the seeds in flight, keeps the finished ones and
exits with status 130 (143); a second Ctrl-C aborts at once.

    negdl-cbomf --seeds 0 1 2 --download     # MNIST into ~/.cache/negdl/data
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from negdl.cli import run_main
from negdl.results import (
    comparison_table,
    machine_description,
    markdown_table,
)
from negdl.sweeps import Grid, Sweep
from negdl.trials import Trial, cached_per_process
from negdl.writers import TensorBoardWriters
from supervised.cbomf import (
    MODES,
    CBOMFConfig,
    TrainedMode,
    evaluate_modes,
    train_modes,
)
from supervised.checkpoints import save_checkpoint
from supervised.cli.common import TrainRunOptions, accuracy_rows, seeds_of, write_results
from supervised.context import RunContext
from supervised.data import EMNIST_CLASSES
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
class Args(TrainRunOptions):
    """Train CBOMF modes and evaluate them on full and occluded test sets."""

    dataset: str = "mnist"
    """mnist, or emnist-<split> with split balanced, mnist, digits or letters"""
    modes: tuple[str, ...] = tuple(MODES)
    """training modes to run (SN ONN HN NR ALT TP HN-K NR-K)"""
    cbomf: CBOMFConfig = CBOMFConfig()
    """training hyperparameters (SGD, epochs of each phase, feature caching)"""
    activation: str = "relu"
    """activation of the conv blocks (relu, sigmoid, tanh, relu6, leaky_relu); the negation matches it"""
    corner_fractions: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)
    """image fractions of the corner-occlusion test sets"""
    out_dir: str = "runs/cbomf"
    """where results and TensorBoard runs go"""
    save_checkpoints: bool = True
    """save each trained model as <out_dir>/<dataset>/seed<k>/<mode>/model.pt"""
    stacked: bool | None = None
    """train all seeds as one trial, each phase in one stacked step (same results up to rounding); when not given, on CUDA, where it is faster, and off on the CPU, where separate runs measured faster"""

    def __post_init__(self) -> None:
        unknown = [mode for mode in self.modes if mode not in MODES]
        if unknown:
            raise ValueError(f"unknown CBOMF mode(s) {unknown}; choose from {list(MODES)}")
        if self.dataset != "mnist" and self.dataset.removeprefix("emnist-") not in EMNIST_CLASSES:
            raise ValueError(
                f"unknown dataset {self.dataset!r}; use mnist or emnist-<{'|'.join(EMNIST_CLASSES)}>"
            )
        if len(set(self.modes)) != len(self.modes):
            raise ValueError(f"give each mode once, got {self.modes}")
        make_activation(self.activation)
        corner_occlusions(self.corner_fractions)
        super().__post_init__()  # --data-dir, --download, the sweep's options


def load_data(args: Args):
    """The device, the training split and the named test sets, loaded once per process."""

    def load():
        device = select_device(args.device)
        train, test = args.load_splits(args.dataset, args.train_subset, args.test_subset)
        occlusions = {**mnist_cuts(), **corner_occlusions(args.corner_fractions)}
        test_sets = partial_test_sets(test, occlusions, device=device)
        return device, train.to(device), test_sets

    return cached_per_process(("cbomf data", repr(args)), load)


def run_trial(args: Args, trial: Trial) -> dict[str, list[dict]]:
    """One trial: every mode trained from its seed, or from all seeds at once (``--stacked``, each
    phase one stacked step), and evaluated on every test set."""
    args.use_threads()
    device, train, test_sets = load_data(args)
    stacked = "seeds" in trial.params
    seeds = tuple(trial.params["seeds"]) if stacked else (trial.params["seed"],)
    seed_dirs = {seed: trial.dir / f"seed{seed}" if stacked else trial.dir for seed in seeds}
    seed_everything(seeds[0])
    writers = {seed: TensorBoardWriters(seed_dir) for seed, seed_dir in seed_dirs.items()}

    def writer_for(seed: int, mode: str):
        return writers[seed](mode)

    context = RunContext(device, progress=args.progress)
    try:
        model_factory = functools.partial(mnist_net, train.num_classes, args.activation)
        trained = train_modes(
            args.modes, model_factory, train, args.cbomf, seeds, context, writer_for
        )
        accuracies = evaluate_modes(trained, test_sets, context, writer_for)
    finally:
        for writer in writers.values():
            writer.close()
    rows = []
    for seed in seeds:
        rows += record_seed(args, seed, trained[seed], accuracies[seed], seed_dirs[seed])
    return {"results": rows}


def run(args: Args) -> None:
    start = time.perf_counter()
    args.use_threads()
    device, _, _ = load_data(args)  # any data error, or the download, before the first trial
    stacked = args.stacked if args.stacked is not None else device.type == "cuda"
    out_dir = Path(args.out_dir) / args.dataset
    ignore = ("stacked", "save_checkpoints")
    if stacked:
        sweep = Sweep(
            functools.partial(run_trial, args),
            Grid(seeds=(tuple(args.seeds),)),
            out_dir,
            name="stacked_seeds{seeds}",
            settings=args.sweep_settings("seeds", ignore=ignore),
        )
    else:
        sweep = args.seed_sweep(functools.partial(run_trial, args), args.seeds, out_dir, ignore)
    report = functools.partial(write_report, stacked=stacked)
    args.report_sweep("negdl-cbomf", sweep, report, device, start)


def record_seed(
    args: Args,
    seed: int,
    trained: dict[str, TrainedMode],
    accuracies: dict[str, dict[str, float]],
    seed_dir: Path,
) -> list[dict]:
    """Print one seed's accuracies, save its checkpoints into ``seed_dir/<mode>`` and return
    its result rows."""
    rows = []
    for mode, by_set in accuracies.items():
        rows += accuracy_rows(
            f"seed {seed} {mode}", by_set, dataset=args.dataset, mode=mode, seed=seed
        )
        if args.save_checkpoints:
            metadata = {
                "mode": mode,
                "seed": seed,
                "dataset": args.dataset,
                "activation": args.activation,
                "accuracy": by_set,
            }
            save_checkpoint(seed_dir / mode / "model.pt", trained[mode].model, metadata=metadata)
    return rows


def write_report(
    args: Args,
    rows: list[dict],
    out_dir: Path,
    seconds: float,
    device,
    summary: str = "",
    stacked: bool = False,
) -> None:
    """Rewrite results.csv and results.md from every row so far (``summary``: the sweep's
    summary sentence; ``stacked``: all seeds trained as one trial)."""
    config = args.cbomf
    text = [
        f"# CBOMF on {args.dataset}: accuracy (%), mean ± std over seeds {seeds_of(rows)}",
        "",
        f"Epochs {config.epochs} + {config.second_epochs}, SGD lr {config.lr} momentum {config.momentum}, batch {config.batch_size}, "
        f"activation {args.activation}, {args.train_subset or 'all'} training images, {args.test_subset or 'all'} test images.",
        f"Machine: {machine_description(device)}. Wall time: {seconds / 60:.1f} min, "
        f"{'all seeds stacked' if stacked else 'one trial per seed'}. {summary}",
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
    write_results(out_dir, text, results=rows)


def main(argv: Sequence[str] | None = None) -> None:
    run_main("negdl-cbomf", Args, run, argv)


if __name__ == "__main__":
    main()
