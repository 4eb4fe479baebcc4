"""Action masks handed to an agent: the one check of their shape."""

from __future__ import annotations

from typing import Any

import numpy as np


def checked_masks(action_masks: Any, batch: int, n: int) -> np.ndarray:
    """``action_masks`` as ``(batch, n)`` bools, or a ``ValueError`` when they are not one row
    of ``n`` per observation with at least one allowed action each."""
    masks = np.asarray(action_masks, dtype=bool)
    if masks.size != batch * n or not masks.reshape(-1, n).any(axis=1).all():
        raise ValueError(
            f"action_masks must hold one row of {n} bools per observation ({batch}) "
            f"with at least one True each, got shape {masks.shape}"
        )
    return masks.reshape(-1, n)
