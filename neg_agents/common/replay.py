"""Minibatches from SB3's n-step replay buffer, drawn as SB3 draws them but with fewer calls:
SB3's ``NStepReplayBuffer.sample`` (some 30 numpy calls, a temporary write into the buffer and a
copy of every array) is a sizeable share of a training step this small. :func:`sample_replay`
returns exactly what it returns for the same state of numpy's global generator; other buffers and
``VecNormalize`` go through SB3's own ``sample``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples


def fast_path_applies(buffer: ReplayBuffer, vec_normalize_env: Any = None) -> bool:
    """Whether :func:`sample_replay` reads ``buffer`` itself (SB3's exact ``NStepReplayBuffer``
    without ``VecNormalize``) rather than calling its ``sample``."""
    return type(buffer) is NStepReplayBuffer and vec_normalize_env is None


def sample_replay(
    buffer: ReplayBuffer, batch_size: int, vec_normalize_env: Any = None
) -> ReplayBufferSamples:
    """``buffer.sample(batch_size, vec_normalize_env)``, faster for SB3's ``NStepReplayBuffer``."""
    if not fast_path_applies(buffer, vec_normalize_env):
        return buffer.sample(batch_size, env=vec_normalize_env)
    assert isinstance(buffer, NStepReplayBuffer)
    size, n_envs, n_steps = buffer.buffer_size, buffer.n_envs, buffer.n_steps
    upper_bound = size if buffer.full else buffer.pos
    # SB3 seeds and draws from the legacy global generator (set_random_seed).
    batch_inds = np.random.randint(0, upper_bound, size=batch_size)  # noqa: NPY002
    env_inds = np.random.randint(0, n_envs, size=batch_inds.shape)  # noqa: NPY002

    rows = (batch_inds[:, None] + np.arange(n_steps)) % size  # (batch, n_steps)
    flat = rows * n_envs + env_inds[:, None]
    rewards = buffer.rewards.ravel().take(flat)
    dones = buffer.dones.ravel().take(flat)
    # SB3 counts the newest row (pos - 1) as truncated unless it is done, so that no n-step
    # sequence runs on into the oldest transitions it is about to overwrite.
    ended = dones.astype(bool) | buffer.timeouts.ravel().take(flat).astype(bool)
    ended |= rows == (buffer.pos - 1) % size
    done_idx = np.where(ended.any(axis=1), ended.argmax(axis=1), n_steps - 1)
    mask = np.arange(n_steps) <= done_idx[:, None]
    discounts = buffer.gamma ** mask.sum(axis=1, keepdims=True).astype(np.float32)
    reward_discounts = buffer.gamma ** np.arange(n_steps, dtype=np.float32).reshape(1, -1)
    returns = (rewards * reward_discounts * mask).sum(axis=1, keepdims=True)

    first = batch_inds * n_envs + env_inds
    last = ((batch_inds + done_idx) % size) * n_envs + env_inds
    # At the last row a timeout is never counted as an end (the newest row's stand-in timeout
    # only applies where it is not done, where the product is 0 anyway).
    final_dones = buffer.dones.ravel().take(last)[:, None].astype(np.float32) * (
        1.0 - buffer.timeouts.ravel().take(last)[:, None].astype(np.float32)
    )
    obs_dim = buffer.observations.shape[2:]
    observations = buffer.observations.reshape(-1, *obs_dim).take(first, axis=0)
    next_observations = buffer.next_observations.reshape(-1, *obs_dim).take(last, axis=0)
    actions = buffer.actions.reshape(-1, *buffer.actions.shape[2:]).take(first, axis=0)
    device = buffer.device
    return ReplayBufferSamples(
        to_tensor(observations, device),
        to_tensor(actions, device),
        to_tensor(next_observations, device),
        to_tensor(final_dones, device),
        to_tensor(returns, device),
        discounts=to_tensor(discounts, device),
    )


def to_tensor(array: np.ndarray, device: th.device) -> th.Tensor:
    """``array`` (a fresh array nothing else holds) as a tensor on ``device``, copied only to
    move it off the CPU."""
    tensor = th.from_numpy(array)
    return tensor if device.type == "cpu" else tensor.to(device)
