"""Negative triplet Siamese networks on MNIST: TSN, TSN-N, TSN-P from scratch and as fine-tuning.

Trains every schedule from the same seeds, embeds the test set (queries) and the training set
(references), and reports nearest-prototype accuracy, k-NN accuracy and precision@1, with the
source's numbers and a PCA plot of the test embeddings per schedule (``pca_<schedule>.png``,
first seed). A reference row trains the same network with pytorch-metric-learning's conventions
(its MNIST TripletMarginLoss example) on the full training split.

    negdl-siamese --seeds 0 1 2
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import torch
import tyro

from negdl.checks import check_int
from negdl.cli import run_main
from negdl.results import markdown_table
from negdl.trials import Trial
from negdl.writers import TensorBoardWriters
from supervised.cli.common import Report, TrainRunOptions, section
from supervised.context import RunContext
from supervised.data import LabelledImages
from supervised.embeddings import embed, plot_embeddings
from supervised.runtime import seed_everything
from supervised.siamese import (
    PML_CONVENTIONS,
    SiameseConfig,
    schedule_variants,
    score_embedding,
    train_schedules,
)

# The source's TSN accuracies (%) on MNIST, as quoted in the project brief, section 6.
SOURCE = {"TSN": 93.84, "TSN>TSN-N": 93.91, "TSN>TSN-P": 92.92, "TSN-N": "diverged"}
PML_ROW = "pml conventions"


@dataclass
class Args(TrainRunOptions):
    """Train negative triplet Siamese networks on MNIST and score their embeddings."""

    schedules: tuple[str, ...] = ("TSN", "TSN-N", "TSN-P", "TSN>TSN", "TSN>TSN-N", "TSN>TSN-P")
    """schedules: a variant from scratch (TSN, TSN-N, TSN-P) or TSN>variant to fine-tune TSN"""
    k: int = 5
    """neighbours of the k-NN accuracy"""
    pml_reference: bool = True
    """also train the embedding with pytorch-metric-learning's conventions on the full training split"""
    plot: bool = True
    """save a PCA plot of the test embeddings per schedule (first seed)"""
    out_dir: str = "runs/siamese"
    siamese: Annotated[SiameseConfig, tyro.conf.OmitArgPrefixes] = SiameseConfig()
    """triplet training's hyperparameters (flags without a prefix: --epochs, --margin, ...)"""

    def __post_init__(self) -> None:
        if not self.schedules and not self.pml_reference:
            raise ValueError("nothing to train: give --schedules, or leave --pml-reference on")
        for name in self.schedules:
            schedule_variants(name)
        check_int("k", self.k, 1)
        if self.schedules and self.train_subset and self.k > self.train_subset:
            raise ValueError(
                f"--k {self.k} neighbours need at least that many references, but the training "
                f"images (the references) are --train-subset {self.train_subset}"
            )
        super().__post_init__()  # --data-dir, --download


def load_data(args: Args, device: torch.device) -> tuple[LabelledImages, ...]:
    """The full training split, the one trained on and the test set, on ``device``."""
    full_train = args.load("mnist", train=True)
    train = full_train.subset(slice(0, args.train_subset)) if args.train_subset else full_train
    return full_train.to(device), train.to(device), args.test_split("mnist").to(device)


