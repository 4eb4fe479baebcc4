"""Run folders that never clobber each other, and finding the latest one.

Layout (rl-zoo3's): ``<out_dir>/<algo>/<env_id>_<n>/``, ``n`` one more than the highest
already there, starting at 1; or ``<out_dir>/<algo>/<run_name>/`` for a name the user chose.
A folder is a run once it holds ``config.json`` (written when training starts).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from neg_agents.model_io import CONFIG_NAME


def new_run_dir(
    out_dir: str | Path,
    algo: str,
    env_id: str,
    run_name: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Create and return a fresh folder for one training run under ``out_dir``.

    Without ``run_name``: ``<out_dir>/<algo>/<env_id>_<n>``, the next free ``n`` (created
    atomically, so two runs started together get different folders). With ``run_name``:
    ``<out_dir>/<algo>/<run_name>``, refused if it already holds something unless
    ``overwrite``, which empties a previous run there first.

    :raises ValueError: the named folder exists (without ``overwrite``), is not a run, or
        ``overwrite`` came without ``run_name``.
    """
    base = Path(out_dir) / algo
    if run_name is None:
        if overwrite:
            raise ValueError(
                "overwrite replaces the run named by run_name; without a name every run gets a "
                "new folder, so there is nothing to overwrite"
            )
        base.mkdir(parents=True, exist_ok=True)
        pattern = re.compile(re.escape(env_id) + r"_(\d+)")
        found = [pattern.fullmatch(child.name) for child in base.iterdir() if child.is_dir()]
        n = max((int(match.group(1)) for match in found if match), default=0) + 1
        while True:
            run_dir = base / f"{env_id}_{n}"
            try:
                run_dir.mkdir()
                return run_dir
            except FileExistsError:
                n += 1
    if not run_name or run_name in (".", "..") or re.search(r"[/\\]", run_name):
        raise ValueError(
            f"run name must be a plain folder name (no '/', not '.' or '..'), got {run_name!r}"
        )
    run_dir = base / run_name
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise ValueError(
                f"{run_dir} already holds a run; pass --overwrite to replace it, or choose "
                "another --run-name (or none, for a new numbered folder)"
            )
        if not (run_dir / CONFIG_NAME).is_file():
            raise ValueError(
                f"{run_dir} is not a negdl run (it has no {CONFIG_NAME}); --overwrite only "
                "replaces runs, so move or delete that folder yourself"
            )
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def latest_run(out_dir: str | Path, algo: str, env_id: str) -> Path | None:
    """The run folder under ``<out_dir>/<algo>/`` whose ``config.json`` says ``env_id`` and that
    saved its model last (by the model file's time), or None if there is none."""
    candidates = []
    for model in (Path(out_dir) / algo).glob("*/model.zip"):
        try:
            config = json.loads((model.parent / CONFIG_NAME).read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if config.get("env_id") == env_id:
            candidates.append((model.stat().st_mtime, model.parent))
    return max(candidates, default=(None, None))[1]


def model_file(path: str | Path) -> Path:
    """``path`` itself for a model file, ``<path>/model.zip`` for a run folder."""
    path = Path(path)
    return path / "model.zip" if path.is_dir() else path
