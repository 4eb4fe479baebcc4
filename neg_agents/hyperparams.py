"""Default hyperparameters of every agent, in one place.

Tuned on ``NegCollision-v0`` for 200,000 env steps on a CPU (measurements in the README and
``docs/agents/``). Every DQN variant shares :data:`DQN_HYPERPARAMS` and, on NegCollision envs,
:data:`EXTRACTOR_KWARGS`, so that comparisons between them are fair, but for what
:data:`ALGO_HYPERPARAMS` changes; MaskablePPO has its own (:data:`MASKABLE_PPO_HYPERPARAMS`).
The negative-reward DQN's output head is ``NonPositiveDQNPolicy``'s default
(``neg_reward_dqn.policies.DEFAULT_HEAD``). ``zoo/dqn.yml`` (for rl-zoo3) is generated from this
module: ``python -m neg_agents.hyperparams > neg_agents/zoo/dqn.yml``.
"""

from __future__ import annotations

import copy
from typing import Any

#: Constructor arguments shared by all DQN variants (SB3 DQN argument names).
DQN_HYPERPARAMS: dict[str, Any] = {
    "learning_rate": 1e-3,
    # Holds every transition of a default run: the collisions of the first, clumsy episodes
    # stay in the replay, so the agent does not forget what a collision looks like once it
    # has stopped having them (with 100,000 the final policy was 2-5x worse on some seeds).
    "buffer_size": 300_000,
    "learning_starts": 2_000,
    # 64 envs (N_ENVS) and two 512-sample gradient steps per vector step: the same 16 samples
    # per env step as negdl 0.1's 16 envs with one 256-sample step, at half the updates, which
    # bound training speed (docs/agents/training_speed.md; the unshielded agents collide more
    # on it, schedule_check_unshielded.md; the main job takes one step, ALGO_HYPERPARAMS).
    "batch_size": 512,
    # Collisions are decided a few steps ahead (obstacles move 0.01 a step, the agent 0.02):
    # a short horizon and 3-step returns propagate them fast.
    "gamma": 0.9,
    "n_steps": 3,
    "train_freq": 1,
    "gradient_steps": 2,
    "target_update_interval": 1_000,
    "exploration_fraction": 0.2,
    # Keeps near-collisions coming into the replay after the agent has learned to avoid them.
    "exploration_final_eps": 0.05,
    "policy_kwargs": {"net_arch": [64, 64]},
}

#: Constructor arguments of sb3-contrib's MaskablePPO (PPO argument names): short rollouts (4,096
#: steps over the 64 envs) so that 100,000 steps give some 25 updates, the DQNs' short horizon.
MASKABLE_PPO_HYPERPARAMS: dict[str, Any] = {
    "learning_rate": 3e-4,
    "n_steps": 64,
    "batch_size": 256,
    "n_epochs": 10,
    "gamma": 0.9,
    "gae_lambda": 0.95,
    "ent_coef": 0.01,
    "policy_kwargs": {"net_arch": [128, 128]},
}


#: Arguments of ``ObstacleSetExtractor``, the features extractor every DQN variant uses on
#: NegCollision envs (its geometry comes from the env; see ``collision_policy_kwargs``).
EXTRACTOR_KWARGS: dict[str, Any] = {"hidden": 32, "pooling": "sum+max", "reach_steps": 5}

#: The negative-action DQN's rule. Stay whenever the rule allows it: sampling among every
#: near-equal action made the agent wander (377 moves per episode, docs/agents/bench.md at
#: e73a05e). The margin was chosen on validation episodes (seeds from 500,000, the rule acting
#: alone): of 0.0025-0.1, 0.05 made the fewest collisions (0.07 per episode) with a return within
#: noise of the best, 0.1's (-0.39 vs -0.37, docs/agents/neg_action_margin.md).
NEG_ACTION_RULE: dict[str, Any] = {"margin": 0.05, "num_forbidden": 1, "prefer": 4}

#: The learning rate of the DQNs that learn without the env's masks (SB3's too, to keep its
#: comparisons fair) falls linearly to 0 (rl-zoo3's ``lin_``): at a constant rate their final
#: policy is wherever the last updates left it. Constant vs decaying on validation episodes (seeds
#: 0-2, from 500,000): neg-reward-dqn 0.78 vs 0.17 collisions per episode
#: (docs/agents/schedule_check_unshielded.md), neg-action-dqn 0.20 vs 0.07
#: (neg_action_settings.md). The shielded agents keep the constant rate: decaying it made the
#: generalist worse at 30 obstacles and among large ones (-0.93 vs -0.72, -0.72 vs -0.54, seed 0).
DECAYING_LEARNING_RATE = {"learning_rate": f"lin_{DQN_HYPERPARAMS['learning_rate']}"}

