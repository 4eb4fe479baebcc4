"""Synergy models: assemble, train and compare every variant with its two heads.

Per seed: CBOMF SN (the normal model) and HN (a negative head on SN's frozen extractor) are
trained once and joined without further training by every rule (sum, weighted sums, product,
most confident member), a learned fusion (SynergyF) is trained briefly on top, and trained and
hot-start trained synergy are trained; every model is evaluated on every partial/occluded test
set. Also writes ``cases.csv`` (case analysis per test set), ``rescued.png`` (samples synergy
rescues) and the checkpoints ``negdl-robustness`` reads, under ``<out_dir>/<dataset>/``.

    negdl-synergy --seeds 0 1 2
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from negdl.checks import check_distinct
from negdl.cli import run_main
from negdl.results import comparison_table, markdown_table
from negdl.trials import Trial
from negdl.writers import TensorBoardWriters
from supervised.cbomf import MODES, CBOMFConfig, train_modes
from supervised.checkpoints import save_checkpoint
from supervised.cli.common import Report, TrainRunOptions, accuracy_rows, check_known, section
from supervised.context import RunContext
from supervised.data import LabelledImages
from supervised.evaluation import evaluate_models
from supervised.join_rules import MostConfidentRule, ProductRule, WeightedSumRule
from supervised.models import ARCHITECTURES, make_classifier
from supervised.occlusions import cifar_blocks, corner_occlusions, mnist_cuts, partial_test_sets
from supervised.runtime import seed_everything
from supervised.synergy import (
    assemble_synergy,
    case_analysis,
    hot_start_synergy,
    model_metadata,
    synergy_outputs,
    train_fusion,
    train_synergy,
)

# The source's CIFAR-10 LeNet accuracies (%), as quoted in the project brief, section 4.
SOURCE_CIFAR = {
    "full": {
        "normal": 63.30,
        "negative": 63.57,
        "synergy": 66.98,
        "trained-synergy": 63.32,
        "hot-start-synergy": 64.28,
    },
    "corner30": {"normal": 56.33, "synergy": 59.08},
}
#: Names of the two CBOMF models synergy is assembled from.
MODE_NAMES = {"SN": "normal", "HN": "negative"}
#: Each dataset's default architecture and the source's hyperparameters for it.
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "mnist": {"arch": "mnist", "lr": 0.01, "momentum": 0.5, "batch_size": 64},
    "cifar10": {"arch": "lenet", "lr": 0.001, "momentum": 0.9, "batch_size": 4},
}


@dataclass
class Args(TrainRunOptions):
    """Assemble, train and evaluate synergy models (normal head + negative head + join rule)."""

    dataset: str = "mnist"
    """mnist or cifar10"""
    arch: str | None = None
    """mnist, lenet or resnet18; when not given, mnist for MNIST and lenet for CIFAR-10"""
    epochs: int = 10
    """epochs of SN (phase 1) and of trained synergy"""
    second_epochs: int = 10
    """epochs of the negative head (HN phase 2) and of hot-start synergy"""
    fusion_epochs: int = 1
    """epochs of the learned fusion (SynergyF) on top of the frozen heads"""
    lr: float | None = None
    """SGD learning rate; when not given, the source's: 0.01 MNIST, 0.001 CIFAR-10"""
    momentum: float | None = None
    """SGD momentum; when not given, 0.5 MNIST, 0.9 CIFAR-10"""
    batch_size: int | None = None
    """training batch size; when not given, 64 MNIST, 4 CIFAR-10"""
    omegas: tuple[float, ...] = (0.5, 2.0)
    """extra weights of the negative head for weighted-sum synergy (omega 1 is always built)"""
    extra_modes: tuple[str, ...] = ("NR",)
    """further CBOMF modes to train and save for negdl-robustness (sharing SN's phase 1)"""
    corner_fractions: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)
    """image fractions of the corner-occlusion test sets"""
    rescued_examples: int = 6
    """rescued samples drawn in rescued.png (first seed)"""
    out_dir: str = "runs/synergy"
    """where results, checkpoints and TensorBoard runs go"""

    def __post_init__(self) -> None:
        if self.dataset not in DATASET_DEFAULTS:
            raise ValueError(
                f"unknown dataset {self.dataset!r}; use {' or '.join(DATASET_DEFAULTS)}"
            )
        for name, default in DATASET_DEFAULTS[self.dataset].items():
            if getattr(self, name) is None:
                setattr(self, name, default)
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown arch {self.arch!r}; choose from {sorted(ARCHITECTURES)}")
        if (self.arch == "mnist") != (self.dataset == "mnist"):
            raise ValueError(f"arch {self.arch!r} does not fit dataset {self.dataset!r}")
        check_known("CBOMF mode", self.extra_modes, MODES)
        if any(omega < 0 for omega in self.omegas):
            raise ValueError(f"omegas must be >= 0, got {self.omegas}")
        check_distinct("omegas", self.omegas)
        if self.fusion_epochs <= 0 or self.rescued_examples < 0:
            raise ValueError("fusion_epochs must be positive and rescued_examples >= 0")
        self.config()  # validates the hyperparameters
        corner_occlusions(self.corner_fractions)
        super().__post_init__()

    @property
    def architecture(self) -> str:
        """``arch``, or the dataset's default where not given."""
        return self.arch or DATASET_DEFAULTS[self.dataset]["arch"]

    def config(self) -> CBOMFConfig:
        """The training hyperparameters (the dataset's defaults filled in)."""
        names = ("lr", "momentum", "batch_size", "epochs", "second_epochs")
        return CBOMFConfig(**{name: getattr(self, name) for name in names})


