"""Seed comparisons as Agarwal et al. recommend ("Deep Reinforcement Learning at the Edge of the
Statistical Precipice", NeurIPS 2021): interquartile mean (IQM) over runs, percentile intervals
from a stratified bootstrap (runs resampled within each task), and performance profiles.

They follow ``rliable``'s definitions in numpy: ``rliable`` 1.2 pins ``arch<8``, and arch 7.2
fails to import next to pandas 3, so it is not a dependency.

A *task* is a scene agents train on and a *run* one seed's final evaluation. Scores compare
across tasks normalised by the random baseline of the same task: ``1 - collisions / random's
collisions`` (0: as bad as random, 1: no collision at all).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neg_agents.bench_report import metric_values
from negdl.results import format_number

#: Bootstrap resamples and confidence level of every interval.
BOOTSTRAP_REPS = 2000
CONFIDENCE = 0.95


def iqm(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle half of the scores along ``axis``.

    ``int(0.25 * n)`` scores are cut from each end, as ``scipy.stats.trim_mean(scores, 0.25)``
    and ``rliable.metrics.aggregate_iqm`` do (with 3 runs nothing is cut: the mean).
    """
    scores = np.sort(np.asarray(scores, dtype=float), axis=axis)
    n = scores.shape[axis]
    cut = int(0.25 * n)
    return np.take(scores, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def stratified_bootstrap(
    tasks: Sequence[np.ndarray],
    statistic: Callable[[np.ndarray], np.ndarray] = iqm,
    reps: int = BOOTSTRAP_REPS,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float, float]:
    """The statistic of all runs and its percentile confidence interval.

    Each resample draws, for every task on its own, as many runs as it has with replacement
    (``rliable``'s ``StratifiedBootstrap``), then applies ``statistic`` to all of them together.

    :param tasks: one array of run scores per task.
    :param statistic: maps ``(..., runs)`` to ``(...)``, e.g. :func:`iqm` or ``np.mean``.
    :param reps: bootstrap resamples, >= 1.
    :param confidence: level of the interval, in (0, 1).
    :param seed: seed of the resampling, so a report is reproducible.
    :return: ``(point estimate, low, high)``.
    """
    if not tasks or any(len(runs) == 0 for runs in tasks):
        raise ValueError("every task needs at least one run")
    if reps < 1 or not 0 < confidence < 1:
        raise ValueError(f"need reps >= 1 and 0 < confidence < 1, got {reps}, {confidence}")
    point, low, high = _bootstrap(tasks, statistic, reps, confidence, seed)
    return float(point), float(low), float(high)


def _bootstrap(
    tasks: Sequence[np.ndarray],
    statistic: Callable[[np.ndarray], np.ndarray],
    reps: int,
    confidence: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``statistic`` of all runs and its percentile interval over ``reps`` stratified resamples
    ``(reps, total runs)``: each task's runs drawn with replacement from that task alone."""
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(runs, dtype=float) for runs in tasks]
    samples = np.concatenate(
        [runs[rng.integers(len(runs), size=(reps, len(runs)))] for runs in arrays], axis=1
    )
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(np.atleast_1d(statistic(samples)), [tail, 100 - tail], axis=0)
    return statistic(np.concatenate(arrays)), low, high


def performance_profile(
    tasks: Sequence[np.ndarray],
    thresholds: np.ndarray,
    reps: int = BOOTSTRAP_REPS,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The share of runs whose score exceeds each threshold, with a stratified-bootstrap band.

    :param tasks: one array of run scores per task.
    :param thresholds: the scores ``tau`` to evaluate the profile at.
    :return: ``(profile, low, high)``, each shaped like ``thresholds``.
    """
    thresholds = np.asarray(thresholds, dtype=float)

    def share_above(runs: np.ndarray) -> np.ndarray:
        return (runs[..., None, :] > thresholds[:, None]).mean(axis=-1)

    return _bootstrap(tasks, share_above, reps, confidence, seed)


def _runs(rows: Sequence[dict[str, Any]], algo: str, scene: str, key: str) -> np.ndarray:
    """The values of ``key`` of ``algo``'s runs trained (if at all) and evaluated on ``scene``
    (a policy moved there from another scene is labelled apart)."""
    return np.array(metric_values(rows, algo, scene, key), dtype=float)


def trained_scenes(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The scenes of ``rows`` that some agent in them trained on (the tasks of the statistics)."""
    scenes = {r["scene"] for r in rows}
    return [s for s in dict.fromkeys(r.get("trained_on") for r in rows) if s and s in scenes]


def normalised_scores(rows: Sequence[dict[str, Any]]) -> dict[str, list[np.ndarray]]:
    """Per agent, one array per scene trained on of ``1 - collisions / random's mean collisions``.

    Empty when the rows have no random baseline (or random never collided) for some scene.
    """
    counts = trained_scenes(rows)
    reference = {n: _runs(rows, "random", n, "collisions_per_episode") for n in counts}
    if not counts or any(len(runs) == 0 or runs.mean() <= 0 for runs in reference.values()):
        return {}
    scores = {}
    for algo in dict.fromkeys(r["algo"] for r in rows):
        per_task = [
            1 - _runs(rows, algo, n, "collisions_per_episode") / reference[n].mean() for n in counts
        ]
        if all(len(runs) for runs in per_task):
            scores[algo] = per_task
    return scores


def _interval(point: float, low: float, high: float, digits: int) -> str:
    return (
        f"{format_number(point, digits)} "
        f"[{format_number(low, digits)}, {format_number(high, digits)}]"
    )


def seed_statistics_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown section: per agent, the IQM of collisions per episode on each scene agents
    train on (runs trained there) and of the random-normalised score over those scenes, each
    with its 95% stratified-bootstrap interval; and the performance-profile plot (see
    :func:`plot_performance_profiles`)."""
    counts = trained_scenes(rows)
    algos = list(dict.fromkeys(r["algo"] for r in rows))
    normalised = normalised_scores(rows)
    headers = [f"collisions / episode, {n}" for n in counts]
    if normalised:
        headers.append("share of random's collisions avoided, all scenes")
    lines = [
        "",
        f"**Across seeds** (Agarwal et al. 2021): interquartile mean over runs [{CONFIDENCE:.0%} "
        f"confidence interval from a stratified bootstrap, {BOOTSTRAP_REPS} resamples]. With "
        "fewer than 4 runs per cell the IQM is the plain mean and the interval only spans the "
        "seeds seen.",
        "",
        "| agent | " + " | ".join(headers) + " |",
        "| --- |" + " ---: |" * len(headers),
    ]
    for algo in algos:
        cells = []
        for n in counts:
            runs = _runs(rows, algo, n, "collisions_per_episode")
            cells.append(_interval(*stratified_bootstrap([runs]), 2) if len(runs) else "-")
        if normalised:
            tasks = normalised.get(algo)
            cells.append(_interval(*stratified_bootstrap(tasks), 2) if tasks else "-")
        lines.append(f"| {algo} | " + " | ".join(cells) + " |")
    if normalised:
        lines += [
            "",
            "![Performance profiles: share of runs above each normalised score]"
            "(performance_profile.png)",
        ]
    return "\n".join(lines) + "\n"


def plot_performance_profiles(rows: Sequence[dict[str, Any]], path: str | Path) -> bool:
    """Plot, per agent, the share of runs (seeds x obstacle counts) whose normalised score
    exceeds each threshold, with its 95% bootstrap band; return False (and draw nothing) when
    the rows have no random baseline to normalise by."""
    normalised = normalised_scores(rows)
    if not normalised:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    every_score = np.concatenate([np.concatenate(tasks) for tasks in normalised.values()])
    thresholds = np.linspace(min(every_score.min(), 0.0) - 0.05, 1.0, 201)
    fig, ax = plt.subplots(figsize=(7, 4))
    colours = matplotlib.color_sequences["tab10"]
    for index, (algo, tasks) in enumerate(normalised.items()):
        profile, low, high = performance_profile(tasks, thresholds)
        colour = colours[index % len(colours)]
        ax.plot(thresholds, profile, label=algo, color=colour)
        ax.fill_between(thresholds, low, high, color=colour, alpha=0.15)
    ax.set_xlabel("normalised score tau (1 - collisions / random's collisions)")
    ax.set_ylabel("share of runs with score > tau")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