def run_seed(args: Args, trial: Trial) -> dict[str, list[dict]]:
    """One trial: every schedule (and the pml reference) trained from one seed and scored."""
    device, (full_train, train, test) = args.loaded(load_data)
    config = args.siamese
    pml_config = replace(PML_CONVENTIONS, embedding_size=args.siamese.embedding_size)
    seed = trial.params["seed"]
    seed_everything(seed)
    rows: list[dict] = []
    writer_for = TensorBoardWriters(trial.dir)
    context = RunContext(device, progress=args.progress)
    trained = train_schedules(args.schedules, train, config, seed, context, writer_for)
    runs = [(name, result, train, config) for name, result in trained.items()]
    if args.pml_reference:
        pml = train_schedules(
            ["TSN"], full_train, pml_config, seed, context, lambda _: writer_for(PML_ROW)
        )
        runs.append((PML_ROW, pml["TSN"], full_train, pml_config))
    for name, result, references, run_config in runs:
        scores = score_embedding(result.model, references, test, run_config, args.k, device)
        final_loss = result.losses[-1][-1] if result.losses[-1] else float("nan")
        row = {"schedule": name, "seed": seed, **{key: round(v, 2) for key, v in scores.items()}}
        row["final_loss"] = round(final_loss, 4)
        row["diverged"] = not math.isfinite(final_loss) or math.isnan(scores["precision_at_1"])
        # Diverging pushes embeddings apart without bound, collapsing pulls them together.
        embeddings = embed(result.model, test.images, device=device)
        row["mean_norm"] = round(embeddings.norm(dim=1).mean().item(), 3)
        rows.append(row)
        for key, value in scores.items():
            writer_for(name).add_scalar(f"eval/test/{key}", value, result.global_step)
        scores_line = ", ".join(f"{key} {value:.2f}" for key, value in scores.items())
        print(f"seed {seed} {name}: {scores_line}", flush=True)
        if args.plot and seed == args.seeds[0] and not row["diverged"]:
            path = Path(args.out_dir) / f"pca_{name.replace('>', '_to_').replace(' ', '_')}.png"
            title = f"{name}: PCA of the test embeddings (seed {seed})"
            plot_embeddings(embeddings, test.labels, path, title)
    writer_for.close()
    return {"results": rows}


def run(args: Args) -> None:
    args.run_seeds("negdl-siamese", run_seed, load_data, write_report, ignore=("plot",))


def comparison_table(rows: list[dict]) -> str:
    """Our mean precision@1 and prototype accuracy next to the source's accuracy."""
    lines = [
        "| schedule | source accuracy | ours: prototype accuracy | ours: precision@1 "
        "| diverged runs | mean embedding norm |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in dict.fromkeys(row["schedule"] for row in rows):
        group = [row for row in rows if row["schedule"] == name]
        finite = [row for row in group if not row["diverged"]]
        prototype, precision = (
            f"{sum(r[key] for r in finite) / len(finite):.2f}" if finite else "-"
            for key in ("prototype_accuracy", "precision_at_1")
        )
        # The pml row has no source figure: pml's notebook scores another net against other
        # references, and its printed P@1 changed between revisions.
        lines.append(
            f"| {name} | {SOURCE.get(name, '-')} | {prototype} | {precision} "
            f"| {len(group) - len(finite)} of {len(group)} "
            f"| {sum(r['mean_norm'] for r in group) / len(group):.3g} |"
        )
    return "\n".join(lines)


def write_report(args: Args, report: Report) -> None:
    rows, config, pml = report.rows, args.siamese, PML_CONVENTIONS
    metrics = [key for key in rows[0] if key.endswith("accuracy") or key == "precision_at_1"]
    # Diverged runs have no scores; the comparison below counts them.
    long_rows = [
        {"schedule": row["schedule"], "metric": metric, "value": row[metric]}
        for row in rows
        if not row["diverged"]
        for metric in metrics
    ]
    text = report.head(
        "Triplet Siamese networks on MNIST: embedding scores (%)",
        f"From scratch: {config.epochs} epochs, SGD lr {config.lr} momentum {config.momentum}, "
        f"{config.batch_size} sampled triplets per step, {config.distance} distance, margin "
        f"{config.margin}, miner {config.miner or 'none'}, embedding {config.embedding_size}; "
        f"fine-tuning (TSN>...): {config.finetune_epochs} epoch(s) at lr x "
        f"{config.finetune_lr_factor}. {args.train_subset or 'all'} training images (also the "
        f"references), {args.test_subset or 'all'} test queries; k-NN with k = {args.k}. "
        f"'{PML_ROW}': {pml.epochs} epoch on all training images, batches of {pml.batch_size}, "
        f"Adam lr {pml.lr}, cosine distance, margin {pml.margin}, semi-hard mining, mean over "
        "non-zero losses.",
    )
    scores = markdown_table(long_rows, "schedule", "metric", "value")
    text += ["", scores if long_rows else "(every run diverged)"]
    text += section("Compared with the source and pytorch-metric-learning", comparison_table(rows))
    report.write(text)


main = functools.partial(run_main, "negdl-siamese", Args, run)


if __name__ == "__main__":
    main()
