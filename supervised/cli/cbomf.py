"""Reproduce CBOMF: train every mode from the same seeds, test on full and partial inputs.

A trial trains every mode from its seed (the modes share their first phase) and evaluates them;
``results.md`` adds the source's MNIST numbers, and each seed's folder
``<out_dir>/<dataset>/seed<k>/`` holds a checkpoint per mode. With ``--stacked`` (the default on
CUDA) all seeds are one trial whose every phase trains them in one stacked step
(``<out_dir>/<dataset>/stacked_seeds0-1-2/seed<k>/``).

    negdl-cbomf --seeds 0 1 2 --download     # MNIST into ~/.cache/negdl/data
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from negdl.cli import run_main
from negdl.results import comparison_table, markdown_table
from negdl.sweeps import Grid, Sweep
from negdl.trials import Trial
from negdl.writers import TensorBoardWriters
from supervised.cbomf import MODES, CBOMFConfig, evaluate_modes, train_modes
from supervised.checkpoints import save_checkpoint
from supervised.cli.common import Report, TrainRunOptions, accuracy_rows, check_known, section
from supervised.context import RunContext
from supervised.data import EMNIST_CLASSES, LabelledImages
from supervised.models import make_activation, mnist_net
from supervised.occlusions import corner_occlusions, mnist_cuts, partial_test_sets
from supervised.runtime import seed_everything

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
    save_checkpoints: bool = True
    """save each trained model as <out_dir>/<dataset>/seed<k>/<mode>/model.pt"""
    stacked: bool | None = None
    """train all seeds as one trial, each phase in one stacked step (same results up to rounding); when not given, on CUDA, where it is faster, and off on the CPU, where separate runs measured faster"""

    def __post_init__(self) -> None:
        if not self.modes:
            raise ValueError("give at least one mode with --modes")
        check_known("CBOMF mode", self.modes, MODES)
        if self.dataset != "mnist" and self.dataset.removeprefix("emnist-") not in EMNIST_CLASSES:
            raise ValueError(
                f"unknown dataset {self.dataset!r}; use mnist or emnist-<{'|'.join(EMNIST_CLASSES)}>"
            )
        if len(set(self.modes)) != len(self.modes):
            raise ValueError(f"give each mode once, got {self.modes}")
        make_activation(self.activation)
        corner_occlusions(self.corner_fractions)
        super().__post_init__()  # --data-dir, --download, the sweep's options

    def trains_stacked(self, device: torch.device) -> bool:
        """``--stacked``, or when not given, whether ``device`` is CUDA."""
        return self.stacked if self.stacked is not None else device.type == "cuda"


def load_data(args: Args, device: torch.device) -> tuple[LabelledImages, dict]:
    """The training split and the named test sets on ``device``."""
    train, test = args.splits(args.dataset)
    occlusions = {**mnist_cuts(), **corner_occlusions(args.corner_fractions)}
    return train.to(device), partial_test_sets(test, occlusions, device=device)


def run_trial(args: Args, trial: Trial) -> dict[str, list[dict]]:
    """One trial: every mode trained from its seed, or from all seeds at once (``--stacked``, each
    phase one stacked step), and evaluated on every test set."""
    device, (train, test_sets) = args.loaded(load_data)
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
        for mode, by_set in accuracies[seed].items():
            label = f"seed {seed} {mode}"
            rows += accuracy_rows(label, by_set, dataset=args.dataset, mode=mode, seed=seed)
            if args.save_checkpoints:
                metadata = {"mode": mode, "seed": seed, "dataset": args.dataset}
                metadata |= {"activation": args.activation, "accuracy": by_set}
                path = seed_dirs[seed] / mode / "model.pt"
                save_checkpoint(path, trained[seed][mode].model, metadata=metadata)
    return {"results": rows}


def run(args: Args) -> None:
    def sweep(device: torch.device) -> Sweep:
        trial, out_dir = functools.partial(run_trial, args), Path(args.out_dir, args.dataset)
        ignore = ("stacked", "save_checkpoints")
        if not args.trains_stacked(device):
            return args.seed_sweep(trial, args.seeds, out_dir, ignore)
        settings = args.sweep_settings("seeds", ignore=ignore)
        grid = Grid(seeds=(tuple(args.seeds),))
        return Sweep(trial, grid, out_dir, name="stacked_seeds{seeds}", settings=settings)

    args.run_study("negdl-cbomf", load_data, write_report, sweep)


def write_report(args: Args, report: Report) -> None:
    config, rows = args.cbomf, report.rows
    stacked = args.trains_stacked(report.device)
    text = report.head(
        f"CBOMF on {args.dataset}: accuracy (%)",
        f"Epochs {config.epochs} + {config.second_epochs}, SGD lr {config.lr} momentum "
        f"{config.momentum}, batch {config.batch_size}, activation {args.activation}, "
        f"{args.subsets()}.",
        f", {'all seeds stacked' if stacked else 'one trial per seed'}",
    )
    text += ["", markdown_table(rows, "test_set", "mode", "accuracy")]
    if args.dataset == "mnist":
        comparison = comparison_table(rows, SOURCE_MNIST, "test_set", "mode")
        text += section("Compared with the source (MNIST)", comparison)
    report.write(text)


main = functools.partial(run_main, "negdl-cbomf", Args, run)


if __name__ == "__main__":
    main()
