"""Turn bench rows into a markdown report (mean ± std over seeds, ratios, targets) and a
learning-curve plot."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from negdl.results import mean_std

#: Table columns: (row key, header, decimals).
COLUMNS = (
    ("return", "return", 2),
    ("collisions_per_episode", "collisions / episode", 2),
    ("moves_per_episode", "moves / episode", 1),
    ("collision_free_share", "collision-free episodes", 2),
    ("train_time_s", "training wall time (s)", 0),
    ("env_steps_per_s", "env steps / s", 0),
)
#: The scenario the main targets are judged on.
DEFAULT_SCENARIO = ("NegCollision-v0", 10)
#: Issue 8's targets: (agent, scenario, metric, bound, ``"max"`` or ``"min"``).
TARGETS = (
    ("neg-reward-dqn", DEFAULT_SCENARIO, "collisions_per_episode", 0.5, "max"),
    ("neg-reward-dqn", DEFAULT_SCENARIO, "return", -2.0, "min"),
    ("neg-reward-dqn", DEFAULT_SCENARIO, "timesteps", 200_000, "max"),
    ("neg-reward-dqn", DEFAULT_SCENARIO, "train_time_s", 120.0, "max"),
    ("neg-action-dqn", DEFAULT_SCENARIO, "collisions_per_episode", 1.0, "max"),
    ("neg-reward-dqn", ("NegCollision-v0", 30), "collisions_per_episode", 3.0, "max"),
    ("neg-reward-dqn", ("NegCollisionCrowd-v0", 300), "collisions_per_episode", 10.0, "max"),
)
#: The learning curve's end may lie at most this share of its best value below it.
STABILITY = 0.10

Scenario = tuple[str, int]


def scenario_of(row: dict[str, Any]) -> Scenario:
    return (row["env_id"], int(row["num_obstacles"]))


def label(row: dict[str, Any]) -> str:
    """The agent's name in a table: ``algo``, or ``algo, trained on ...`` for a transferred policy."""
    return (
        f"{row['algo']}, trained on {row['trained_on']}" if row.get("trained_on") else row["algo"]
    )


def _values(rows: Sequence[dict[str, Any]], name: str, scenario: Scenario, key: str) -> list[float]:
    return [
        float(r[key])
        for r in rows
        if label(r) == name and scenario_of(r) == scenario and not math.isnan(float(r[key]))
    ]


def _mean(rows: Sequence[dict[str, Any]], name: str, scenario: Scenario, key: str) -> float | None:
    values = _values(rows, name, scenario, key)
    return statistics.mean(values) if values else None


def ratio_cells(rows: Sequence[dict[str, Any]], name: str, scenario: Scenario) -> list[str]:
    """The agent's return as a share of random's (0: perfect, 1: as bad as random) and as a
    multiple of the planner's (1: as good as the planner), from means over seeds."""
    mine = _mean(rows, name, scenario, "return")
    cells = []
    for reference in ("random", "planner"):
        theirs = _mean(rows, reference, scenario, "return")
        ok = mine is not None and theirs is not None and theirs != 0
        cells.append(f"{mine / theirs:.3g}" if ok else "-")  # type: ignore[operator]
    return cells


def _curve_stability(curves: Sequence[dict[str, Any]], algo: str, scenario: Scenario) -> str | None:
    """The stability target on the mean learning curve (return, mean over seeds)."""
    by_step: dict[int, list[float]] = defaultdict(list)
    for point in curves:
        if point["algo"] == algo and scenario_of(point) == scenario:
            by_step[int(point["timesteps"])].append(float(point["return"]))
    if len(by_step) < 2:
        return None
    mean = {step: statistics.mean(values) for step, values in sorted(by_step.items())}
    best, end = max(mean.values()), mean[max(mean)]
    bound = best - STABILITY * abs(best)
    return (
        f"- {algo}, stable: mean learning curve (return) at its end {end:.2f}, best point "
        f"{best:.2f}, within {STABILITY:.0%} means >= {bound:.2f}: {_verdict(end >= bound)}"
    )


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def target_lines(
    rows: Sequence[dict[str, Any]], curves: Sequence[dict[str, Any]] = ()
) -> list[str]:
    """Issue 8's targets, judged from the rows and curves (means over seeds); targets whose
    rows are missing are left out."""
    compare: dict[str, Callable[[float, float], bool]] = {
        "max": lambda value, bound: value <= bound,
        "min": lambda value, bound: value >= bound,
    }
    words = {"max": "at most", "min": "at least"}
    lines = []
    for algo, scenario, key, bound, kind in TARGETS:
        value = _mean(rows, algo, scenario, key)
        if value is None:
            continue
        seeds = len(_values(rows, algo, scenario, key))
        lines.append(
            f"- {algo} on {scenario[0]} with {scenario[1]} obstacles, {key.replace('_', ' ')} "
            f"{words[kind]} {bound:g}: {value:.2f} (mean of {seeds} seeds): "
            f"{_verdict(compare[kind](value, bound))}"
        )
    stability = _curve_stability(curves, "neg-reward-dqn", DEFAULT_SCENARIO)
    if stability:
        lines.append(stability)
    mine = _mean(rows, "neg-reward-dqn", DEFAULT_SCENARIO, "return")
    plain = _mean(rows, "dqn", DEFAULT_SCENARIO, "return")
    if mine is not None and plain is not None:
        lines.append(
            f"- neg-reward-dqn not worse than SB3's DQN (same extractor, observation and seeds): "
            f"return {mine:.2f} vs {plain:.2f}: {_verdict(mine >= plain)}"
        )
    if lines:
        lines.insert(0, "Targets (issue 8):")
    return lines


