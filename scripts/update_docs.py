"""Regenerate the committed results in docs/: the one command that writes there.

Every other command writes into runs/ by default; this script runs them with their outputs
pointed into docs/, one job per result. Sweeps get ``--no-resume`` (a result never reuses an
older version's trials) unless ``--resume``.

    python scripts/update_docs.py --list                  # the jobs, their commands and run times
    python scripts/update_docs.py --jobs envs-bench occlusions
    python scripts/update_docs.py --all --dry-run         # print the commands, run nothing
    python scripts/update_docs.py --tables                # rewrite the quoted tables from docs/
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from negdl import doc_tables
from negdl.cli import run_main

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@dataclass(frozen=True)
class Job:
    """One result in docs/: what it is (and how long it takes), the commands that make it (run
    from the repository root in order) and ``(source, destination)`` files copied afterwards."""

    description: str
    commands: tuple[tuple[str, ...], ...]
    copies: tuple[tuple[str, str], ...] = field(default_factory=tuple)


#: Commands that run a sweep, and so take --resume / --no-resume.
SWEEP_COMMANDS = (
    "neg_agents.cli.bench",
    *(
        f"negdl-{name}"
        for name in ("cbomf", "synergy", "robustness", "siamese", "negative-labels",
                     "negative-aware", "ohem")
    ),
)  # fmt: skip


def installed(command: tuple[str, ...]) -> tuple[str, ...]:
    """``command`` with a ``negdl-*`` command found beside this interpreter (an unactivated venv)."""
    beside = Path(PYTHON).parent / command[0]
    return (str(beside), *command[1:]) if beside.is_file() else command


def job_command(command: tuple[str, ...], resume: bool) -> tuple[str, ...]:
    """``command`` as a job runs it: a sweep starts afresh unless ``resume``."""
    if resume or not any(part in SWEEP_COMMANDS for part in command):
        return command
    return (*command, "--no-resume")


#: Every job, by name. A new script whose result the README shows adds its job here.
JOBS: dict[str, Job] = {
    "envs-bench": Job(
        "docs/envs/bench_env.md: env steps/s against CartPole-v1 (about 1 min)",
        ((PYTHON, "scripts/bench_env.py", "--seconds", "2", "--rounds", "3",
          "--out", "docs/envs/bench_env.md"),),
    ),
    "envs-frame": Job(
        "docs/envs/frame.png: one rendered frame with a contact (seconds)",
        ((PYTHON, "scripts/render_frame.py", "--out", "docs/envs/frame.png"),),
    ),
    "agents-bench": Job(
        "docs/agents/bench.{md,csv}, bench_curves.csv, learning_curves.png, "
        "performance_profile.png: the DQN agents (shielded and not, negative-action, SB3's) and "
        "the baselines, 3 seeds, trained on default NegCollision-v0; the main job's agent also "
        "on 30 obstacles, the crowd and the scene mix (the generalist, 500,000 steps); every "
        "agent on every scene and the probe scenes, 200 held-out test episodes each (about 25 "
        "min on 2 cores)",
        ((PYTHON, "-m", "neg_agents.cli.bench", "--algos", "neg-reward-dqn-shielded",
          "neg-reward-dqn", "neg-action-dqn", "neg-action-dqn-shielded", "dqn", "planner",
          "random", "--num-obstacles", "10", "30", "--workers", "2",
          "--out-dir", "docs/agents", "--tensorboard-dir", "runs/bench/runs"),),
    ),
    "agents-rollout": Job(
        "docs/agents/rollout.gif: the main job on its defaults (negdl-train), then 250 steps of "
        "its greedy policy on an evaluation scene (about 3 min)",
        ((PYTHON, "-m", "neg_agents.cli.train", "--run-name", "docs-rollout", "--overwrite",
          "--out-dir", "runs/train"),
         (PYTHON, "-m", "neg_agents.cli.watch", "--runs-dir", "runs/train",  # the run just trained
          "--seed", "10000", "--max-steps", "250", "--size", "192", "--fps", "20",
          "--output", "docs/agents/rollout.gif")),
    ),
    "agents-training-speed": Job(
        "docs/agents/training_speed.md: env steps/s of training, today's path (SB3 DQN, negdl 0.1 "
        "extractor and schedule), SB3's DQN and the negdl agents on the defaults side by side, "
        "with the env and the policy's forward alone as upper bounds, and neg-reward-dqn with "
        "one gradient step per vector step, 5 interleaved repetitions on one torch thread "
        "(about 3 min on 2 cores)",
        ((PYTHON, "scripts/bench_training.py", "--repeats", "5", "--threads", "1",
          "--total-timesteps", "25000", "--hyperparams", "gradient_steps=1",
          "--out", "docs/agents/training_speed.md"),),
    ),
    "agents-schedule": Job(
        "validation checks of the main job's update schedule, seeds 0-2, each run on the same "
        "200 validation episodes: docs/agents/schedule_check.md, on negdl 0.1's schedule, with "
        "two gradient steps per vector step and on the defaults (one); schedule_check_mix.md, "
        "the generalist on the scene mix (500,000 steps) with two steps and on the defaults "
        "(about 25 min on one core)",
        ((PYTHON, "scripts/schedule_check.py", "--out", "docs/agents/schedule_check.md"),
         (PYTHON, "scripts/schedule_check.py", "--env-id", "NegCollisionMix-v0",
          "--total-timesteps", "500000", "--schedules", "gradient_steps=2", "",
          "--out", "docs/agents/schedule_check_mix.md")),
    ),
    "agents-margins": Job(
        "validation checks, seeds 0-2, each run on the same 200 validation episodes: "
        "docs/agents/schedule_check_unshielded.md, neg-reward-dqn (no shield) on negdl 0.1's "
        "schedule and on the defaults; neg_action_margin.md, neg-action-dqn with each forbidding "
        "margin (the defaults: 0.05); neg_action_margin_shielded.md, neg-action-dqn-shielded on "
        "its 0.01 and on 0.05 (about 25 min on one core)",
        ((PYTHON, "scripts/schedule_check.py", "--algo", "neg-reward-dqn", "--schedules",
          "n_envs=16 batch_size=256 gradient_steps=1", "",
          "--out", "docs/agents/schedule_check_unshielded.md"),
         (PYTHON, "scripts/schedule_check.py", "--algo", "neg-action-dqn", "--schedules", "",
          "margin=0.0025", "margin=0.005", "margin=0.01", "margin=0.02", "margin=0.1",
          "--out", "docs/agents/neg_action_margin.md"),
         (PYTHON, "scripts/schedule_check.py", "--algo", "neg-action-dqn-shielded",
          "--schedules", "", "margin=0.05", "--out", "docs/agents/neg_action_margin_shielded.md")),
    ),
    "agents-ablation": Job(
        "docs/agents/ablation/: Q-heads, SB3's DQN and the flat MLP on both observation layouts, "
        "2 seeds (about 35 min on one core)",
        ((PYTHON, "scripts/ablate_agents.py", "--seeds", "0", "1", "--out-dir", "runs/ablation"),),
        (("runs/ablation/ablation.md", "docs/agents/ablation/ablation.md"),
         ("runs/ablation/ablation.csv", "docs/agents/ablation/ablation.csv")),
    ),
    "sweeps-bench": Job(
        "docs/sweeps/bench_backends.md: a small agents bench (every agent, seeds 0 1, 10 "
        "obstacles, no crowd, 10,000 env steps each) in-process, in 2 local processes and on "
        "local Ray, 2 rounds each (5 to 9 min on 2 cores)",
        ((PYTHON, "scripts/bench_sweeps.py", "--rounds", "2", "--total-timesteps", "10000",
          "--seeds", "0", "1", "--num-obstacles", "10", "--no-crowd",
          "--work-dir", "runs/bench_sweeps", "--out", "docs/sweeps/bench_backends.md"),),
    ),
    "cbomf": Job(
        "docs/supervised/cbomf_mnist.{md,csv}: every CBOMF mode on MNIST, 3 seeds (about 46 min on one core)",
        (("negdl-cbomf", "--seeds", "0", "1", "2", "--threads", "1", "--download",
          "--out-dir", "runs/cbomf"),),
        (("runs/cbomf/mnist/results.md", "docs/supervised/cbomf_mnist.md"),
         ("runs/cbomf/mnist/results.csv", "docs/supervised/cbomf_mnist.csv")),
    ),
    "synergy": Job(
        "docs/supervised/synergy_mnist/: every synergy variant on MNIST, 3 seeds, case analysis, "
        "rescued samples (about 60 min on one core)",
        (("negdl-synergy", "--seeds", "0", "1", "2", "--threads", "1", "--download",
          "--out-dir", "runs/synergy"),),
        tuple((f"runs/synergy/mnist/{name}", f"docs/supervised/synergy_mnist/{name}")
              for name in ("results.md", "results.csv", "cases.csv", "rescued.png")),
    ),
    "robustness": Job(
        "docs/supervised/robustness_mnist/: FGSM sweep, PGD transfer, attack suite, ensembles on "
        "the synergy job's checkpoints (run synergy first; about 30 min on one core)",
        (("negdl-robustness", "--seeds", "0", "1", "2", "--threads", "1", "--download",
          "--models-dir", "runs/synergy/mnist", "--out-dir", "runs/robustness"),),
        tuple((f"runs/robustness/mnist/{name}", f"docs/supervised/robustness_mnist/{name}")
              for name in ("results.md", "fgsm.csv", "fgsm.png", "transfer.csv", "suite.csv",
                           "ensembles.csv", "timings.csv")),
    ),
    "siamese": Job(
        "docs/supervised/siamese_mnist.{md,csv}, siamese_pca_*.png: negative triplet Siamese "
        "networks on 10,000 MNIST images, 3 seeds (about 15 min on one core)",
        (("negdl-siamese", "--seeds", "0", "1", "2", "--train-subset", "10000",
          "--epochs", "2", "--finetune-epochs", "1", "--threads", "1", "--download",
          "--out-dir", "runs/siamese"),),
        (("runs/siamese/results.md", "docs/supervised/siamese_mnist.md"),
         ("runs/siamese/results.csv", "docs/supervised/siamese_mnist.csv"),
         ("runs/siamese/pca_TSN.png", "docs/supervised/siamese_pca_tsn.png"),
         ("runs/siamese/pca_TSN-P.png", "docs/supervised/siamese_pca_tsn_p.png"),
         ("runs/siamese/pca_pml_conventions.png", "docs/supervised/siamese_pca_pml.png")),
    ),
    "negative-labels": Job(
        "docs/supervised/negative_labels_mnist.{md,csv}: CE vs NL, SelNL, NLNL (NL -> SelNL -> "
        "SelPL) and NL+SelCE under label noise, 6,000 MNIST images, 2 seeds (50 min on one "
        "core)",
        (("negdl-negative-labels", "--seeds", "0", "1", "--train-subset", "6000",
          "--epochs", "10", "--nl-epochs", "10", "--selnl-epochs", "5", "--selpl-epochs", "5",
          "--selected-epochs", "3", "--complementary", "3",
          "--threads", "1", "--download", "--out-dir", "runs/negative_labels"),),
        (("runs/negative_labels/results.md", "docs/supervised/negative_labels_mnist.md"),
         ("runs/negative_labels/results.csv", "docs/supervised/negative_labels_mnist.csv")),
    ),
    "negative-labels-long": Job(
        "docs/supervised/negative_labels_long_mnist.{md,csv}: the same at 60% noise, 4x longer, "
        "1 seed (26 min on one core)",
        (("negdl-negative-labels", "--seeds", "0", "--train-subset", "6000",
          "--noise-rates", "0.6", "--epochs", "40", "--nl-epochs", "40", "--selnl-epochs", "20",
          "--selpl-epochs", "20", "--selected-epochs", "10", "--complementary", "3", "--threads",
          "1", "--download", "--out-dir", "runs/negative_labels_long"),),
        (("runs/negative_labels_long/results.md", "docs/supervised/negative_labels_long_mnist.md"),
         ("runs/negative_labels_long/results.csv", "docs/supervised/negative_labels_long_mnist.csv")),
    ),
    "negative-aware": Job(
        "docs/supervised/negative_aware_mnist.{md,csv}: baseline vs negative-aware training, "
        "10,000 MNIST images, 3 seeds (about 12 min on one core)",
        (("negdl-negative-aware", "--seeds", "0", "1", "2", "--train-subset", "10000",
          "--epochs", "3", "--threads", "1", "--download", "--out-dir", "runs/negative_aware"),),
        (("runs/negative_aware/results.md", "docs/supervised/negative_aware_mnist.md"),
         ("runs/negative_aware/results.csv", "docs/supervised/negative_aware_mnist.csv")),
    ),
    "ohem": Job(
        "docs/supervised/ohem_mnist.{md,csv}: OHEM vs the mean loss on CBOMF SN, 3 seeds "
        "(about 6 min on one core)",
        (("negdl-ohem", "--seeds", "0", "1", "2", "--train-subset", "10000",
          "--cbomf.epochs", "3", "--mean-lr-scales", "2", "4", "--threads", "1", "--download",
          "--out-dir", "runs/ohem"),),
        (("runs/ohem/results.md", "docs/supervised/ohem_mnist.md"),
         ("runs/ohem/results.csv", "docs/supervised/ohem_mnist.csv")),
    ),
    "occlusions": Job(
        "docs/supervised/occlusions.png: one digit per row, one occlusion per column (seconds)",
        (("negdl-occlusion-grid", "--download", "--out", "docs/supervised/occlusions.png"),),
    ),
    "supervised-bench": Job(
        "docs/supervised/bench.md: tensor pipeline vs Dataset + DataLoader (about 2.5 min)",
        ((PYTHON, "scripts/bench_supervised.py", "--threads", "1", "--download",
          "--out", "docs/supervised/bench.md"),),
    ),
    "supervised-bench-2threads": Job(
        "docs/supervised/bench_2threads.md: the same with two torch threads (about 2 min)",
        ((PYTHON, "scripts/bench_supervised.py", "--threads", "2", "--download",
          "--out", "docs/supervised/bench_2threads.md"),),
    ),
}  # fmt: skip


@dataclass
class Args:
    """Regenerate results in docs/ by running the scripts with their outputs pointed there."""

    jobs: tuple[str, ...] = ()
    """jobs to run, in this order (see --list)"""
    all: bool = False
    """run every job"""
    list: bool = False
    """print the jobs and their commands, then stop"""
    dry_run: bool = False
    """print the commands of the chosen jobs without running them"""
    tables: bool = False
    """rewrite every table the README and the site quote (``<!-- table:FILE#N -->`` blocks) from its file under docs/, then stop"""
    resume: bool = False
    """let sweeps (the bench, the supervised scripts) reuse the trials an earlier run of the same command finished, e.g. to finish an interrupted job; by default they run every trial again"""

    def __post_init__(self) -> None:
        unknown = [name for name in self.jobs if name not in JOBS]
        if unknown:
            raise ValueError(f"unknown job(s) {unknown}; choose from: {', '.join(JOBS)}")
        if self.all and self.jobs:
            raise ValueError("give --jobs or --all, not both")


def shown(command: tuple[str, ...]) -> str:
    """A command as one would type it (``python`` for this interpreter)."""
    return shlex.join(("python" if part == PYTHON else part) for part in command)


def write_tables() -> None:
    """Rewrite the quoted tables of the README and the site's pages from the files in docs/,
    and the site's home page from the README."""
    home = REPO / "docs" / "index.md"
    home.write_text(doc_tables.home_page((REPO / "README.md").read_text()))
    for page in doc_tables.pages(REPO):
        text = page.read_text()
        filled = doc_tables.fill(text, REPO / "docs")
        if filled != text:
            page.write_text(filled)
            print(f"tables rewritten: {page.relative_to(REPO)}", flush=True)


def main(args: Args) -> None:
    if args.tables:
        write_tables()
        return
    if args.list or not (args.jobs or args.all):
        for name, job in JOBS.items():
            print(f"{name}: {job.description}")
            for command in job.commands:
                print(f"    {shown(job_command(command, args.resume))}")
        if not args.list:
            raise SystemExit("name the jobs to run with --jobs NAME ... (or --all)")
        return
    for name in JOBS if args.all else args.jobs:
        job = JOBS[name]
        print(f"== {name}: {job.description}", flush=True)
        for command in (job_command(command, args.resume) for command in job.commands):
            print(f"$ {shown(command)}", flush=True)
            if not args.dry_run and subprocess.run(installed(command), cwd=REPO).returncode != 0:
                raise SystemExit(f"update_docs.py: job {name} failed at: {shown(command)}")
        for source, destination in job.copies:
            print(f"copy {source} -> {destination}", flush=True)
            if not args.dry_run:
                (REPO / destination).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(REPO / source, REPO / destination)


if __name__ == "__main__":
    run_main("update_docs.py", Args, main)
