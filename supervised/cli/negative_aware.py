"""Negative-aware training on MNIST: baseline vs negatives pushed to the uniform output.

Per seed, trains a baseline on all ten digits and one negative-aware model per transform source
(occluded, inverted, noise), plus a baseline on digits 0-4 and a negative-aware model that uses
digits 5-9 as negatives (held-out classes). Each model is scored on the clean test set and on
held-out negatives of every kind built from the *test* split: NCR_t, FPR at 95% TPR, AUROC and
AUPR of the max-softmax confidence (one result row per model, seed, negative kind and metric).

    negdl-negative-aware --seeds 0 1 2
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated

import torch
import tyro
from torch.utils.tensorboard import SummaryWriter

from negdl.cli import run_main
from negdl.results import markdown_table
from negdl.trials import Trial
from supervised.cli.common import Report, TrainRunOptions, check_known, section
from supervised.context import RunContext
from supervised.models import mnist_net
from supervised.negative_aware import (
    NEGATIVE_SOURCES,
    HeldOutClasses,
    NegativeAwareConfig,
    make_negative_source,
    negative_report,
    negative_test_sets,
    train_classifier,
)
from supervised.ood import NCR_THRESHOLDS
from supervised.runtime import derive_seed, make_generator, seed_everything

TRANSFORM_SOURCES = ("occluded", "inverted", "noise")
#: The report tables' rows, columns and values.
MODEL_METRIC = ("model", "metric", "value")
#: The source's ResNet18 numbers on CIFAR-10 with CIFAR-100 negatives (brief, section 6).
SOURCE_NOTE = (
    "Source (ResNet18, CIFAR-10 in-distribution, CIFAR-100 negatives): NCR_0.4 on the CIFAR-100 "
    "test set 0.971 baseline -> 0.072 negative-aware; clean accuracy 95.54 -> 95.03."
)


@dataclass
class Args(TrainRunOptions):
    """Train baselines and negative-aware MNIST classifiers; score them on held-out negatives."""

    sources: tuple[str, ...] = tuple(NEGATIVE_SOURCES)
    """negative sources to train with (occluded inverted noise held-out)"""
    out_dir: str = "runs/negative_aware"
    training: Annotated[NegativeAwareConfig, tyro.conf.OmitArgPrefixes] = NegativeAwareConfig()
    """training hyperparameters (flags without a prefix: --epochs, --weight, ...)"""

    def __post_init__(self) -> None:
        check_known("negative source", self.sources, NEGATIVE_SOURCES)
        super().__post_init__()  # --data-dir, --download


def load_plans(args: Args, device: torch.device) -> tuple[dict, torch.Tensor | None, list[tuple]]:
    """The transforms, the digits 5-9 training negatives (None without the held-out source) and
    every model's plan: (model name, in-distribution training set, negative source name or
    None, test set, negatives)."""
    train, test = (split.to(device) for split in args.splits("mnist"))
    transforms = {name: make_negative_source(name) for name in TRANSFORM_SOURCES}
    # Held-out negatives of every kind from the test split; digits 0-4 models also meet 5-9.
    _, test_negatives = negative_test_sets(test, transforms)
    plans: list[tuple] = [("baseline 0-9", train, None, test, test_negatives)]
    plans += [
        (f"OE {name} 0-9", train, name, test, test_negatives)
        for name in TRANSFORM_SOURCES
        if name in args.sources
    ]
    train_high = None
    if "held-out" in args.sources:  # split only then: a subset may lack digits 0-4 or 5-9
        held_out = HeldOutClasses()
        test_low, test_high = held_out.split(test)
        _, low_negatives = negative_test_sets(test_low, transforms)
        low_negatives["held-out"] = test_high
        train_low, train_high = held_out.split(train)
        plans += [
            ("baseline 0-4", train_low, None, test_low, low_negatives),
            ("OE held-out 0-4", train_low, "held-out", test_low, low_negatives),
        ]
    return transforms, train_high, plans


def run_seed(args: Args, trial: Trial) -> dict[str, list[dict]]:
    """One trial: every model trained from one seed and scored on the held-out negatives."""
    device, (transforms, train_high, plans) = args.loaded(load_plans)
    config = args.training
    seed = trial.params["seed"]
    seed_everything(seed)
    rows: list[dict] = []
    for name, inliers, source, test_inliers, negatives in plans:
        torch.manual_seed(derive_seed(seed, "init", inliers.num_classes))
        model = mnist_net(inliers.num_classes)
        training_negatives = train_high if source == "held-out" else None
        if source in transforms:
            generator = make_generator(seed, "negatives", source)
            training_negatives = transforms[source].split(inliers, generator)[1]
        writer = SummaryWriter(str(trial.dir / name.replace(" ", "_")))
        context = RunContext(device, (writer,), args.progress)
        description = f"seed {seed} {name}"
        train_classifier(model, inliers, training_negatives, config, seed, context, description)
        scores = negative_report(model, test_inliers, negatives, device)
        for kind, metrics in scores.items():
            for metric, value in metrics.items():
                writer.add_scalar(f"eval/{kind}/{metric}", value, 0)
                row = {"model": name, "seed": seed, "negatives": kind, "metric": metric}
                rows.append({**row, "value": round(value, 4)})
        writer.close()
        by_kind = ", ".join(
            f"{kind} NCR_0.4 {m['NCR_0.4']:.3f} AUROC {m['AUROC']:.3f}"
            for kind, m in scores.items()
            if kind != "clean"
        )
        accuracy = scores["clean"]["accuracy"]
        print(f"seed {seed} {name}: accuracy {accuracy:.2f}, {by_kind}", flush=True)
    return {"results": rows}


def run(args: Args) -> None:
    args.run_seeds("negdl-negative-aware", run_seed, load_plans, write_report)


def write_report(args: Args, report: Report) -> None:
    rows, config = report.rows, args.training
    text = report.head(
        "Negative-aware training on MNIST",
        f"{config.epochs} epochs, SGD lr {config.lr} momentum {config.momentum}, batch "
        f"{config.batch_size} real + {config.batch_size} negatives, lambda {config.weight}, "
        f"{config.target} to uniform; {args.subsets()}. Negatives for testing are built from "
        "the test split (held-out for training).",
    )
    clean = [r for r in rows if r["negatives"] == "clean"]
    text += ["", SOURCE_NOTE]
    text += section("Clean test accuracy (%)", markdown_table(clean, *MODEL_METRIC))
    metrics = [f"NCR_{t:g}" for t in NCR_THRESHOLDS] + ["FPR95", "AUROC", "AUPR"]
    kinds = [kind for kind in dict.fromkeys(row["negatives"] for row in rows) if kind != "clean"]
    for kind in kinds:
        shown = [
            {**r, "value": 100 * r["value"]}
            for r in rows
            if r["negatives"] == kind and r["metric"] in metrics
        ]
        text += section(f"Test negatives: {kind} (%)", markdown_table(shown, *MODEL_METRIC))
    report.write(text)


main = functools.partial(run_main, "negdl-negative-aware", Args, run)


if __name__ == "__main__":
    main()
