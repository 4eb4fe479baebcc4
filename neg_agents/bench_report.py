"""Turn bench rows into a markdown report (mean ± std over seeds, ratios, targets), seed
statistics and plots.

Seed comparisons follow Agarwal et al. ("Deep Reinforcement Learning at the Edge of the
Statistical Precipice", NeurIPS 2021): interquartile mean (IQM) over runs, percentile intervals
from a stratified bootstrap (runs resampled within each task), and performance profiles, with
``rliable``'s definitions in numpy (``rliable`` 1.2 pins ``arch<8``, and arch 7.2 fails to
import next to pandas 3). A *task* is a scene agents train on, a *run* one seed's final
evaluation; scores compare across tasks normalised by the random baseline of the same task:
``1 - collisions / random's collisions`` (0: as bad as random, 1: no collision at all).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from neg_agents.algos import MAIN_ALGO
from negdl.results import format_number, mean_std

#: Per-scene table columns after the collisions, return and planner ratio: (row key, header,
#: decimals), each a mean ± std over seeds.
COLUMNS = (
    ("moves_per_episode", "moves / episode", 1),
    ("collision_free_share", "collision-free episodes", 2),
    ("train_collisions", "collisions while learning", 0),
    ("train_collisions_per_1k", "per 1,000 training steps", 2),
    ("train_time_s", "training wall time (s)", 0),
    ("env_steps_per_s", "env steps / s", 0),
)
#: Scene names of the bench (``neg_agents.bench.Scenario.name``) the targets refer to.
DEFAULT_SCENE = "NegCollision-v0-n10"
N30_SCENE = "NegCollision-v0-n30"
CROWD_SCENE = "NegCollisionCrowd-v0"
MIX_SCENE = "NegCollisionMix-v0"
#: The generalist's label: the main job trained on the scene mix.
GENERALIST = f"{MAIN_ALGO}, trained on {MIX_SCENE}"
#: The negative-action agents the "acts as well as it forbids" targets judge.
NEG_ACTION_ALGOS = ("neg-action-dqn", "neg-action-dqn-shielded")
#: Issue 19's targets on one agent's mean over seeds: (agent label, scene, metric, bound,
#: ``"max"``/``"min"``/``"planner"`` (return at least ``bound`` times the planner's)).
TARGETS = (
    (GENERALIST, DEFAULT_SCENE, "collisions_per_episode", 0.2, "max"),
    (GENERALIST, N30_SCENE, "collisions_per_episode", 0.5, "max"),
    (GENERALIST, CROWD_SCENE, "collisions_per_episode", 1.0, "max"),
    (GENERALIST, DEFAULT_SCENE, "return", 3.0, "planner"),
    (GENERALIST, N30_SCENE, "return", 3.0, "planner"),
    (GENERALIST, CROWD_SCENE, "return", 3.0, "planner"),
    (MAIN_ALGO, DEFAULT_SCENE, "collisions_per_episode", 0.1, "max"),
    (MAIN_ALGO, DEFAULT_SCENE, "return", -0.5, "min"),
    *((name, DEFAULT_SCENE, "collisions_per_episode", 0.1, "max") for name in NEG_ACTION_ALGOS),
)
#: The column holding each metric's 95% confidence half-width over episodes.
CI_KEYS = {"collisions_per_episode": "collisions_ci95", "return": "return_ci95"}
#: The learning curve's end may lie at most this share of its best value below it.
STABILITY = 0.10


def label(row: dict[str, Any]) -> str:
    """The agent's name in a table: ``algo`` where it trained (or for a baseline), ``algo,
    trained on <scene>`` for a policy moved from the scene it trained on."""
    trained_on = row.get("trained_on") or ""
    if trained_on in ("", row["scene"]):
        return row["algo"]
    return f"{row['algo']}, trained on {trained_on}"


def metric_values(rows: Sequence[dict[str, Any]], name: str, scene: str, key: str) -> list[float]:
    """The numbers of ``key`` in the rows of agent ``name`` (see :func:`label`) on ``scene``."""
    found = [r.get(key) for r in rows if label(r) == name and r["scene"] == scene]
    return [float(v) for v in found if v not in ("", None) and not math.isnan(float(v))]


def _mean(rows: Sequence[dict[str, Any]], name: str, scene: str, key: str) -> float | None:
    values = metric_values(rows, name, scene, key)
    return statistics.mean(values) if values else None


def planner_multiple(rows: Sequence[dict[str, Any]], name: str, scene: str) -> str:
    """The agent's return as a multiple of the planner's (1: as good as the planner)."""
    mine, theirs = _mean(rows, name, scene, "return"), _mean(rows, "planner", scene, "return")
    if mine is None or theirs is None:
        return "-"
    if theirs == 0:
        return "1" if mine == 0 else "inf"
    return f"{mine / theirs:.3g}"


def _episode_ci(rows: Sequence[dict[str, Any]], name: str, scene: str, key: str) -> str:
    """Mean over seeds with the mean 95% half-width over episodes, e.g. ``0.12 ± 0.05``."""
    values = metric_values(rows, name, scene, key)
    if not values:
        return "-"
    half = metric_values(rows, name, scene, CI_KEYS[key])
    text = f"{statistics.mean(values):.2f}"
    return text + (f" ± {statistics.mean(half):.2f}" if half else "")


def _curve_stability(
    curves: Sequence[dict[str, Any]], algo: str, scene: str
) -> tuple[str, str, bool] | None:
    """The stability target on the mean learning curve (return, mean over seeds)."""
    by_step: dict[int, list[float]] = defaultdict(list)
    for point in curves:
        if point["algo"] == algo and point["scene"] == scene:
            by_step[int(point["timesteps"])].append(float(point["return"]))
    if len(by_step) < 2:
        return None
    mean = {step: statistics.mean(values) for step, values in sorted(by_step.items())}
    best, end = max(mean.values()), mean[max(mean)]
    bound = best - STABILITY * abs(best)
    return (
        f"{algo} on {scene}, stable: the mean learning curve's end (return, validation "
        f"episodes) within {STABILITY:.0%} of its best point",
        f"end {end:.2f}, best {best:.2f} (bound {bound:.2f})",
        end >= bound,
    )


def target_lines(
    rows: Sequence[dict[str, Any]], curves: Sequence[dict[str, Any]] = ()
) -> list[str]:
    """Issue 19's targets as a table (target, measured, met or missed), judged from the rows and
    curves (means over seeds); targets whose rows are missing are left out, and the table is
    empty when all are."""
    judged: list[tuple[str, str, bool]] = []
    for name, scene, key, bound, kind in TARGETS:
        value = _mean(rows, name, scene, key)
        if value is None:
            continue
        seeds = len(metric_values(rows, name, scene, key))
        measured = f"{value:.2f} (mean of {seeds} seeds)"
        if kind != "planner":
            words = "at most" if kind == "max" else "at least"
            target = f"{name} on {scene}, {key.replace('_', ' ')} {words} {bound:g}"
            judged.append((target, measured, value <= bound if kind == "max" else value >= bound))
        elif (planner := _mean(rows, "planner", scene, key)) is not None:
            limit = bound * planner
            target = f"{name} on {scene}, return at least {bound:g}x the planner's ({limit:.2f})"
            judged.append((target, measured, value >= limit))
    worst = metric_values(rows, MAIN_ALGO, DEFAULT_SCENE, "collisions_per_episode")
    if worst:
        target = f"{MAIN_ALGO} on {DEFAULT_SCENE}, every seed at most 0.2 collisions per episode"
        judged.append((target, f"worst seed {max(worst):.2f}", max(worst) <= 0.2))
    reference = _mean(rows, "neg-reward-dqn", DEFAULT_SCENE, "moves_per_episode")
    for name in NEG_ACTION_ALGOS:
        moves = _mean(rows, name, DEFAULT_SCENE, "moves_per_episode")
        if moves is not None and reference:
            target = f"{name} on {DEFAULT_SCENE}, moves per episode at most 1.5x neg-reward-dqn's"
            judged.append((target, f"{moves:.0f} vs {reference:.0f}", moves <= 1.5 * reference))
    means = [
        _mean(rows, a, DEFAULT_SCENE, key)
        for key in ("train_collisions", "return")
        for a in (MAIN_ALGO, "dqn")
    ]
    if all(value is not None for value in means):
        safe, plain, safe_return, plain_return = cast(list[float], means)
        fewer = plain / safe if safe else math.inf
        judged.append(
            (
                f"{MAIN_ALGO} on {DEFAULT_SCENE}: at least 5x fewer collisions while learning "
                "than SB3's DQN, final return at most 10% worse",
                f"{fewer:.1f}x fewer ({safe:.0f} vs {plain:.0f}), return {safe_return:.2f} vs "
                f"{plain_return:.2f}",
                fewer >= 5 and safe_return >= plain_return - 0.1 * abs(plain_return),
            )
        )
    for algo, scene in ((MAIN_ALGO, DEFAULT_SCENE), (MAIN_ALGO, MIX_SCENE)):
        if stability := _curve_stability(curves, algo, scene):
            judged.append(stability)
    if not judged:
        return []
    return [
        "**Targets** (issue 19), judged from the rows above:",
        "",
        "| target | measured | |",
        "| --- | --- | --- |",
        *(
            f"| {target} | {measured} | {'met' if ok else '**missed**'} |"
            for target, measured, ok in judged
        ),
    ]


def scene_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One table, every agent on every scene: collisions per episode (mean over seeds) and the
    return as a multiple of the planner's."""
    scenes = list(dict.fromkeys(r["scene"] for r in rows))
    lines = ["| agent | " + " | ".join(scenes) + " |", "| --- |" + " ---: |" * len(scenes)]
    for algo, trained_on in dict.fromkeys(_agent_key(r) for r in rows):
        cells = []
        for scene in scenes:
            here = [r for r in rows if _agent_key(r) == (algo, trained_on) and r["scene"] == scene]
            if not here:
                cells.append("-")
                continue
            collisions = statistics.mean(float(r["collisions_per_episode"]) for r in here)
            cells.append(f"{collisions:.2f} ({planner_multiple(rows, label(here[0]), scene)}x)")
        who = f"{algo}, trained on {trained_on}" if trained_on else algo
        lines.append(f"| {who} | " + " | ".join(cells) + " |")
    return lines