def load_data(args: Args, device: torch.device) -> tuple[LabelledImages, dict]:
    """The training split and the named test sets (full plus every partial/occluded variant)
    on ``device``."""
    train, test = args.splits(args.dataset)
    occlusions = mnist_cuts() if args.dataset == "mnist" else cifar_blocks()
    occlusions.update(corner_occlusions(args.corner_fractions))
    return train.to(device), partial_test_sets(test, occlusions, device=device)


def rescued_figure(outputs: dict, test_sets: dict, count: int, path: Path) -> None:
    """Draw up to ``count`` samples synergy gets right although both heads are wrong, with the
    three models' class probabilities (nothing when there is none); ``outputs`` holds each test
    set's :func:`synergy_outputs`."""
    picked = []
    for name, data in test_sets.items():
        members, joined = outputs[name]
        labels = data.labels.to(joined.device)
        wrong = (members.argmax(-1) != labels[:, None]).all(1)
        rescued = torch.nonzero(wrong & (joined.argmax(-1) == labels)).flatten().tolist()
        picked += [(name, data, index, members[index], joined[index]) for index in rescued]
    picked = picked[:count]
    if not picked:
        return
    figure = Figure(figsize=(7, 1.8 * len(picked)))
    axes = figure.subplots(len(picked), 2, squeeze=False)
    for row, (name, data, index, members, joined) in enumerate(picked):
        image_axis, bar_axis = axes[row]
        image = data.images[index].permute(1, 2, 0).cpu().squeeze(-1)
        image_axis.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
        image_axis.set_title(
            f"{name} #{index}, label {data.classes[data.labels[index]]}", fontsize=8
        )
        image_axis.axis("off")
        classes = torch.arange(len(joined))
        probs = torch.cat([members, joined[None]]).softmax(-1).cpu()
        for offset, label in enumerate(("normal", "negative", "synergy")):
            bar_axis.bar(classes + (offset - 1) * 0.28, probs[offset], width=0.28, label=label)
        bar_axis.set_xticks(classes, data.classes, fontsize=7)
        bar_axis.set_ylim(0, 1)
        bar_axis.set_ylabel("p", fontsize=8)
    axes[0, 1].legend(fontsize=7, ncol=3, loc="upper right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def run_seed(args: Args, trial: Trial) -> dict[str, list[dict]]:
    """One trial: every model of one seed, trained, evaluated, analysed and saved."""
    device, (train, test_sets) = args.loaded(load_data)
    config = args.config()
    seed, seed_dir = trial.params["seed"], trial.dir
    seed_everything(seed)
    rows: list[dict] = []
    case_rows: list[dict] = []
    with TensorBoardWriters(seed_dir) as writer_for:
        factory = functools.partial(make_classifier, args.architecture, train.num_classes)
        modes = ["SN", "HN", *(mode for mode in args.extra_modes if mode not in ("SN", "HN"))]
        trained = train_modes(
            modes,
            factory,
            train,
            config,
            (seed,),
            RunContext(device, progress=args.progress),
            lambda _seed, mode: writer_for(MODE_NAMES.get(mode, mode)),
        )[seed]
        normal, hn_step = trained["SN"].model, trained["HN"].global_step
        models = {MODE_NAMES.get(mode, mode): result.model for mode, result in trained.items()}
        steps = {MODE_NAMES.get(mode, mode): result.global_step for mode, result in trained.items()}
        models["synergy"] = synergy = assemble_synergy(normal, trained["HN"].model)
        for omega in args.omegas:
            models[f"synergy-w{omega:g}"] = synergy.with_rule(WeightedSumRule(omega))
        models["synergy-product"] = synergy.with_rule(ProductRule())
        models["synergy-max"] = synergy.with_rule(MostConfidentRule())
        steps |= dict.fromkeys(list(models)[len(trained) :], hn_step)

        def context(name: str) -> RunContext:
            return RunContext(device, (writer_for(name),), args.progress)

        fused = train_fusion(
            synergy,
            train,
            config,
            args.fusion_epochs,
            seed,
            context=context("synergyF"),
            global_step=hn_step,
        )
        jointly = train_synergy(factory, train, config, seed, context("trained-synergy"))
        sn_step = trained["SN"].global_step
        hot = hot_start_synergy(normal, train, config, seed, context("hot-start-synergy"), sn_step)
        extra = {"synergyF": fused, "trained-synergy": jointly, "hot-start-synergy": hot}
        for name, result in extra.items():
            models[name], steps[name] = result.model, result.global_step
        accuracies = evaluate_models(
            models, test_sets, device=device, writer_for=writer_for, step=steps
        )
    for name, by_set in accuracies.items():
        columns = {"dataset": args.dataset, "arch": args.arch, "model": name, "seed": seed}
        rows += accuracy_rows(f"seed {seed} {name}", by_set, **columns)
        metadata = model_metadata(models[name], args.architecture, train.num_classes, "relu")
        metadata |= {"name": name, "seed": seed, "dataset": args.dataset, "accuracy": by_set}
        save_checkpoint(seed_dir / name / "model.pt", models[name], metadata=metadata)
    outputs = {name: synergy_outputs(synergy, data.images) for name, data in test_sets.items()}
    for test_set, data in test_sets.items():
        cases = case_analysis(*outputs[test_set], data.labels)
        case_rows.append({"seed": seed, "test_set": test_set, **vars(cases), "total": cases.total})
        print(
            f"seed {seed} cases {test_set}: both {cases.both}, only normal {cases.only_normal}, "
            f"only negative {cases.only_negative}, neither {cases.neither}; synergy rescued "
            f"{cases.rescued}, lost {cases.lost} (of {cases.total})",
            flush=True,
        )
    if seed == args.seeds[0] and args.rescued_examples:
        rescued_figure(outputs, test_sets, args.rescued_examples, seed_dir.parent / "rescued.png")
    return {"results": rows, "cases": case_rows}


def run(args: Args) -> None:
    args.run_seeds(
        "negdl-synergy",
        run_seed,
        load_data,
        write_report,
        ignore=("rescued_examples",),
        subfolder=args.dataset,
    )


def write_report(args: Args, report: Report) -> None:
    rows, case_rows = report.rows, report.tables["cases"]
    text = report.head(
        f"Synergy on {args.dataset} ({args.arch}): accuracy (%)",
        f"Epochs {args.epochs} + {args.second_epochs} (fusion {args.fusion_epochs}), SGD lr "
        f"{args.lr} momentum {args.momentum}, batch {args.batch_size}, {args.subsets()}.",
    )
    text += ["", markdown_table(rows, "model", "test_set", "accuracy")]
    text += section(
        "Case analysis of synergy (sum, omega 1), mean over seeds",
        "| test set | both right | only normal | only negative | neither | rescued by synergy | lost by synergy |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    )
    for test_set in dict.fromkeys(row["test_set"] for row in case_rows):
        chosen = [row for row in case_rows if row["test_set"] == test_set]
        cases = ("both", "only_normal", "only_negative", "neither", "rescued", "lost")
        means = [f"{sum(row[key] for row in chosen) / len(chosen):.1f}" for key in cases]
        text.append(f"| {test_set} | " + " | ".join(means) + " |")
    if args.dataset == "cifar10" and args.arch == "lenet":
        comparison = comparison_table(rows, SOURCE_CIFAR, "test_set", "model")
        text += section("Compared with the source (CIFAR-10 LeNet)", comparison)
    report.write(text)


main = functools.partial(run_main, "negdl-synergy", Args, run)


if __name__ == "__main__":
    main()
