"""Out-of-distribution metrics in torch: negative confidence rate, FPR at 95% TPR, AUROC, AUPR.

Scores are confidences: higher means "more in-distribution". The in-distribution (test) samples
are the positives of FPR@TPR and AUROC; AUPR treats the negatives (the out-of-distribution
samples) as the positive class, scored by ``-confidence``, as Outlier Exposure reports it
(Hendrycks et al., "Deep Anomaly Detection with Outlier Exposure", ICLR 2019,
https://arxiv.org/abs/1812.04606).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

#: The thresholds of the negative confidence rate the source reports.
NCR_THRESHOLDS = (0.4, 0.6, 0.8, 0.9)


def _check_scores(*scores: torch.Tensor) -> None:
    for score in scores:
        if score.ndim != 1 or len(score) == 0:
            raise ValueError(
                f"scores must be non-empty 1-D tensors, got shape {tuple(score.shape)}"
            )


def max_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Each sample's top softmax probability ``(N,)`` (the confidence score)."""
    if logits.ndim != 2:
        raise ValueError(f"need logits (N, classes), got shape {tuple(logits.shape)}")
    return logits.float().softmax(1).max(1).values


def negative_confidence_rate(negative_confidence: torch.Tensor, threshold: float) -> float:
    """NCR_t: the share of negative samples whose top softmax probability exceeds ``threshold``."""
    _check_scores(negative_confidence)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    return (negative_confidence > threshold).float().mean().item()


def fpr_at_tpr(positive: torch.Tensor, negative: torch.Tensor, tpr: float = 0.95) -> float:
    """The false positive rate at the highest threshold that accepts at least ``tpr`` of the
    ``positive`` (in-distribution) scores: the share of ``negative`` ones at or above it."""
    _check_scores(positive, negative)
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr must be in (0, 1], got {tpr}")
    # The tolerance keeps 0.95 * 20 = 19.000000000000004 from rounding up to 20.
    accepted = math.ceil(tpr * len(positive) - 1e-9)
    threshold = positive.sort(descending=True).values[accepted - 1]
    return (negative >= threshold).float().mean().item()


def _midranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..N of ``values`` in ascending order, tied values sharing their mean rank."""
    order = values.argsort()
    ranks = torch.empty(len(values), dtype=torch.float64, device=values.device)
    ranks[order] = torch.arange(1, len(values) + 1, dtype=torch.float64, device=values.device)
    _, group, counts = torch.unique(values, return_inverse=True, return_counts=True)
    sums = torch.zeros(len(counts), dtype=torch.float64, device=values.device)
    sums.index_add_(0, group, ranks)
    return (sums / counts)[group]


def auroc(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a random
    negative, ties counting one half (Mann-Whitney U from mid-ranks)."""
    _check_scores(positive, negative)
    ranks = _midranks(torch.cat([positive.double(), negative.double()]))
    count_positive, count_negative = len(positive), len(negative)
    u = ranks[:count_positive].sum() - count_positive * (count_positive + 1) / 2
    return (u / (count_positive * count_negative)).item()


def average_precision(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """Area under the precision-recall curve as average precision: the mean, over the
    positives, of the precision at the threshold of each positive's score (tied scores form
    one threshold), as ``sklearn.metrics.average_precision_score``."""
    _check_scores(positive, negative)
    scores = torch.cat([positive.double(), negative.double()])
    is_positive = (torch.arange(len(scores), device=scores.device) < len(positive)).double()
    thresholds, group = torch.unique(scores, return_inverse=True)  # ascending
    hits = torch.zeros(len(thresholds), dtype=torch.float64, device=scores.device)
    total = torch.zeros_like(hits)
    hits.index_add_(0, group, is_positive)
    total.index_add_(0, group, torch.ones_like(is_positive))
    # Descending thresholds: true positives and predictions at or above each threshold.
    precision = hits.flip(0).cumsum(0) / total.flip(0).cumsum(0)
    return ((hits.flip(0) / len(positive)) * precision).sum().item()


def aupr(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """AUPR with the negatives (out-of-distribution) as the positive class, scored by
    ``-confidence``; ``positive`` and ``negative`` are confidences as elsewhere here."""
    return average_precision(-negative, -positive)


def ood_metrics(
    in_confidence: torch.Tensor,
    negative_confidence: torch.Tensor,
    thresholds: Sequence[float] = NCR_THRESHOLDS,
) -> dict[str, float]:
    """NCR at each threshold, FPR at 95% TPR, AUROC and AUPR, as fractions in ``[0, 1]``, of the
    confidences of in-distribution test samples and of negative samples."""
    metrics = {f"NCR_{t:g}": negative_confidence_rate(negative_confidence, t) for t in thresholds}
    metrics["FPR95"] = fpr_at_tpr(in_confidence, negative_confidence, 0.95)
    metrics["AUROC"] = auroc(in_confidence, negative_confidence)
    metrics["AUPR"] = aupr(in_confidence, negative_confidence)
    return metrics