def _agent_key(row: dict[str, Any]) -> tuple[str, str]:
    return row["algo"], row.get("trained_on") or ""


def _time_sentence(meta: dict[str, Any]) -> str:
    """How long the bench took: this invocation, and the trials' own times (which a resumed
    invocation does not contain)."""
    text = f"Total wall time: {meta['wall_time_s'] / 60:.1f} min"
    if meta.get("resumed"):
        text += (
            f" for this invocation, which reused {meta['resumed']} trials an earlier invocation "
            "of the same command had finished"
        )
    if meta.get("trial_time_s"):
        text += (
            f"; the trials' own wall times add up to {meta['trial_time_s'] / 60:.1f} min, "
            f"{meta.get('workers', 1)} at a time"
        )
    return text + "."


def bench_markdown(
    rows: Sequence[dict[str, Any]], meta: dict[str, Any], curves: Sequence[dict[str, Any]] = ()
) -> str:
    """The report: the scene table, one table per scene, the targets, how the numbers were made."""
    status = "" if meta["complete"] else " (incomplete: the run was still going or was interrupted)"
    mix = meta.get("mix_timesteps")
    vec_env = meta.get("vec_env", "dummy")
    if vec_env == "native":  # the one kind swapped for the single envs the wrapper needs
        vec_env += "; dummy for agents acting through NegativeActionWrapper"
    lines = [
        f"Command: `{meta['command']}`{status}",
        "",
        f"Machine: {meta['machine']}. {_time_sentence(meta)} Each trained agent: "
        f"{meta['total_timesteps']:,} env steps on {meta['n_envs']} envs"
        + (f" ({mix:,} on {MIX_SCENE}, the generalists)" if mix else "")
        + f" ({vec_env}); "
        "training wall time excludes the periodic evaluations of the learning curves, which use "
        f"the same {meta.get('eval_episodes', '?')} validation episodes at every point (seeds from "
        "10,000 + the training seed). "
        f"Every row is measured on the same {meta['final_episodes']} held-out test episodes per scene "
        f"({meta.get('episode_steps', 500)} steps each, seeds from {meta.get('test_seed', '?'):,}), "
        "which no training, tuning or "
        "model selection ever saw; mean over seeds, ± the mean 95% confidence half-width over "
        "episodes. The planner, random and stay train nothing (the planner and stay are "
        "deterministic: one run). Rows 'trained on ...' are agents trained on another scene and "
        "evaluated here without retraining. 'return / planner' is the agent's punishment as a "
        "multiple of the planner's (1: as good as the planner). Collisions while learning: every "
        "collision in the training envs, exploration included. Runs went "
        f"{meta.get('workers', 1)} at a time, so wall times and steps/s include that sharing.",
        "",
        "**Every agent on every scene**: collisions per episode (return as a multiple of the "
        "planner's)",
        "",
        *scene_table(rows),
    ]
    headers = ["collisions / episode", "return", "return / planner"]
    headers += [header for _, header, _ in COLUMNS]
    for scene in dict.fromkeys(r["scene"] for r in rows):
        here = [r for r in rows if r["scene"] == scene]
        # Agents where they trained first, then those moved here from another scene.
        names = dict.fromkeys(label(r) for r in sorted(here, key=lambda r: label(r) != r["algo"]))
        seeds = sorted({r["seed"] for r in here})
        lines += ["", f"**{scene}** (seeds {', '.join(map(str, seeds))})", ""]
        lines.append("| agent | " + " | ".join(headers) + " |")
        lines.append("| --- |" + " ---: |" * len(headers))
        for name in names:
            cells = [
                _episode_ci(rows, name, scene, "collisions_per_episode"),
                _episode_ci(rows, name, scene, "return"),
                planner_multiple(rows, name, scene),
            ]
            cells += [
                mean_std(metric_values(rows, name, scene, key), digits)
                for key, _, digits in COLUMNS
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    targets = target_lines(rows, curves)
    if targets:
        lines += ["", *targets]
    return "\n".join(lines) + "\n"


def plot_learning_curves(
    rows: Sequence[dict[str, Any]], curves: Sequence[dict[str, Any]], path: str | Path
) -> None:
    """Return and collisions per episode vs env steps, one line per agent (mean over seeds, ± std
    band), one row of panels per scenario; untrained agents as dashed horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    native = [r for r in rows if r.get("trained_on") in ("", r["scene"])]
    every = list(dict.fromkeys(point["scene"] for point in curves or native))
    metrics: tuple[tuple[str, str], ...] = (
        ("return", "return per episode"),
        ("collisions_per_episode", "collisions per episode"),
    )
    if any("train_collisions" in point for point in curves):
        metrics += (("train_collisions", "collisions while learning (total)"),)
    fig, axes = plt.subplots(
        len(every), len(metrics), figsize=(5.5 * len(metrics), 3.4 * len(every)), squeeze=False
    )
    algos = dict.fromkeys(r["algo"] for r in native)
    colours = dict(zip(algos, matplotlib.color_sequences["tab10"], strict=False))
    for i, scenario in enumerate(every):
        for j, (key, title) in enumerate(metrics):
            ax = axes[i][j]
            by_step: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
            for point in curves:
                if point["scene"] == scenario and point.get(key) not in (None, ""):
                    by_step[point["algo"]][int(point["timesteps"])].append(float(point[key]))
            for algo, steps in by_step.items():
                xs = sorted(steps)
                mean = np.array([statistics.mean(steps[x]) for x in xs])
                std = np.array([statistics.stdev(steps[x]) if len(steps[x]) > 1 else 0 for x in xs])
                ax.plot(xs, mean, label=algo, color=colours[algo])
                ax.fill_between(xs, mean - std, mean + std, color=colours[algo], alpha=0.2)
            for algo in colours:
                value = _mean(native, algo, scenario, key)
                if algo not in by_step and value is not None:
                    ax.axhline(value, ls="--", color=colours[algo], label=f"{algo} (baseline)")
            if key == "collisions_per_episode":
                ax.set_yscale("symlog", linthresh=1.0)
                ax.set_ylim(bottom=0)  # the std band of a count can dip below 0; counts cannot
            ax.set_title(f"{scenario}: {title}", fontsize=10)
            ax.set_xlabel("env steps")
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


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
    statistic: Callable[[np.ndarray], Any] = iqm,
    reps: int = BOOTSTRAP_REPS,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[Any, Any, Any]:
    """The statistic of all runs and its percentile confidence interval, ``(point, low, high)``.

    Each of ``reps`` resamples draws, for every task on its own, as many runs as it has with
    replacement (``rliable``'s ``StratifiedBootstrap``), then applies ``statistic`` (``(...,
    runs)`` to ``(...)``, e.g. :func:`iqm` or ``np.mean``) to all of them together.

    :param tasks: one array of run scores per task.
    :param confidence: level of the interval, in (0, 1).
    :param seed: seed of the resampling, so a report is reproducible.
    """
    if not tasks or any(len(runs) == 0 for runs in tasks):
        raise ValueError("every task needs at least one run")
    if reps < 1 or not 0 < confidence < 1:
        raise ValueError(f"need reps >= 1 and 0 < confidence < 1, got {reps}, {confidence}")
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(runs, dtype=float) for runs in tasks]
    samples = np.concatenate(
        [runs[rng.integers(len(runs), size=(reps, len(runs)))] for runs in arrays], axis=1
    )
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(np.atleast_1d(statistic(samples)), [tail, 100 - tail], axis=0)
    point = statistic(np.concatenate(arrays))
    return (float(point), float(low), float(high)) if np.ndim(point) == 0 else (point, low, high)


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

    return stratified_bootstrap(tasks, share_above, reps, confidence, seed)


def _runs(rows: Sequence[dict[str, Any]], algo: str, scene: str) -> np.ndarray:
    """Collisions per episode of ``algo``'s runs trained (if at all) and evaluated on ``scene``."""
    return np.array(metric_values(rows, algo, scene, "collisions_per_episode"), dtype=float)


