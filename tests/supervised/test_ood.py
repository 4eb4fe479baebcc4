"""Out-of-distribution metrics against hand-computed values on a small ranking."""

from __future__ import annotations

import pytest
import torch

from supervised.ood import (
    aupr,
    auroc,
    average_precision,
    fpr_at_tpr,
    max_softmax,
    negative_confidence_rate,
    ood_metrics,
)

# Confidences of four in-distribution samples and three negatives.
IN = torch.tensor([0.9, 0.8, 0.7, 0.6])
NEG = torch.tensor([0.85, 0.5, 0.3])


def test_negative_confidence_rate() -> None:
    assert negative_confidence_rate(NEG, 0.4) == pytest.approx(2 / 3)
    assert negative_confidence_rate(NEG, 0.6) == pytest.approx(1 / 3)
    assert negative_confidence_rate(NEG, 0.9) == 0.0
    assert negative_confidence_rate(torch.tensor([0.4]), 0.4) == 0.0  # strictly above t
    with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\]"):
        negative_confidence_rate(NEG, 1.5)


def test_max_softmax() -> None:
    logits = torch.tensor([[0.0, 0.0], [torch.log(torch.tensor(3.0)).item(), 0.0]])
    assert max_softmax(logits).tolist() == pytest.approx([0.5, 0.75])


def test_fpr_at_tpr() -> None:
    # 95% of 4 positives -> all 4 accepted -> threshold 0.6 -> 0.85 passes: 1 of 3 negatives.
    assert fpr_at_tpr(IN, NEG, 0.95) == pytest.approx(1 / 3)
    assert fpr_at_tpr(IN, NEG, 0.25) == 0.0  # threshold 0.9
    assert fpr_at_tpr(IN, torch.tensor([0.95, 0.1]), 0.5) == pytest.approx(0.5)
    # 0.95 * 20 is 19.000000000000004 in floating point: 19 positives, not 20.
    positives = torch.arange(20, 0, -1).float()
    assert fpr_at_tpr(positives, torch.tensor([2.0]), 0.95) == 1.0  # threshold 2
    assert fpr_at_tpr(positives, torch.tensor([1.5]), 0.95) == 0.0  # threshold 1 would accept it
    with pytest.raises(ValueError, match=r"tpr must be in \(0, 1\]"):
        fpr_at_tpr(IN, NEG, 0.0)


def test_auroc_counts_ordered_pairs_and_half_ties() -> None:
    # Pairs with positive > negative: 0.9 beats 3, 0.8, 0.7 and 0.6 beat 2 each: 9 of 12.
    assert auroc(IN, NEG) == pytest.approx(0.75)
    assert auroc(torch.tensor([0.5]), torch.tensor([0.5])) == 0.5
    assert auroc(torch.tensor([1.0, 0.5]), torch.tensor([0.5, 0.1])) == pytest.approx((2 + 1.5) / 4)
    assert auroc(torch.tensor([0.1]), torch.tensor([0.9])) == 0.0


def test_average_precision_and_aupr() -> None:
    # Negatives ranked by -confidence: -0.3 (neg), -0.5 (neg), -0.6, -0.7, -0.8 (in),
    # -0.85 (neg), -0.9 (in): precisions at the negatives 1, 1, 3/6.
    assert aupr(IN, NEG) == pytest.approx((1 + 1 + 0.5) / 3)
    # A tie forms one threshold: at 1.0 precision 1 (recall 0.5), at 0.5 precision 2/3.
    assert average_precision(torch.tensor([1.0, 0.5]), torch.tensor([0.5])) == pytest.approx(
        0.5 * 1 + 0.5 * 2 / 3
    )
    with pytest.raises(ValueError, match="non-empty 1-D"):
        auroc(torch.tensor([]), NEG)


def test_ood_metrics_has_every_key() -> None:
    metrics = ood_metrics(IN, NEG)
    assert list(metrics) == ["NCR_0.4", "NCR_0.6", "NCR_0.8", "NCR_0.9", "FPR95", "AUROC", "AUPR"]
    assert metrics["AUROC"] == pytest.approx(0.75) and metrics["NCR_0.8"] == pytest.approx(1 / 3)
