"""Negative output learning under label noise: cross-entropy vs NLNL and its stages, on MNIST.

For each noise rate and seed (one trial each, ``<out_dir>/noise<percent>/seed<k>/``), corrupt
the training labels with symmetric noise (a share of the labels replaced by a uniformly drawn
other class), train every method on the noisy labels from the same initialisation, and report
the clean test accuracy, and for the selective methods the kept share and its label precision.

    negdl-negative-labels --seeds 0 1 2
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import torch
import tyro

from negdl.cli import run_main
from negdl.results import markdown_table
from negdl.sweeps import Grid, Sweep
from negdl.trials import Trial
from negdl.writers import TensorBoardWriters
from supervised.cli.common import Report, TrainRunOptions, check_known, section
from supervised.complementary import (
    NOISE_METHODS,
    NoisyLabelConfig,
    symmetric_label_noise,
    train_noisy,
)
from supervised.data import LabelledImages
from supervised.evaluation import evaluate
from supervised.models import mnist_net
from supervised.runtime import make_generator, seed_everything


@dataclass
class Args(TrainRunOptions):
    """Train CE, NL, SelNL, NLNL and NL+SelCE on MNIST with symmetric label noise; report clean
    test accuracy."""

    noise_rates: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
    """shares of training labels replaced by another class, each in [0, 1)"""
    methods: tuple[str, ...] = NOISE_METHODS
    """methods to train (CE NL SelNL NLNL NL+SelCE); NLNL continues SelNL, which continues NL"""
    out_dir: str = "runs/negative_labels"
    training: Annotated[NoisyLabelConfig, tyro.conf.OmitArgPrefixes] = NoisyLabelConfig()
    """training hyperparameters (flags without a prefix: --epochs, --nl-epochs, ...)"""

    def __post_init__(self) -> None:
        if not self.methods:
            raise ValueError("give at least one method with --methods")
        check_known("method", self.methods, NOISE_METHODS)
        bad = [rate for rate in self.noise_rates if not 0.0 <= rate < 1.0]
        if bad:
            raise ValueError(f"noise rates must be in [0, 1), got {bad}")
        super().__post_init__()  # --data-dir, --download


def load_data(args: Args, device: torch.device) -> tuple[LabelledImages, LabelledImages]:
    """The training split and the test set on ``device``."""
    train, test = args.splits("mnist")
    return train.to(device), test.to(device)


def percent(rate: float) -> str:
    """A noise rate in percent, to as many decimals as it has (up to 6): ``20`` for 0.2,
    ``12.5`` for 0.125, so that distinct rates keep distinct names and columns."""
    return f"{100 * rate:.6f}".rstrip("0").rstrip(".")


def trial_name(params: dict) -> str:
    """``noise20/seed0`` for noise rate 0.2 and seed 0 (``noise12.5/seed0`` for 0.125)."""
    return f"noise{percent(params['noise'])}/seed{params['seed']}"


def run_noisy(args: Args, trial: Trial) -> dict[str, list[dict]]:
    """One trial: every method trained on one seed's noisy labels at one noise rate."""
    device, (train, test) = args.loaded(load_data)
    rate, seed = trial.params["noise"], trial.params["seed"]
    rows: list[dict] = []
    seed_everything(seed)
    labels = symmetric_label_noise(
        train.labels, rate, train.num_classes, make_generator(seed, "label-noise", rate)
    )
    noisy = LabelledImages(train.images, labels, train.classes)
    clean = labels == train.labels
    writer_for = TensorBoardWriters(trial.dir)
    factory = functools.partial(mnist_net, train.num_classes)
    trained = train_noisy(
        args.methods, factory, noisy, args.training, seed, device, writer_for, args.progress
    )
    for method, result in trained.items():
        accuracy = evaluate(result.model, {"test": test}, device=device)["test"]
        writer_for(method).add_scalar("eval/test/accuracy", accuracy, result.global_step)
        row = {"noise": rate, "method": method, "seed": seed, "accuracy": round(accuracy, 2)}
        kept = result.selected
        row["kept"] = "" if kept is None else round(kept.float().mean().item(), 4)
        row["kept_clean"] = "" if kept is None else round(clean[kept].float().mean().item(), 4)
        rows.append(row)
        print(f"noise {rate:.0%} seed {seed} {method}: {accuracy:.2f}%", flush=True)
    writer_for.close()
    return {"results": rows}


def run(args: Args) -> None:
    def sweep(_device: torch.device) -> Sweep:
        grid = Grid(noise=args.noise_rates, seed=args.seeds)
        settings = args.sweep_settings("noise_rates", "seeds")
        trial = functools.partial(run_noisy, args)
        return Sweep(trial, grid, Path(args.out_dir), name=trial_name, settings=settings)

    args.run_study("negdl-negative-labels", load_data, write_report, sweep)


def write_report(args: Args, report: Report) -> None:
    shown = [{**row, "noise %": f"{percent(row['noise'])}%"} for row in report.rows]
    selection = [row for row in shown if row["kept"] != ""]
    config = args.training
    text = report.head(
        "Label noise on MNIST: clean test accuracy (%)",
        f"CE {config.epochs} epochs (lr {config.lr}); NL {config.nl_epochs} epochs (lr "
        f"{config.nl_lr}, {config.complementary} complementary label(s) per sample and step). "
        "Confidence: a sample's given-label probability averaged over the last "
        f"{config.confidence_epochs} epochs, selections made again every epoch. SelNL: that NL "
        f"run, then {config.selnl_epochs} epochs of NL on the samples with confidence > "
        f"1/classes. NLNL: that SelNL run, then {config.selpl_epochs} epochs of cross-entropy (lr "
        f"{config.lr}) on the samples with confidence > {config.gamma} (SelPL). NL+SelCE (not the "
        f"paper's): the NL run, then {config.selected_epochs} epochs of cross-entropy on the "
        "samples whose confidence at the end of NL is at least "
        f"{config.threshold or '1/classes'}. SGD momentum {config.momentum}, batch "
        f"{config.batch_size}, {args.subsets()}.",
    )
    text += ["", markdown_table(shown, "method", "noise %", "accuracy")]
    if selection:
        shares = [
            {**row, "what": f"{row['method']}: {what}", "value": 100 * row[key]}
            for key, what in (("kept", "kept"), ("kept_clean", "clean among kept"))
            for row in selection
        ]
        text += section(
            "The selections",
            "Share of training samples each selective method trained on in its last epoch (%), "
            "and share of those whose given label is right (%):",
            "",
            markdown_table(shares, "what", "noise %", "value"),
        )
    report.write(text)


main = functools.partial(run_main, "negdl-negative-labels", Args, run)


if __name__ == "__main__":
    main()
