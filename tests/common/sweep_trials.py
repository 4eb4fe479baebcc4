"""Tiny trial functions for the sweep tests: module-level, so worker processes and Ray import them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from negdl.trials import Trial


def fit_line(scale: float, trial: Trial) -> dict[str, list[dict]]:
    """Fit a line by 20 SGD steps on data drawn from the trial's seed; one row, a file, a print."""
    torch.set_num_threads(1)
    seed, lr = trial.params["seed"], trial.params["lr"]
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 3, generator=generator)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) * scale + 0.1 * torch.randn(64, generator=generator)
    weights = torch.zeros(3, requires_grad=True)
    optimizer = torch.optim.SGD([weights], lr=lr)
    for _ in range(20):
        loss = ((x @ weights - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    (trial.dir / "weights.txt").write_text(" ".join(f"{w:.6f}" for w in weights.tolist()))
    print(f"seed {seed} lr {lr}: loss {loss.item():.6f}")
    return {"results": [{"seed": seed, "lr": lr, "loss": loss.item(), "pid": os.getpid()}]}


def counted(calls: str, fail_seeds: tuple[int, ...], trial: Trial) -> dict[str, list[dict]]:
    """Append the trial's name to the file ``calls``; raise for the seeds in ``fail_seeds``."""
    with open(calls, "a") as handle:
        handle.write(trial.name + "\n")
    seed = trial.params["seed"]
    if seed in fail_seeds:
        raise RuntimeError(f"seed {seed} is cursed")
    return {
        "results": [
            {"seed": seed, "mode": mode, "value": seed * 10 + i} for i, mode in enumerate("AB")
        ]
    }


def sleepy(seconds: float, trial: Trial) -> dict[str, list[dict]]:
    """Sleep, then return one row: a trial long enough to be interrupted."""
    time.sleep(seconds)
    Path(trial.dir / "done.txt").write_text("done")
    return {"results": [{"seed": trial.params["seed"]}]}
