"""Robustness of trained models to adversarial attacks (checkpoints from negdl-synergy).

Per seed: the white-box FGSM sweep over eps (plotted in ``fgsm.png``), the PGD black-box
transfer matrix (every model attacked as donor x every model as target; the diagonal is
white-box), the 8-attack suite at one eps for chosen models (torchattacks 3.5.1 defaults
otherwise), and max-ensemble vs averaging under transferred FGSM (each model in turn is the
donor, the others form the ensemble). Inputs are raw [0, 1] pixels; the models standardise
inside. One CSV per table, under ``<out_dir>/<dataset>/``.

    negdl-synergy --seeds 0 1 2          # trains and saves the models
    negdl-robustness --seeds 0 1 2
"""

from __future__ import annotations

import functools
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from negdl.checks import check_distinct, check_int
from negdl.cli import run_main
from negdl.results import markdown_table, mean_std
from negdl.trials import Trial
from supervised.attacks import ATTACKS, FGSM, PGD, make_attack
from supervised.checkpoints import load_checkpoint, read_metadata
from supervised.cli.common import Report, RunOptions, check_known, section
from supervised.data import LabelledImages
from supervised.evaluation import accuracy, evaluate, predict_models
from supervised.join_rules import MeanProbabilityRule, MostConfidentRule
from supervised.robustness import adversarial_set, fgsm_sweep, transfer_matrix
from supervised.synergy import check_model_metadata, model_from_metadata

#: A trial's result tables, also the names of their CSV files.
TABLES = ("fgsm", "transfer", "suite", "ensembles", "timings")
#: How the plot names the datasets negdl-synergy trains on.
DATASET_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10"}
# The source's MNIST white-box FGSM accuracies (%), SN vs NR, as quoted in the brief, section 5.
SOURCE_FGSM = {"normal": {0.1: 77.34, 0.15: 47.23}, "NR": {0.1: 81.35, 0.15: 53.07}}


@dataclass
class Args(RunOptions):
    """Attack trained models: FGSM sweep, PGD transfer matrix, 8-attack suite, max-ensembles."""

    models_dir: str = "runs/synergy/mnist"
    """folder with seed<k>/<model>/model.pt checkpoints written by negdl-synergy"""
    models: tuple[str, ...] = ("normal", "NR", "negative", "synergy", "trained-synergy")
    """models of the FGSM sweep, the transfer matrix and the ensembles (those need three: each is the models but the donor)"""
    eps_values: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
    """FGSM sweep budgets (L-inf, pixels in [0, 1])"""
    pgd_eps: float = 0.1
    """PGD budget of the transfer matrix"""
    pgd_alpha: float = 0.025
    """PGD step size of the transfer matrix (2.5 eps / steps, as Madry et al.)"""
    pgd_steps: int = 10
    """PGD iterations of the transfer matrix"""
    suite_attacks: tuple[str, ...] = tuple(ATTACKS)
    """attacks of the suite table (library defaults except eps)"""
    suite_models: tuple[str, ...] = ("normal", "synergy")
    """models of the suite table"""
    suite_eps: float = 0.1
    """eps of every suite attack (CW has none)"""
    suite_subset: int = 1000
    """first N test images for the suite (0: all); CW's 50 Adam steps dominate its cost"""
    ensemble_eps: float = 0.1
    """FGSM eps of the max-ensemble vs averaging comparison"""
    batch_size: int = 250
    """images attacked and evaluated at once"""
    out_dir: str = "runs/robustness"
    """where results, the plot and TensorBoard runs go"""

    def __post_init__(self) -> None:
        check_known("attack", self.suite_attacks, ATTACKS)
        budgets = (*self.eps_values, self.pgd_eps, self.suite_eps, self.ensemble_eps)
        if not self.eps_values or any(not 0.0 <= eps <= 1.0 for eps in budgets):
            raise ValueError(f"every eps must be in [0, 1] and eps_values non-empty, got {budgets}")
        if self.pgd_alpha <= 0 or self.pgd_steps <= 0 or self.batch_size <= 0:
            raise ValueError("pgd_alpha, pgd_steps and batch_size must be positive")
        if len(self.models) < 2 or not set(self.suite_models) <= set(self.models):
            raise ValueError("need at least two models, and suite_models must be among models")
        check_distinct("models", self.models)
        check_distinct("suite_models", self.suite_models)
        check_distinct("suite_attacks", self.suite_attacks)
        check_int("suite_subset", self.suite_subset, 0)
        super().__post_init__()


def checkpoint(args: Args, seed: int, name: str) -> Path:
    """The checkpoint of model ``name`` of ``seed``; an error saying how to make it if absent."""
    path = Path(args.models_dir) / f"seed{seed}" / name / "model.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint {path}; run negdl-synergy --seeds {seed} (its --out-dir/<dataset> "
            "is --models-dir here) or choose --models among the saved ones"
        )
    return path


