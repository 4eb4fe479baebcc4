"""The bench report's targets table, judged from hand-made rows."""

from neg_agents.algos import MAIN_ALGO
from neg_agents.bench_report import DEFAULT_SCENE, MIX_SCENE, bench_markdown, target_lines


def row(algo, seed, collisions, ret, moves, trained_on="", scene=DEFAULT_SCENE, **more):
    return {
        "algo": algo,
        "scene": scene,
        "trained_on": trained_on,
        "seed": seed,
        "collisions_per_episode": collisions,
        "return": ret,
        "moves_per_episode": moves,
        **more,
    }


def verdicts(lines):
    """The table's rows as {target: (measured, verdict)}."""
    table = [line for line in lines if line.startswith("| ") and not line.startswith("| target")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in table]
    return {target: (measured, verdict) for target, measured, verdict in cells}


def test_targets_table_judges_means_every_seed_and_moves():
    rows = [
        row(MAIN_ALGO, 0, 0.0, -0.2, 15, train_collisions=10),
        row(MAIN_ALGO, 1, 0.3, -0.4, 15, train_collisions=10),  # one seed above 0.2
        row("dqn", 0, 0.3, -0.8, 50, train_collisions=1000),
        row("neg-reward-dqn", 0, 0.3, -0.8, 40),
        row("neg-action-dqn", 0, 0.05, -0.6, 70),  # more than 1.5x neg-reward-dqn's 40 moves
        row("planner", 0, 0.0, -0.1, 10),
    ]
    judged = verdicts(target_lines(rows))
    mean = judged[f"{MAIN_ALGO} on {DEFAULT_SCENE}, collisions per episode at most 0.1"]
    assert mean == ("0.15 (mean of 2 seeds)", "**missed**")
    worst = judged[f"{MAIN_ALGO} on {DEFAULT_SCENE}, every seed at most 0.2 collisions per episode"]
    assert worst == ("worst seed 0.30", "**missed**")
    assert judged[f"{MAIN_ALGO} on {DEFAULT_SCENE}, return at least -0.5"][1] == "met"
    assert (
        judged[f"neg-action-dqn on {DEFAULT_SCENE}, collisions per episode at most 0.1"][1] == "met"
    )
    moves = judged[
        f"neg-action-dqn on {DEFAULT_SCENE}, moves per episode at most 1.5x neg-reward-dqn's"
    ]
    assert moves == ("70 vs 40", "**missed**")
    (safety,) = [v for k, v in judged.items() if "fewer collisions while learning" in k]
    assert safety == ("100.0x fewer (10 vs 1000), return -0.30 vs -0.80", "met")
    # No generalist rows: its targets are left out, not judged on nothing.
    assert not [k for k in judged if MIX_SCENE in k]


def test_no_rows_no_targets_table():
    assert target_lines([row("random", 0, 40.0, -45.0, 400)]) == []


def test_the_report_says_which_envs_the_agents_stepped():
    """With --vec-env subproc every agent steps subproc envs; the report said the agents acting
    through NegativeActionWrapper stepped dummy ones, which only replace native ones."""
    meta = {"command": "negdl-bench", "machine": "m", "wall_time_s": 1.0, "complete": True}
    meta.update(total_timesteps=10, n_envs=2, final_episodes=2, test_seed=1_000_000)
    native = bench_markdown([], {**meta, "vec_env": "native"})
    assert "(native; dummy for agents acting through NegativeActionWrapper)" in native
    subproc = bench_markdown([], {**meta, "vec_env": "subproc"})
    assert "(subproc);" in subproc and "dummy for agents" not in subproc
