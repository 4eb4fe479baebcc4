"""Negative output learning under label noise: cross-entropy vs NLNL and its stages, on MNIST.

For each noise rate and seed, corrupt the training labels with symmetric noise (a share of the
labels replaced by a uniformly drawn other class), train every method on the noisy labels from
the same initialisation, and report the clean test accuracy. Writes ``results.csv`` (one row per
noise rate, method and seed, with the selection's kept share and its label precision),
``results.md`` (mean ± std over seeds) and TensorBoard runs under
``<out_dir>/noise<percent>/seed<k>/<method>``.

A sweep with one trial per noise rate and seed, rewritten, resumed, run in parallel and stopped as
:mod:`supervised.cli.common` says.

    negdl-negative-labels --seeds 0 1 2
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from negdl.cli import run_main
from negdl.results import markdown_table
from negdl.sweeps import Grid, Sweep
from negdl.trials import Trial, cached_per_process
from negdl.writers import TensorBoardWriters
from supervised.cli.common import TrainRunOptions, machine_line, seeds_of, write_results
from supervised.complementary import (
    NOISE_METHODS,
    NoisyLabelConfig,
    symmetric_label_noise,
    train_noisy,
)
from supervised.data import LabelledImages
from supervised.evaluation import evaluate
from supervised.models import mnist_net
from supervised.runtime import make_generator, seed_everything, select_device


@dataclass
class Args(TrainRunOptions):
    """Train CE, NL, SelNL, NLNL and NL+SelCE on MNIST with symmetric label noise; report clean
    test accuracy."""

    noise_rates: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
    """shares of training labels replaced by another class, each in [0, 1)"""
    methods: tuple[str, ...] = NOISE_METHODS
    """methods to train (CE NL SelNL NLNL NL+SelCE); NLNL continues SelNL, which continues NL"""
    out_dir: str = "runs/negative_labels"
    """where results and TensorBoard runs go"""
    training: Annotated[NoisyLabelConfig, tyro.conf.OmitArgPrefixes] = NoisyLabelConfig()
    """training hyperparameters (flags without a prefix: --epochs, --nl-epochs, ...)"""

    def __post_init__(self) -> None:
        unknown = [method for method in self.methods if method not in NOISE_METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; choose from {list(NOISE_METHODS)}")
        bad = [rate for rate in self.noise_rates if not 0.0 <= rate < 1.0]
        if bad:
            raise ValueError(f"noise rates must be in [0, 1), got {bad}")
        super().__post_init__()  # --data-dir, --download


def load_data(args: Args):
    """The device, the training split and the test set on it, loaded once per process."""

    def load():
        device = select_device(args.device)
        train, test = args.load_splits("mnist", args.train_subset, args.test_subset)
        return device, train.to(device), test.to(device)

    return cached_per_process(("negative_labels data", repr(args)), load)


def trial_name(params: dict) -> str:
    """``noise20/seed0`` for noise rate 0.2 and seed 0."""
    return f"noise{round(100 * params['noise'])}/seed{params['seed']}"


def run_noisy(args: Args, trial: Trial) -> dict[str, list[dict]]:
    """One trial: every method trained on one seed's noisy labels at one noise rate."""
    args.use_threads()
    device, train, test = load_data(args)
    rate, seed = trial.params["noise"], trial.params["seed"]
    rows: list[dict] = []
    seed_everything(seed)
    labels = symmetric_label_noise(
        train.labels, rate, train.num_classes, make_generator(seed, "label-noise", rate)
    )
    noisy = LabelledImages(train.images, labels, train.classes)
    clean = labels == train.labels
    writer_for = TensorBoardWriters(trial.dir)
    trained = train_noisy(
        args.methods,
        functools.partial(mnist_net, train.num_classes),
        noisy,
        args.training,
        seed,
        device,
        writer_for,
        args.progress,
    )
    for method, result in trained.items():
        accuracy = evaluate(result.model, {"test": test}, device=device)["test"]
        writer_for(method).add_scalar("eval/test/accuracy", accuracy, result.global_step)
        kept = result.selected
        rows.append(
            {
                "noise": rate,
                "method": method,
                "seed": seed,
                "accuracy": round(accuracy, 2),
                "kept": "" if kept is None else round(kept.float().mean().item(), 4),
                "kept_clean": "" if kept is None else round(clean[kept].float().mean().item(), 4),
            }
        )
        print(f"noise {rate:.0%} seed {seed} {method}: {accuracy:.2f}%", flush=True)
    writer_for.close()
    return {"results": rows}


def run(args: Args) -> None:
    start = time.perf_counter()
    args.use_threads()
    device, _, _ = load_data(args)  # any data error, or the download, before the first trial
    out_dir = Path(args.out_dir)
    sweep = Sweep(
        functools.partial(run_noisy, args),
        Grid(noise=args.noise_rates, seed=args.seeds),
        out_dir,
        name=trial_name,
        settings=args.sweep_settings("noise_rates", "seeds"),
    )

    args.report_sweep("negdl-negative-labels", sweep, write_report, device, start)


def write_report(
    args: Args, rows: list[dict], out_dir: Path, seconds: float, device, summary: str = ""
) -> None:
    """Rewrite results.csv and results.md from every row so far (``summary``: the sweep's
    summary sentence)."""
    shown = [{**row, "noise %": f"{round(100 * row['noise'])}%"} for row in rows]
    selection = [row for row in shown if row["kept"] != ""]
    text = [
        f"# Label noise on MNIST: clean test accuracy (%), mean ± std over seeds {seeds_of(rows)}",
        "",
        f"CE {args.training.epochs} epochs (lr {args.training.lr}); NL {args.training.nl_epochs} epochs (lr {args.training.nl_lr}, "
        f"{args.training.complementary} complementary label(s) per sample and step). Confidence: a "
        f"sample's given-label probability averaged over the last {args.training.confidence_epochs} "
        f"epochs, selections made again every epoch. SelNL: that NL run, then {args.training.selnl_epochs} "
        f"epochs of NL on the samples with confidence > 1/classes. NLNL: that SelNL run, then "
        f"{args.training.selpl_epochs} epochs of cross-entropy (lr {args.training.lr}) on the samples with "
        f"confidence > {args.training.gamma} (SelPL). NL+SelCE (not the paper's): the NL run, then "
        f"{args.training.selected_epochs} epochs of cross-entropy on the samples whose confidence at the "
        f"end of NL is at least {args.training.threshold or '1/classes'}. SGD momentum {args.training.momentum}, "
        f"batch {args.training.batch_size}, {args.train_subset or 'all'} training images, "
        f"{args.test_subset or 'all'} test images.",
        machine_line(device, seconds, summary),
        "",
        markdown_table(shown, "method", "noise %", "accuracy"),
    ]
    if selection:
        kept = [{**row, "value": 100 * row["kept"]} for row in selection]
        precise = [{**row, "value": 100 * row["kept_clean"]} for row in selection]
        text += [
            "",
            "## The selections",
            "",
            "Share of training samples each selective method trained on in its last epoch (%), "
            "and share of those whose given label is right (%):",
            "",
            markdown_table(
                [{**row, "what": f"{row['method']}: kept"} for row in kept]
                + [{**row, "what": f"{row['method']}: clean among kept"} for row in precise],
                "what",
                "noise %",
                "value",
            ),
        ]
    write_results(out_dir, text, results=rows)


def main(argv: Sequence[str] | None = None) -> None:
    run_main("negdl-negative-labels", Args, run, argv)


if __name__ == "__main__":
    main()