def models_dataset(args: Args) -> str:
    """The dataset every checkpoint of every seed was trained on (an error if one is missing,
    does not describe its model or they differ), checked before any trial runs."""
    datasets = set()
    for seed in args.seeds:
        for name in args.models:
            path = checkpoint(args, seed, name)
            metadata = read_metadata(path)
            try:
                check_model_metadata(metadata)
            except ValueError as error:  # e.g. a negdl-cbomf checkpoint: no architecture
                raise ValueError(
                    f"{path}: {error}; negdl-robustness attacks the checkpoints negdl-synergy "
                    "saves (its --extra-modes add CBOMF modes)"
                ) from None
            datasets.add(metadata.get("dataset", "mnist"))
    if len(datasets) != 1:
        raise ValueError(f"the models come from different datasets {sorted(datasets)}")
    return datasets.pop()


def load_models(args: Args, seed: int, device: torch.device) -> dict:
    """The named checkpoints of one seed, rebuilt and loaded."""
    models = {}
    for name in args.models:
        path = checkpoint(args, seed, name)
        model = model_from_metadata(read_metadata(path))
        load_checkpoint(path, model)
        # torch's stubs lack Module.to's memory_format keyword, which it takes at run time.
        model = model.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        models[name] = model.eval()
    return models


def load_test(args: Args, device: torch.device) -> LabelledImages:
    """The test split of the models' dataset, on ``device``."""
    return args.test_split(models_dataset(args)).to(device)


def sweep_plot(
    accuracies: dict[tuple[str, float], list[float]], path: Path, dataset: str = "mnist"
) -> None:
    """Accuracy against eps, one line per model, mean ± std of ``accuracies[model, eps]``."""
    figure = Figure(figsize=(6, 4))
    axis = figure.subplots()
    for model in dict.fromkeys(model for model, _ in accuracies):
        eps_values = sorted(eps for name, eps in accuracies if name == model)
        values = [accuracies[model, eps] for eps in eps_values]
        means = [statistics.mean(v) for v in values]
        spread = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
        axis.errorbar(eps_values, means, yerr=spread, marker="o", capsize=3, label=model)
    axis.set_xlabel("FGSM eps (L-inf, pixels in [0, 1])")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(f"White-box FGSM on {DATASET_NAMES.get(dataset, dataset)}")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def run_seed(args: Args, trial: Trial) -> dict[str, list[dict]]:
    """One trial: every attack on the models of one seed."""
    device, test = args.loaded(load_test)
    seed = trial.params["seed"]
    models = load_models(args, seed, device)
    tables: dict[str, list[dict]] = {table: [] for table in TABLES}
    writer = SummaryWriter(str(trial.dir))

    def bar(items: Iterable | None, task: str, total: int | None = None) -> tqdm:
        return tqdm(items, desc=f"seed {seed} {task}", total=total, disable=not args.progress)

    def timed(task: str, model: str, began: float) -> None:
        seconds = round(time.perf_counter() - began, 2)
        row = {"seed": seed, "task": task, "model": model, "images": len(test)}
        tables["timings"].append({**row, "seconds": seconds})

    for name, model in bar(models.items(), "FGSM sweep"):
        began = time.perf_counter()
        sweep = fgsm_sweep(model, test, args.eps_values, args.batch_size)
        timed(f"FGSM sweep, {len(args.eps_values)} eps", name, began)
        for eps, value in sweep.items():
            row = {"seed": seed, "model": name, "eps": eps, "accuracy": round(value, 2)}
            tables["fgsm"].append(row)
            writer.add_scalar(f"fgsm/{name}/accuracy", value, round(1000 * eps))
        sweep_line = ", ".join(f"{eps:g} {v:.2f}" for eps, v in sweep.items())
        print(f"seed {seed} FGSM {name}: {sweep_line}", flush=True)

    began = time.perf_counter()
    pgd = functools.partial(PGD, eps=args.pgd_eps, alpha=args.pgd_alpha, steps=args.pgd_steps)
    with bar(None, "PGD transfer", total=len(models)) as pgd_bar:
        donor_attack = functools.partial(pgd, batch_size=args.batch_size, seed=seed)
        matrix = transfer_matrix(
            models, donor_attack, test, args.batch_size, progress=lambda _donor: pgd_bar.update()
        )
    timed(f"PGD transfer matrix, {args.pgd_steps} steps, {len(models)} donors", "all", began)
    for donor, row in matrix.items():
        for target, value in row.items():
            tables["transfer"].append(
                {"seed": seed, "donor": donor, "target": target, "accuracy": round(value, 2)}
            )
            writer.add_scalar(f"pgd_transfer/{donor}/{target}", value, 0)

    suite = test.subset(slice(0, args.suite_subset)) if args.suite_subset else test
    jobs = [(attack, name) for attack in args.suite_attacks for name in args.suite_models]
    for attack_name, name in bar(jobs, "attack suite"):
        options = {} if attack_name == "CW" else {"eps": args.suite_eps}
        attack = make_attack(
            attack_name, models[name], batch_size=args.batch_size, seed=seed, **options
        )
        began = time.perf_counter()
        adversarial = adversarial_set(attack, suite)
        value = evaluate(models[name], {"adv": adversarial})["adv"]
        l2 = (adversarial.images - suite.images).flatten(1).norm(dim=1).mean().item()
        row = {"seed": seed, "attack": attack_name, "model": name, "accuracy": round(value, 2)}
        seconds = round(time.perf_counter() - began, 2)
        tables["suite"].append({**row, "mean_l2": round(l2, 4), "seconds": seconds})
        writer.add_scalar(f"suite/{attack_name}/{name}", value, 0)

    # Each ensemble is the models but the donor: two members at least, so three models.
    donors = models if len(models) > 2 else {}
    for donor, model in donors.items():
        fgsm = FGSM(model, args.ensemble_eps, batch_size=args.batch_size)
        adversarial = adversarial_set(fgsm, test)
        members = {name: member for name, member in models.items() if name != donor}
        logits = predict_models(members, {"adv": adversarial}, args.batch_size)
        stacked = torch.stack([logits[name]["adv"] for name in members], 1)
        singles = [accuracy(logits[name]["adv"], adversarial.labels) for name in members]
        scores = {
            "max-ensemble": accuracy(MostConfidentRule()(stacked), adversarial.labels),
            "averaging": accuracy(MeanProbabilityRule()(stacked), adversarial.labels),
            "best member": max(singles),
            "mean member": statistics.mean(singles),
        }
        tables["ensembles"] += [
            {"seed": seed, "donor": donor, "ensemble": how, "accuracy": round(value, 2)}
            for how, value in scores.items()
        ]
    writer.close()
    return tables


