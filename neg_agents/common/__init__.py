"""Machinery shared by the negative agents: DQN base, baselines, evaluation, callbacks, envs and
the adapter that hands the batched env to stable-baselines3."""