#: Extra constructor arguments of particular algorithms (by ``neg_agents.algos`` name).
ALGO_HYPERPARAMS: dict[str, dict[str, Any]] = {
    "neg-reward-dqn": DECAYING_LEARNING_RATE,
    "dqn": DECAYING_LEARNING_RATE,
    "dqn-negative-actions": DECAYING_LEARNING_RATE,
    # One hidden layer of 64 after the extractor, not two: 0.07 vs 0.16 collisions per episode on
    # validation episodes (neg_action_settings.md); neg-reward-dqn did not gain, so it keeps two.
    "neg-action-dqn": {
        **NEG_ACTION_RULE,
        **DECAYING_LEARNING_RATE,
        "policy_kwargs": {"net_arch": [64]},
    },
    # The negative-reward DQN under the env's action masks while it learns and acts (the main
    # job). One gradient step per vector step learns as well as two on validation episodes
    # (docs/agents/schedule_check.md on the default scene, schedule_check_mix.md on the mix)
    # and trains about 1.9x faster (training_speed.md: 15,262 vs 7,991 env steps/s on EPYC).
    # It stays (4) unless a move is valued more than 0.01, one move's cost, above staying:
    # chosen among margins of 0.002-0.02 on the generalist's validation episodes (seeds from
    # 500,000) at 10 and 30 obstacles and in the crowd, where it made fewer moves and
    # collisions than the greedy choice, whose value differences are mostly below a move's cost.
    "neg-reward-dqn-shielded": {
        "shield": True,
        "gradient_steps": 1,
        "policy_kwargs": {"prefer": 4, "prefer_margin": 0.01},
    },
    # The negative-action DQN's rule ranking only the actions the env's masks allow. Under the
    # shield a small margin pays: 0.01 returns -0.18 on validation episodes, 0.05 -0.34, both
    # without collisions (docs/agents/neg_action_margin_shielded.md).
    "neg-action-dqn-shielded": {**NEG_ACTION_RULE, "margin": 0.01, "shield": True},
}

#: Torch device of the agents unless asked otherwise. Their networks are small MLPs whose
#: steps are too short to pay for CUDA's launches and copies: with ``--device auto`` on an H100
#: machine negdl-train ran at 0.8x the CPU's speed (3,504 vs 4,349 env steps/s, 30k steps).
#: Pass ``device="cuda"`` (or ``"auto"``) to use a GPU anyway.
AGENT_DEVICE = "cpu"

#: Training budget the defaults are tuned for: parallel envs and total env steps.
N_ENVS = 64
N_TIMESTEPS = 200_000


def hyperparams_for(algo: str) -> dict[str, Any]:
    """Constructor arguments for ``algo`` (a fresh copy, safe to modify)."""
    base = MASKABLE_PPO_HYPERPARAMS if algo == "maskable-ppo" else DQN_HYPERPARAMS
    extra = ALGO_HYPERPARAMS.get(algo, {})
    policy_kwargs = {**base["policy_kwargs"], **extra.get("policy_kwargs", {})}
    return copy.deepcopy({**base, **extra, "policy_kwargs": policy_kwargs})


def zoo_yaml(env_id: str = "NegCollision-v0") -> str:
    """rl-zoo3 hyperparameter file for SB3's DQN on ``env_id`` (rl-zoo3 trains only its own
    algorithms, so the negdl agents are not in it)."""
    lines = [
        "# Generated by `python -m neg_agents.hyperparams`; edit neg_agents/hyperparams.py instead.",
        "# python -m rl_zoo3.train --algo dqn --env NegCollision-v0 --gym-packages neg_envs \\",
        "#     --conf-file neg_agents/zoo/dqn.yml",
        "# rl-zoo3 builds SB3's DQN with its flat MLP: the features extractor every negdl agent",
        "# uses on NegCollision (neg_agents.common.extractors.ObstacleSetExtractor, with",
        "# EXTRACTOR_KWARGS) cannot be named here, so expect the 'dqn, flat MLP' row of",
        "# docs/agents/ablation/ablation.md, not the negdl-train numbers.",
        f"{env_id}:",
        f"  n_envs: {N_ENVS}",
        f"  n_timesteps: !!float {N_TIMESTEPS:.0e}",
        "  policy: 'MlpPolicy'",
    ]
    for key, value in hyperparams_for("dqn").items():
        if key == "policy_kwargs":
            inner = ", ".join(f"{k}={v!r}" for k, v in value.items())
            lines.append(f'  policy_kwargs: "dict({inner})"')
        elif isinstance(value, float):
            lines.append(f"  {key}: !!float {value!r}")
        else:
            lines.append(f"  {key}: {value!r}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(zoo_yaml(), end="")
