"""Tiny trial functions for the sweep tests: module-level, so worker processes and Ray import
them, and free of torch, so those workers start fast."""

from __future__ import annotations

import os
import random
import time

from negdl.trials import Trial


def fit_line(scale: float, trial: Trial) -> dict[str, list[dict]]:
    """Fit y = w x by 50 SGD steps on data drawn from the trial's seed; one row, a file, a print."""
    seed, lr = trial.params["seed"], trial.params["lr"]
    rng = random.Random(seed)
    points = [(x, scale * x + rng.gauss(0, 0.1)) for x in (rng.uniform(-1, 1) for _ in range(64))]
    weight = 0.0
    for _ in range(50):
        weight -= lr * sum(2 * (weight * x - y) * x for x, y in points) / len(points)
    loss = sum((weight * x - y) ** 2 for x, y in points) / len(points)
    (trial.dir / "weight.txt").write_text(repr(weight))
    print(f"seed {seed} lr {lr}: loss {loss:.6f}")
    return {
        "results": [{"seed": seed, "lr": lr, "weight": weight, "loss": loss, "pid": os.getpid()}]
    }


def counted(calls: str, fail_seeds: tuple[int, ...], trial: Trial) -> dict[str, list[dict]]:
    """Append the trial's name to the file ``calls``; raise for the seeds in ``fail_seeds``.
    Its rows: ``seed * 10 + i`` for mode A (i = 0) and B (i = 1) on test set full, plus 100 on
    test set half."""
    with open(calls, "a") as handle:
        handle.write(trial.name + "\n")
    seed = trial.params["seed"]
    if seed in fail_seeds:
        raise RuntimeError(f"seed {seed} is cursed")
    return {
        "results": [
            {"seed": seed, "mode": mode, "test_set": test_set, "value": seed * 10 + i + extra}
            for i, mode in enumerate("AB")
            for test_set, extra in (("full", 0), ("half", 100))
        ]
    }


def sleepy(seconds: float, trial: Trial) -> dict[str, list[dict]]:
    """Sleep, then return one row: a trial long enough to be interrupted."""
    time.sleep(seconds)
    (trial.dir / "done.txt").write_text("done")
    return {"results": [{"seed": trial.params["seed"]}]}
