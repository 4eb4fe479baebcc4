"""Regenerate the committed results in docs/: the one command that writes there.

Every other command writes into runs/ by default; this script runs them with their outputs
pointed into docs/, one job per result (the jobs: ``update_docs_jobs.txt`` beside it). Sweeps get
``--no-resume`` (a result never reuses an older version's trials) unless ``--resume``.

    python scripts/update_docs.py --list                  # the jobs, their commands and run times
    python scripts/update_docs.py --jobs envs-bench occlusions
    python scripts/update_docs.py --all --dry-run         # print the commands, run nothing
    python scripts/update_docs.py --tables                # rewrite the quoted tables from docs/
"""

from __future__ import annotations

import re
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


@dataclass
class Job:
    """One result in docs/: what it is (and how long it takes), the commands that make it (run
    from the repository root in order) and ``(source, destination)`` files copied afterwards."""

    description: str
    commands: list[tuple[str, ...]] = field(default_factory=list)
    copies: list[tuple[str, ...]] = field(default_factory=list)


def load_jobs(path: Path) -> dict[str, Job]:
    """The jobs of ``path`` (update_docs_jobs.txt, whose header says its format), by name."""
    jobs: dict[str, Job] = {}
    for line in re.sub(r"\\\n\s*", "", path.read_text()).splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            name, description = line.split(": ", 1)
            jobs[name] = Job(description)
        elif (words := shlex.split(line))[0] == "copy":
            jobs[name].copies.append(tuple(words[1:]))
        else:
            jobs[name].commands.append((PYTHON if words[0] == "python" else words[0], *words[1:]))
    return jobs


#: Every job, by name, from update_docs_jobs.txt beside this script.
JOBS = load_jobs(REPO / "scripts" / "update_docs_jobs.txt")


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
    (REPO / "docs" / "index.md").write_text(doc_tables.home_page((REPO / "README.md").read_text()))
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
