"""Turn bench rows into a markdown report (mean ± std over seeds, targets) and a learning-curve plot."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
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


def _values(rows: Sequence[dict[str, Any]], algo: str, n: int, key: str) -> list[float]:
    return [
        float(r[key])
        for r in rows
        if r["algo"] == algo and r["num_obstacles"] == n and not math.isnan(float(r[key]))
    ]


def _mean(rows: Sequence[dict[str, Any]], algo: str, n: int, key: str) -> float | None:
    values = _values(rows, algo, n, key)
    return statistics.mean(values) if values else None


def target_lines(rows: Sequence[dict[str, Any]], n: int = 10) -> list[str]:
    """Issue 3's targets on the default env, judged from the rows (means over seeds)."""
    c = {
        algo: _mean(rows, algo, n, "collisions_per_episode")
        for algo in ("neg-reward-dqn", "neg-action-dqn", "random", "stay")
    }
    seeds = len(_values(rows, "neg-reward-dqn", n, "collisions_per_episode"))

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**missed**"

    lines = []
    if c["neg-reward-dqn"] is not None and c["random"] is not None:
        lines.append(
            f"- negative-reward DQN at most half of random's collisions: {c['neg-reward-dqn']:.2f} vs "
            f"{c['random']:.2f} / 2 = {c['random'] / 2:.2f}: {verdict(c['neg-reward-dqn'] <= c['random'] / 2)}"
        )
    if c["neg-reward-dqn"] is not None and c["stay"] is not None:
        lines.append(
            f"- negative-reward DQN fewer collisions than always-stay: {c['neg-reward-dqn']:.2f} vs "
            f"{c['stay']:.2f}: {verdict(c['neg-reward-dqn'] < c['stay'])}"
        )
    if c["neg-action-dqn"] is not None and c["random"] is not None:
        lines.append(
            f"- negative-action DQN fewer collisions than random: {c['neg-action-dqn']:.2f} vs "
            f"{c['random']:.2f}: {verdict(c['neg-action-dqn'] < c['random'])}"
        )
    if lines:
        lines.insert(
            0, f"Targets on `NegCollision-v0` with {n} obstacles (means over {seeds} seeds):"
        )
    return lines


def bench_markdown(rows: Sequence[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The report: one table per obstacle count, the targets, and how the numbers were made."""
    algos = list(dict.fromkeys(r["algo"] for r in rows))
    counts = list(dict.fromkeys(r["num_obstacles"] for r in rows))
    status = "" if meta["complete"] else " (incomplete: the run was still going or was interrupted)"
    lines = [
        f"Command: `{meta['command']}`{status}",
        "",
        f"Machine: {meta['machine']}. Total wall time: {meta['wall_time_s'] / 60:.1f} min. Each trained agent: "
        f"{meta['total_timesteps']:,} env steps on {meta['n_envs']} envs; every row is then evaluated on the same "
        f"{meta['final_episodes']} episodes (500 steps each); mean ± std over seeds. Random and stay train nothing. "
        f"Runs went {meta.get('workers', 1)} at a time, so wall times and steps/s include that sharing.",
    ]
    for n in counts:
        seeds = sorted({r["seed"] for r in rows if r["num_obstacles"] == n})
        lines += ["", f"**{n} obstacles** (seeds {', '.join(map(str, seeds))})", ""]
        lines.append("| agent | " + " | ".join(header for _, header, _ in COLUMNS) + " |")
        lines.append("| --- |" + " ---: |" * len(COLUMNS))
        for algo in algos:
            cells = [mean_std(_values(rows, algo, n, key), digits) for key, _, digits in COLUMNS]
            if any(cell != "-" for cell in cells[:4]):
                lines.append(f"| {algo} | " + " | ".join(cells) + " |")
    targets = target_lines(rows)
    if targets:
        lines += ["", *targets]
    return "\n".join(lines) + "\n"


def plot_learning_curves(
    rows: Sequence[dict[str, Any]], curves: Sequence[dict[str, Any]], path: str | Path
) -> None:
    """Return and collisions per episode vs env steps, one line per agent (mean over seeds, ± std
    band), one row of panels per obstacle count; baselines as dashed horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = list(dict.fromkeys(r["num_obstacles"] for r in rows))
    metrics = (
        ("return", "return per episode"),
        ("collisions_per_episode", "collisions per episode"),
    )
    fig, axes = plt.subplots(len(counts), 2, figsize=(11, 3.6 * len(counts)), squeeze=False)
    colours = dict(
        zip(dict.fromkeys(r["algo"] for r in rows), plt.get_cmap("tab10").colors, strict=False)
    )
    for i, n in enumerate(counts):
        for j, (key, label) in enumerate(metrics):
            ax = axes[i][j]
            by_step: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
            for point in curves:
                if point["num_obstacles"] == n:
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
                if algo not in by_step and (value := _mean(rows, algo, n, key)) is not None:
                    ax.axhline(
                        value, linestyle="--", color=colours[algo], label=f"{algo} (baseline)"
                    )
            ax.set_title(f"{n} obstacles: {label}")
            ax.set_xlabel("env steps")
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