def trained_scenes(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The scenes of ``rows`` that some agent in them trained on (the tasks of the statistics)."""
    scenes = {r["scene"] for r in rows}
    return [s for s in dict.fromkeys(r.get("trained_on") for r in rows) if s and s in scenes]


def normalised_scores(rows: Sequence[dict[str, Any]]) -> dict[str, list[np.ndarray]]:
    """Per agent, one array per scene trained on of ``1 - collisions / random's mean collisions``.

    Empty when the rows have no random baseline (or random never collided) for some scene.
    """
    scenes = trained_scenes(rows)
    reference = {scene: _runs(rows, "random", scene) for scene in scenes}
    if not scenes or any(len(runs) == 0 or runs.mean() <= 0 for runs in reference.values()):
        return {}
    scores = {}
    for algo in dict.fromkeys(r["algo"] for r in rows):
        per_task = [1 - _runs(rows, algo, scene) / reference[scene].mean() for scene in scenes]
        if all(len(runs) for runs in per_task):
            scores[algo] = per_task
    return scores


def _interval(point: float, low: float, high: float) -> str:
    return f"{format_number(point)} [{format_number(low)}, {format_number(high)}]"


def seed_statistics_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown section: per agent, the IQM of collisions per episode on each scene agents
    train on (runs trained there) and of the random-normalised score over those scenes, each
    with its 95% stratified-bootstrap interval; and the performance-profile plot (see
    :func:`plot_performance_profiles`)."""
    scenes = trained_scenes(rows)
    algos = list(dict.fromkeys(r["algo"] for r in rows))
    normalised = normalised_scores(rows)
    headers = [f"collisions / episode, {scene}" for scene in scenes]
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
        for scene in scenes:
            runs = _runs(rows, algo, scene)
            cells.append(_interval(*stratified_bootstrap([runs])) if len(runs) else "-")
        if normalised:
            tasks = normalised.get(algo)
            cells.append(_interval(*stratified_bootstrap(tasks)) if tasks else "-")
        lines.append(f"| {algo} | " + " | ".join(cells) + " |")
    if normalised:
        lines += [
            "",
            "![Performance profiles: share of runs above each normalised score]"
            "(performance_profile.png)",
        ]
    return "\n".join(lines) + "\n"


def plot_performance_profiles(rows: Sequence[dict[str, Any]], path: str | Path) -> bool:
    """Plot, per agent, the share of runs (seeds x scenes trained on) whose normalised score
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
