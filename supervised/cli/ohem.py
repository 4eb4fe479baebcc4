"""Online hard example mining on CBOMF training: the mean loss vs back-propagating the hardest.

Trains the chosen CBOMF modes (SN by default) from the same seeds once per loss reducer (the
mean, and OHEM keeping a fraction or the top k of each batch's losses) and evaluates them on the
full and partial MNIST test sets (TensorBoard runs under ``<out_dir>/seed<k>/<reducer>/<mode>``).

    negdl-ohem --seeds 0 1 2
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import torch

from negdl.checks import check_distinct
from negdl.cli import run_main
from negdl.results import markdown_table
from negdl.trials import Trial
from negdl.writers import TensorBoardWriters
from supervised.cbomf import MODES, CBOMFConfig, evaluate_modes, train_modes
from supervised.cli.common import Report, TrainRunOptions, accuracy_rows, check_known, section
from supervised.context import RunContext
from supervised.data import LabelledImages
from supervised.models import mnist_net
from supervised.occlusions import corner_occlusions, mnist_cuts, partial_test_sets
from supervised.reducers import HardExampleMining
from supervised.runtime import seed_everything
from supervised.training import LossReducer, MeanReducer


@dataclass
class Args(TrainRunOptions):
    """Train CBOMF modes with the mean loss and with OHEM; compare on full and partial inputs."""

    modes: tuple[str, ...] = ("SN",)
    """CBOMF modes to train"""
    fractions: tuple[float, ...] = (0.5, 0.25)
    """OHEM variants keeping this share of each batch's losses, each in (0, 1]"""
    top_k: tuple[int, ...] = ()
    """OHEM variants keeping the k highest losses (every batch needs >= k samples)"""
    mean_lr_scales: tuple[float, ...] = ()
    """also train with the mean loss at --cbomf.lr times each scale: OHEM averages over fewer losses,
    so its steps are larger, and this separates that from the choice of examples"""
    out_dir: str = "runs/ohem"
    cbomf: CBOMFConfig = CBOMFConfig()
    """CBOMF's hyperparameters (SGD, epochs of each phase, feature caching); each variant replaces its reducer (and learning rate)"""

    def __post_init__(self) -> None:
        if not self.modes:
            raise ValueError("give at least one mode with --modes")
        check_known("CBOMF mode", self.modes, MODES)
        if any(scale <= 0 for scale in self.mean_lr_scales):
            raise ValueError(f"mean_lr_scales must be positive, got {self.mean_lr_scales}")
        check_distinct("mean_lr_scales", self.mean_lr_scales)
        check_distinct("fractions", self.fractions)
        check_distinct("top_k", self.top_k)
        self.variants()  # validates fractions and k
        super().__post_init__()  # --data-dir, --download

    def variants(self) -> dict[str, tuple[LossReducer, float]]:
        """The (reducer, learning rate) pairs to compare, by name."""
        variants: dict[str, tuple[LossReducer, float]] = {"mean": (MeanReducer(), self.cbomf.lr)}
        variants |= {
            f"mean, lr x{scale:g}": (MeanReducer(), self.cbomf.lr * scale)
            for scale in self.mean_lr_scales
        }
        variants |= {
            f"OHEM {f:g}": (HardExampleMining(fraction=f), self.cbomf.lr) for f in self.fractions
        }
        variants |= {f"OHEM top-{k}": (HardExampleMining(k=k), self.cbomf.lr) for k in self.top_k}
        return variants


def check_top_k(args: Args, samples: int) -> None:
    """Refuse a ``--top-k`` above the smallest batch of ``samples`` training images (the short
    last one) before any training: OHEM cannot keep k losses of fewer than k."""
    batch = args.cbomf.batch_size
    smallest = samples % batch or batch
    too_large = [k for k in args.top_k if k > smallest]
    if too_large:
        raise ValueError(
            f"--top-k {' '.join(map(str, too_large))} needs every batch to hold that many samples, but {samples} "
            f"training images in batches of {batch} leave a last batch of {smallest}; choose "
            f"k <= {smallest}, or a --train-subset or --cbomf.batch-size that divides evenly"
        )


def load_data(args: Args, device: torch.device) -> tuple[LabelledImages, dict]:
    """The training split and the named test sets on ``device`` (``--top-k`` checked against
    the training split's batches)."""
    train, test = args.splits("mnist")
    check_top_k(args, len(train))
    occlusions = {**mnist_cuts(), **corner_occlusions([0.5])}
    return train.to(device), partial_test_sets(test, occlusions, device=device)


def run_seed(args: Args, trial: Trial) -> dict[str, list[dict]]:
    """One trial: every mode trained from one seed with every loss reducer, and evaluated."""
    device, (train, test_sets) = args.loaded(load_data)
    seed = trial.params["seed"]
    seed_everything(seed)
    rows: list[dict] = []
    for reducer_name, (reducer, lr) in args.variants().items():
        config = replace(args.cbomf, lr=lr, reducer=reducer)
        run_name = reducer_name.replace(",", "").replace(" ", "_")
        with TensorBoardWriters(trial.dir / run_name) as writers:

            def writer_for(_seed: int, mode: str, writers: TensorBoardWriters = writers):
                return writers(mode)

            context = RunContext(device, progress=args.progress)
            factory = functools.partial(mnist_net, train.num_classes)
            trained = train_modes(args.modes, factory, train, config, (seed,), context, writer_for)
            evaluated = evaluate_modes(trained, test_sets, context, writer_for)
        for mode, accuracies in evaluated[seed].items():
            label = f"seed {seed} {reducer_name} {mode}"
            rows += accuracy_rows(label, accuracies, reducer=reducer_name, mode=mode, seed=seed)
    return {"results": rows}


def run(args: Args) -> None:
    args.run_seeds("negdl-ohem", run_seed, load_data, write_report)


def write_report(args: Args, report: Report) -> None:
    config = args.cbomf
    text = report.head(
        "OHEM on CBOMF (MNIST): accuracy (%)",
        f"Epochs {config.epochs} (+ {config.second_epochs} in two-phase modes), SGD lr "
        f"{config.lr} momentum {config.momentum}, batch {config.batch_size}; {args.subsets()}. "
        "'OHEM f' back-propagates the highest ceil(f x batch) losses of each batch, 'OHEM top-k' "
        "the k highest.",
    )
    for mode in dict.fromkeys(row["mode"] for row in report.rows):
        rows = [row for row in report.rows if row["mode"] == mode]
        text += section(mode, markdown_table(rows, "reducer", "test_set", "accuracy"))
    report.write(text)


main = functools.partial(run_main, "negdl-ohem", Args, run)


if __name__ == "__main__":
    main()
