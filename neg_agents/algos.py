"""The agents negdl trains and compares, by name."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.type_aliases import PolicyPredictor
from stable_baselines3.common.vec_env import VecEnv

from neg_agents.common.baselines import ConstantAgent, MaskedRandomAgent, RandomAgent
from neg_agents.common.env_util import make_env, preferred_vec_env
from neg_agents.common.evaluation import EpisodeStats, evaluate_agent, predicted
from neg_agents.common.planner import DEFAULT_HORIZON, CollisionPlanner
from neg_agents.neg_action_dqn import NegActionDQN
from neg_agents.neg_reward_dqn import NegRewardDQN
from neg_envs.collision_core import STAY


@dataclass(frozen=True)
class AlgoSpec:
    """How to build, train and evaluate one agent; the object passed wherever its flags are read.

    :param name: the name scripts use.
    :param description: one line for ``--help`` and tables.
    :param model_class: the SB3 algorithm, or None for a baseline that learns nothing.
    :param negative_actions: the env is wrapped in ``neg_envs.NegativeActionWrapper`` (the
        agent's action k means "do not do k").
    :param deterministic: how the agent is evaluated (``predict(deterministic=...)``).
    :param baseline: builds the baseline from ``(env, seed)``, the env (``gym.Env`` or
        ``VecEnv``) it will act in.
    :param action_masks: the agent acts under the env's ``action_masks()`` (passed to
        ``predict``), as sb3-contrib's ``MaskablePPO`` does.
    :param extra: the pip extra that provides ``model_class`` (None: a core dependency); while
        it is not installed ``model_class`` is None.
    :param seeded: the agent's results depend on its seed (False: the bench evaluates it once).
    """

    name: str
    description: str
    model_class: type[BaseAlgorithm] | None = None
    negative_actions: bool = False
    deterministic: bool = True
    baseline: Callable[[Any, int | None], PolicyPredictor] | None = None
    action_masks: bool = False
    extra: str | None = None
    seeded: bool = True

    @property
    def trainable(self) -> bool:
        return self.model_class is not None or self.extra is not None

    @property
    def algorithm(self) -> type[BaseAlgorithm]:
        """``model_class``, which a trainable agent whose package is installed has."""
        if self.model_class is None:
            raise ValueError(
                f"{self.name} has no algorithm to train: a baseline, or its package is missing"
            )
        return self.model_class

    @property
    def available(self) -> bool:
        """Whatever the agent needs is installed."""
        return self.extra is None or self.model_class is not None

    def vec_env_for(self, env_id: str, env_kwargs: dict[str, Any] | None = None) -> str:
        """The vec env kind this agent acts on in ``env_id`` (see ``preferred_vec_env``)."""
        return preferred_vec_env(env_id, self.negative_actions, env_kwargs)

    def make_env(
        self,
        env_id: str,
        n_envs: int = 1,
        seed: int | None = None,
        env_kwargs: dict[str, Any] | None = None,
        vec_env: str | None = None,
        monitor_dir: str | Path | None = None,
    ) -> VecEnv:
        """``make_env`` for this agent, on ``vec_env`` (None: :meth:`vec_env_for`'s)."""
        kind = vec_env or self.vec_env_for(env_id, env_kwargs)
        return make_env(env_id, n_envs, seed, env_kwargs, kind, self.negative_actions, monitor_dir)

    def evaluate(self, agent: PolicyPredictor, env: VecEnv, n_episodes: int) -> EpisodeStats:
        """``evaluate_agent`` acting as this agent acts (``deterministic``, ``action_masks``)."""
        return evaluate_agent(agent, env, n_episodes, self.deterministic, self.action_masks)

    def actor(
        self, agent: PolicyPredictor, env: Any, deterministic: bool | None = None
    ) -> Callable[[Any], Any]:
        """The one-observation action function of ``agent`` in single env ``env``, acting as
        this agent acts (``deterministic``: None for the spec's own)."""
        greedy = self.deterministic if deterministic is None else deterministic

        def act(obs: Any) -> Any:
            masks = env.get_wrapper_attr("action_masks")() if self.action_masks else None
            return predicted(agent, obs, greedy, masks)

        return act

    def make_baseline(self, env: Any, seed: int | None) -> PolicyPredictor:
        """The baseline acting in ``env`` (a ``gym.Env`` or an SB3 ``VecEnv``), seeded ``seed``."""
        if self.baseline is None:
            raise ValueError(
                f"{self.name} is a trained agent, not a baseline; train it or load a saved model"
            )
        return self.baseline(env, seed)


def _optional_class(module: str, name: str) -> type[BaseAlgorithm] | None:
    """``module.name``, or None when the optional package is not installed."""
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        return None


ALGOS: dict[str, AlgoSpec] = {
    spec.name: spec
    for spec in (
        AlgoSpec(
            "neg-reward-dqn", "DQN with a Q-network that can only output values <= 0", NegRewardDQN
        ),
        AlgoSpec(
            "neg-reward-dqn-shielded",
            "neg-reward-dqn acting only among the env's action_masks(), while learning too; "
            "stays unless a move is valued more than one move's cost above staying",
            NegRewardDQN,
            action_masks=True,
        ),
        AlgoSpec(
            "neg-action-dqn",
            "DQN that forbids its worst actions and stays whenever its rule allows it",
            NegActionDQN,
            deterministic=False,
        ),
        AlgoSpec(
            "neg-action-dqn-shielded",
            "neg-action-dqn whose rule ranks only the actions the env's action_masks() allows, "
            "while learning too",
            NegActionDQN,
            deterministic=False,
            action_masks=True,
        ),
        AlgoSpec(
            "maskable-ppo",
            "sb3-contrib's MaskablePPO under the env's action masks (no wall moves, no avoidable contacts)",
            _optional_class("sb3_contrib", "MaskablePPO"),
            action_masks=True,
            extra="contrib",
        ),
        AlgoSpec(
            "dqn-negative-actions",
            "SB3 DQN choosing which action NOT to take (NegativeActionWrapper)",
            DQN,
            negative_actions=True,
        ),
        AlgoSpec("dqn", "SB3's standard DQN", DQN),
        AlgoSpec(
            "planner",
            f"plans {DEFAULT_HORIZON} steps ahead on the simulation's exact state and dynamics",
            baseline=lambda env, seed: CollisionPlanner(env, DEFAULT_HORIZON),
            seeded=False,
        ),
        AlgoSpec(
            "random",
            "uniformly random actions",
            baseline=lambda env, seed: RandomAgent(env.observation_space, env.action_space, seed),
        ),
        AlgoSpec(
            "random-masked",
            "uniformly random among the actions the env's action_masks() allows",
            baseline=lambda env, seed: MaskedRandomAgent(
                env.observation_space, env.action_space, seed
            ),
            action_masks=True,
        ),
        AlgoSpec(
            "stay",
            "always stays (action 4)",
            baseline=lambda env, seed: ConstantAgent(env.observation_space, env.action_space, STAY),
            seeded=False,
        ),
    )
}


#: The agent of the main job (``negdl-train`` on its defaults), the generalist the bench trains
#: on the scene mix and the specialist it trains on each named scene.
MAIN_ALGO = "neg-reward-dqn-shielded"


def get_algo(name: str) -> AlgoSpec:
    """The spec of agent ``name``; a ``ValueError`` listing the known names, or saying which
    extra to install."""
    try:
        spec = ALGOS[name]
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; choose one of: {', '.join(ALGOS)}") from None
    if not spec.available:
        raise ValueError(f"{name} needs an optional package: pip install 'negdl[{spec.extra}]'")
    return spec
