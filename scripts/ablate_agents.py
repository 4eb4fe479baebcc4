"""Ablation of the Q-network's output head and the policy's view, on both observation layouts.

    python scripts/ablate_agents.py --seeds 0 1 --out-dir runs/ablation

Trains each variant on ``NegCollision-v0`` with the default ``"absolute"`` observation and with
``observation="nearest"``, on the same seeds and budget, and evaluates it exactly as
``negdl-bench`` does: on the bench's held-out test episodes (200, reset seeds from
``neg_agents.bench.TEST_SEED``), the same for every variant and seed. Variants differ from the
defaults in ``neg_agents/hyperparams.py`` only where their name says:

- ``neg-reward-dqn``: the defaults (non-positive ``q_head`` of ``NonPositiveDQNPolicy``).
- ``neg-reward-dqn, <head> head``: another non-positive head (``-|x|``, ``-softplus``, dueling).
- ``dqn``: SB3's DQN, same extractor and settings, an unconstrained linear head.
- ``..., flat MLP``: SB3's ``FlattenExtractor`` instead of ``ObstacleSetExtractor``.

Writes ``ablation.csv`` (one row per variant, observation and seed) and ``ablation.md``, both
rewritten after every run; ``python scripts/update_docs.py --jobs agents-ablation`` puts them in
``docs/agents/ablation/``.
"""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.torch_layers import FlattenExtractor
from tqdm.auto import tqdm

import neg_envs  # noqa: F401  (registers the ids)
from neg_agents.algos import get_algo
from neg_agents.bench import TEST_ENVS, TEST_SEED
from neg_agents.hyperparams import N_ENVS, N_TIMESTEPS, hyperparams_for
from neg_agents.training import train_agent
from negdl.checks import check_int
from negdl.cli import check_out_dir, run_main
from negdl.results import machine_description, mean_std, write_csv, write_text_atomic
from supervised.cli.common import check_known

#: Variant name -> (agent, policy_kwargs changed from the defaults).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "neg-reward-dqn": ("neg-reward-dqn", {}),
    "neg-reward-dqn, abs head": ("neg-reward-dqn", {"q_head": "abs"}),
    "neg-reward-dqn, dueling head": ("neg-reward-dqn", {"q_head": "dueling"}),
    "neg-reward-dqn, softplus head": ("neg-reward-dqn", {"q_head": "softplus"}),
    "dqn": ("dqn", {}),
    "neg-reward-dqn, softplus head, flat MLP": (
        "neg-reward-dqn",
        {"q_head": "softplus", "features_extractor_class": FlattenExtractor},
    ),
    "dqn, flat MLP": ("dqn", {"features_extractor_class": FlattenExtractor}),
}
#: Observation layouts: name -> env options.
OBSERVATIONS: dict[str, dict[str, Any]] = {"absolute": {}, "nearest": {"observation": "nearest"}}
METRICS = (
    ("collisions_per_episode", "collisions", 2),
    ("moves_per_episode", "moves", 0),
    ("return", "return", 2),
)


@dataclass
class Args:
    """Train every variant on both observation layouts over seeds; write CSV and markdown."""

    variants: tuple[str, ...] = tuple(VARIANTS)
    """variants to train (see the module docstring)"""
    observations: tuple[str, ...] = tuple(OBSERVATIONS)
    """observation layouts: absolute, nearest"""
    seeds: tuple[int, ...] = (0, 1, 2)
    """seeds (the same for every variant)"""
    total_timesteps: int = N_TIMESTEPS
    """env steps per training run"""
    n_envs: int = N_ENVS
    """parallel training envs (natively batched)"""
    final_episodes: int = 200
    """held-out test episodes per run (reset seeds from the bench's TEST_SEED)"""
    out_dir: str = "runs/ablation"
    """where ablation.csv and ablation.md go"""
    torch_threads: int = 1
    """torch CPU threads"""


def run_variant(args: Args, variant: str, observation: str, seed: int) -> dict[str, Any]:
    """Train one variant on one layout and seed; its evaluation row."""
    algo, changes = VARIANTS[variant]
    env_kwargs = OBSERVATIONS[observation]
    params = hyperparams_for(algo)
    params["policy_kwargs"] = {**params["policy_kwargs"], **changes}
    result = train_agent(
        algo,
        env_kwargs=env_kwargs,
        total_timesteps=args.total_timesteps,
        seed=seed,
        n_envs=args.n_envs,
        vec_env="native",
        hyperparams=params,
        eval_freq=0,
    )
    result.model.get_env().close()
    spec = get_algo(algo)
    eval_env = spec.make_env(
        "NegCollision-v0", min(TEST_ENVS, args.final_episodes), TEST_SEED, env_kwargs
    )
    stats = spec.evaluate(result.model.policy, eval_env, args.final_episodes).summary()
    eval_env.close()
    return {
        "variant": variant,
        "observation": observation,
        "seed": seed,
        **stats,
        "train_time_s": result.train_time_s,
    }


def markdown(rows: list[dict[str, Any]], args: Args, wall: float) -> str:
    observations = list(dict.fromkeys(r["observation"] for r in rows))
    lines = [
        f"Command: `python scripts/ablate_agents.py {shlex.join(sys.argv[1:])}`",
        "",
        f"Machine: {machine_description(torch.device('cpu'))}. Wall time {wall / 60:.1f} min. "
        f"{args.total_timesteps:,} env steps per run on {args.n_envs} envs, seeds "
        f"{', '.join(map(str, args.seeds))}; each run evaluated on the bench's "
        f"{args.final_episodes} held-out test episodes (reset seeds from {TEST_SEED:,}); mean ± "
        "std over seeds.",
        "",
        "| variant | "
        + " | ".join(f"{label} ({obs})" for obs in observations for _, label, _ in METRICS)
        + " |",
        "| --- |" + " ---: |" * (len(observations) * len(METRICS)),
    ]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        cells = []
        for obs in observations:
            here = [r for r in rows if r["variant"] == variant and r["observation"] == obs]
            cells += [mean_std([float(r[key]) for r in here], digits) for key, _, digits in METRICS]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(args: Args) -> None:
    """Train and evaluate the grid."""
    check_known("variant", args.variants, VARIANTS)
    check_known("observation", args.observations, OBSERVATIONS)
    if not args.seeds or not args.variants or not args.observations:
        raise ValueError("give at least one seed, variant and observation")
    for seed in args.seeds:
        check_int("seeds", seed, 0, 2**32 - 1)
    check_int("total_timesteps", args.total_timesteps, 1)
    check_int("n_envs", args.n_envs, 1)
    check_int("final_episodes", args.final_episodes, 1)
    check_int("torch_threads", args.torch_threads, 0)
    check_out_dir("--out-dir", args.out_dir)
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    out = Path(args.out_dir)
    grid = [(v, o, s) for o in args.observations for s in args.seeds for v in args.variants]
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    for variant, observation, seed in tqdm(grid, desc="ablation runs"):
        rows.append(run_variant(args, variant, observation, seed))
        write_csv(rows, out / "ablation.csv")
        write_text_atomic(out / "ablation.md", markdown(rows, args, time.perf_counter() - start))
    print(f"wrote {out / 'ablation.md'}")  # inside run_main, which ends quietly on a closed pipe


if __name__ == "__main__":
    run_main("ablate_agents.py", Args, run)