def bench_markdown(
    rows: Sequence[dict[str, Any]], meta: dict[str, Any], curves: Sequence[dict[str, Any]] = ()
) -> str:
    """The report: one table per scenario, the targets, and how the numbers were made."""
    status = "" if meta["complete"] else " (incomplete: the run was still going or was interrupted)"
    lines = [
        f"Command: `{meta['command']}`{status}",
        "",
        f"Machine: {meta['machine']}. Total wall time: {meta['wall_time_s'] / 60:.1f} min. Each trained agent: "
        f"{meta['total_timesteps']:,} env steps on {meta['n_envs']} envs ({meta.get('vec_env', 'dummy')}; "
        "dummy for agents acting through NegativeActionWrapper); training wall time excludes the periodic "
        f"evaluations of the learning curves. Every row is then evaluated on the same {meta['final_episodes']} "
        "episodes (500 steps each); mean ± std over seeds. The planner, random and stay train nothing. "
        "Rows 'trained on ...' are agents trained on another scenario, evaluated here without retraining. "
        "'return / random' is the agent's punishment as a share of random's; 'return / planner' as a "
        f"multiple of the planner's. Runs went {meta.get('workers', 1)} at a time, so wall times and "
        "steps/s include that sharing.",
    ]
    for scenario in dict.fromkeys(scenario_of(r) for r in rows):
        here = [r for r in rows if scenario_of(r) == scenario]
        # Agents trained here first, then those trained elsewhere.
        names = list(
            dict.fromkeys(label(r) for r in sorted(here, key=lambda r: bool(r["trained_on"])))
        )
        seeds = sorted({r["seed"] for r in rows if scenario_of(r) == scenario})
        env_id, n = scenario
        lines += ["", f"**{env_id}, {n} obstacles** (seeds {', '.join(map(str, seeds))})", ""]
        headers = [header for _, header, _ in COLUMNS[:2]] + ["return / random", "return / planner"]
        headers += [header for _, header, _ in COLUMNS[2:]]
        lines.append("| agent | " + " | ".join(headers) + " |")
        lines.append("| --- |" + " ---: |" * len(headers))
        for name in names:
            cells = [
                mean_std(_values(rows, name, scenario, key), digits) for key, _, digits in COLUMNS
            ]
            cells = cells[:2] + ratio_cells(rows, name, scenario) + cells[2:]
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

    native = [r for r in rows if not r.get("trained_on")]
    every = list(dict.fromkeys(scenario_of(r) for r in native))
    metrics = (
        ("return", "return per episode"),
        ("collisions_per_episode", "collisions per episode"),
    )
    fig, axes = plt.subplots(len(every), 2, figsize=(11, 3.4 * len(every)), squeeze=False)
    colours = dict(
        zip(dict.fromkeys(r["algo"] for r in native), plt.get_cmap("tab10").colors, strict=False)
    )
    for i, scenario in enumerate(every):
        for j, (key, title) in enumerate(metrics):
            ax = axes[i][j]
            by_step: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
            for point in curves:
                if scenario_of(point) == scenario:
                    by_step[point["algo"]][int(point["timesteps"])].append(float(point[key]))
            for algo, steps in by_step.items():
                xs = sorted(steps)
                mean = [statistics.mean(steps[x]) for x in xs]
                std = [statistics.stdev(steps[x]) if len(steps[x]) > 1 else 0.0 for x in xs]
                ax.plot(xs, mean, label=algo, color=colours[algo])
                ax.fill_between(
                    xs,
                    [m - s for m, s in zip(mean, std, strict=True)],
                    [m + s for m, s in zip(mean, std, strict=True)],
                    color=colours[algo],
                    alpha=0.2,
                )
            for algo in colours:
                if (
                    algo not in by_step
                    and (value := _mean(native, algo, scenario, key)) is not None
                ):
                    ax.axhline(
                        value, linestyle="--", color=colours[algo], label=f"{algo} (baseline)"
                    )
            if key == "collisions_per_episode":
                ax.set_yscale("symlog", linthresh=1.0)
                ax.set_ylim(bottom=0)  # the std band of a count can dip below 0; counts cannot
            ax.set_title(f"{scenario[0]}, {scenario[1]} obstacles: {title}", fontsize=10)
            ax.set_xlabel("env steps")
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
