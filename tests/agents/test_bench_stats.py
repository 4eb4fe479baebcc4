"""Seed statistics of the bench: IQM, stratified bootstrap intervals, performance profiles."""

import numpy as np
import pytest

from neg_agents.bench_report import (
    iqm,
    normalised_scores,
    performance_profile,
    plot_performance_profiles,
    seed_statistics_markdown,
    stratified_bootstrap,
)


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm(np.arange(1, 9)) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert iqm([10.0, 1.0, 2.0, 3.0]) == pytest.approx(2.5)  # the outlier 10 is cut
    assert iqm([1.0, 2.0, 9.0]) == pytest.approx(4.0)  # 3 runs: nothing cut, the mean
    np.testing.assert_allclose(iqm(np.array([[1, 2, 3, 100], [4, 4, 4, 4]])), [2.5, 4.0])


def test_bootstrap_resamples_within_each_task():
    # Stratified: every resample keeps 3 runs of each task, so the mean over both is always
    # 0.5; a bootstrap over the pooled runs would spread from 0 to 1.
    point, low, high = stratified_bootstrap([np.zeros(3), np.ones(3)], np.mean)
    assert point == low == high == 0.5
    runs = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    first = stratified_bootstrap([runs], seed=3)
    assert first == stratified_bootstrap([runs], seed=3)  # reproducible
    point, low, high = first
    assert point == pytest.approx(iqm(runs)) and low < point < high
    assert runs.min() <= low and high <= runs.max()
    with pytest.raises(ValueError, match="at least one run"):
        stratified_bootstrap([runs, np.array([])])


def test_performance_profile_counts_runs_above_each_threshold():
    tasks = [np.array([0.1, 0.5, 0.9]), np.array([0.3, 0.7, 1.0])]
    profile, low, high = performance_profile(tasks, np.array([0.0, 0.4, 0.8, 1.0]))
    np.testing.assert_allclose(profile, [1.0, 4 / 6, 2 / 6, 0.0])
    assert (low <= profile).all() and (profile <= high).all()
    assert (np.diff(profile) <= 0).all()


def rows_for(values: dict[str, dict[int, list[float]]]) -> list[dict]:
    return [
        {
            "algo": algo,
            "scene": f"n{n}",
            "trained_on": "" if algo == "random" else f"n{n}",
            "seed": seed,
            "collisions_per_episode": c,
        }
        for algo, by_n in values.items()
        for n, runs in by_n.items()
        for seed, c in enumerate(runs)
    ]


def test_report_section_and_profile_plot(tmp_path):
    rows = rows_for(
        {
            "agent": {10: [10.0, 12.0, 14.0], 30: [30.0, 36.0, 42.0]},
            "random": {10: [40.0, 40.0, 40.0], 30: [120.0, 120.0, 120.0]},
        }
    )
    scores = normalised_scores(rows)
    np.testing.assert_allclose(scores["agent"][0], [0.75, 0.7, 0.65])
    np.testing.assert_allclose(scores["random"][1], [0.0, 0.0, 0.0])
    text = seed_statistics_markdown(rows)
    assert "| agent | 12.00 [" in text and "| random | 40.00 [40.00, 40.00] |" in text
    assert "share of random's collisions avoided" in text and "performance_profile.png" in text
    assert plot_performance_profiles(rows, tmp_path / "profile.png")
    assert (tmp_path / "profile.png").stat().st_size > 0
    no_random = [row for row in rows if row["algo"] != "random"]
    assert not plot_performance_profiles(no_random, tmp_path / "none.png")
    assert "avoided" not in seed_statistics_markdown(no_random)


def test_transferred_rows_are_not_runs_of_the_scenario_they_were_moved_to():
    def row(algo, collisions, trained_on):
        return {
            "algo": algo,
            "scene": "n30",
            "seed": 0,
            "collisions_per_episode": collisions,
            "trained_on": trained_on,
        }

    rows = [
        row("random", 100.0, ""),
        row("neg-reward-dqn", 10.0, "n30"),
        row("neg-reward-dqn", 90.0, "n10"),
    ]
    scores = normalised_scores(rows)
    np.testing.assert_allclose(scores["neg-reward-dqn"][0], [0.9])