def run(args: Args) -> None:
    dataset = models_dataset(args)  # a missing checkpoint before any data is read
    report = functools.partial(write_report, dataset=dataset)
    args.run_seeds("negdl-robustness", run_seed, load_test, report, subfolder=dataset)


def write_report(args: Args, report: Report, dataset: str = "mnist") -> None:
    """Rewrite every CSV, results.md and fgsm.png from the sweep's rows so far (``dataset``:
    the models'; the source's numbers are MNIST's, so only MNIST is compared with them)."""
    sweep_rows, transfer_rows, suite_rows, ensemble_rows, timing_rows = (
        report.tables[table] for table in TABLES
    )
    ours: dict[tuple[str, float], list[float]] = defaultdict(list)
    for row in sweep_rows:
        ours[row["model"], row["eps"]].append(row["accuracy"])
    sweep_plot(ours, report.out_dir / "fgsm.png", dataset)
    images = sweep_rows and timing_rows[0]["images"]
    source_lines = [
        f"| {model} | {eps:g} | {source:.2f} | {mean_std(ours[model, eps])} |"
        for model, by_eps in SOURCE_FGSM.items()
        for eps, source in by_eps.items()
        if (model, eps) in ours and dataset == "mnist"
    ]
    suite_l2 = [row["mean_l2"] for row in suite_rows if row["attack"] == "CW"]
    text = report.head(
        "Robustness: accuracy (%) under attack",
        f"{images} test images ({args.suite_subset or 'all'} for the attack suite), pixels in "
        f"[0, 1], models from {args.models_dir}.",
    )
    text += section(
        "White-box FGSM sweep (rows: model, columns: eps)",
        markdown_table(sweep_rows, "model", "eps", "accuracy"),
    )
    text += section(
        f"PGD transfer matrix (eps {args.pgd_eps:g}, alpha {args.pgd_alpha:g}, {args.pgd_steps} "
        "steps; rows: donor attacked, columns: target; diagonal white-box)",
        markdown_table(transfer_rows, "donor", "target", "accuracy"),
    )
    text += section(
        f"Attack suite at eps {args.suite_eps:g} (torchattacks 3.5.1 defaults otherwise; CW: c 1, "
        "50 steps)",
        *(
            [
                markdown_table(suite_rows, "attack", "model", "accuracy"),
                "",
                f"CW's mean L2 perturbation norm: {mean_std(suite_l2, 3)}.",
            ]
            if suite_rows
            else ["(not run: --suite-attacks or --suite-models is empty)"]
        ),
    )
    text += section(
        f"Max-ensemble vs averaging under transferred FGSM (eps {args.ensemble_eps:g}; the donor "
        "is left out of the ensemble)",
        markdown_table(ensemble_rows, "donor", "ensemble", "accuracy")
        if ensemble_rows
        else "(not run: an ensemble of the models but the donor needs at least three --models)",
    )
    text += section("Wall time (seconds)", markdown_table(timing_rows, "task", "model", "seconds"))
    if source_lines:
        text += section(
            "Compared with the source (MNIST FGSM, SN vs NR)",
            "| model | eps | source | ours |",
            "| --- | ---: | ---: | ---: |",
            *source_lines,
        )
    report.write(text)


main = functools.partial(run_main, "negdl-robustness", Args, run)


if __name__ == "__main__":
    main()
