"""Loss reducers beyond the mean: online hard example mining and the mean over non-zero losses.

Each is a :class:`~supervised.training.LossReducer`, so any supervised model uses it by passing
``reducer=...`` to the :class:`~supervised.training.Trainer` (or to
:class:`~supervised.cbomf.CBOMFConfig` for the CBOMF modes).
"""

from __future__ import annotations

import math

import torch

from supervised.training import LossReducer


class HardExampleMining(LossReducer):
    """Online hard example mining (OHEM, Shrivastava et al., CVPR 2016,
    https://arxiv.org/abs/1604.03540): the mean over the ``k`` largest per-sample losses (a
    batch with fewer is an error), or over the largest ``ceil(fraction * N)``; the other samples
    get no gradient. A batch with no losses reduces to 0."""

    def __init__(self, k: int | None = None, fraction: float | None = None) -> None:
        if (k is None) == (fraction is None):
            raise ValueError(
                "give exactly one of k (losses per batch) or fraction (share of the batch)"
            )
        if k is not None and k <= 0:
            raise ValueError(f"k must be a positive number of losses per batch, got {k}")
        if fraction is not None and not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        self.k, self.fraction = k, fraction

    def reduce(self, losses: torch.Tensor) -> torch.Tensor:
        count = losses.numel()
        if losses.ndim == 0:
            raise ValueError(
                "OHEM needs one loss per sample (N,), got a scalar; use a per-sample loss "
                "(e.g. cross-entropy with reduction='none')"
            )
        if count == 0:
            return losses.sum()
        if self.k is None:
            assert self.fraction is not None  # __init__ takes exactly one of k and fraction
            kept = math.ceil(self.fraction * count)
        elif self.k > count:
            raise ValueError(
                f"OHEM keeps k={self.k} losses but the batch has only {count}; lower k, use "
                "fraction=..., or drop the short last batch"
            )
        else:
            kept = self.k
        return losses.topk(kept, sorted=False).values.mean()

    def __repr__(self) -> str:
        return f"HardExampleMining({f'k={self.k}' if self.k else f'fraction={self.fraction}'})"


class NonZeroMean(LossReducer):
    """The mean over the losses above zero (0 when none is), as pytorch-metric-learning's
    ``AvgNonZeroReducer`` / ``ThresholdReducer(low=0)`` for triplet losses: triplets already
    satisfied by the margin do not dilute the gradient of the violated ones."""

    def reduce(self, losses: torch.Tensor) -> torch.Tensor:
        if losses.ndim == 0:
            return losses
        positive = losses > 0
        return (losses * positive).sum() / positive.sum().clamp_min(1)
