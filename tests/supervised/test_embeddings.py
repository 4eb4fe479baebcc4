"""Embedding scores against hand-computed values: prototypes, k-NN, precision@1, PCA, the plot."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from supervised.embeddings import (
    class_prototypes,
    embed,
    embedding_scores,
    knn_accuracy,
    knn_predict,
    mnist_embedding_net,
    pca_2d,
    plot_embeddings,
    precision_at_1,
    prototype_accuracy,
)
from supervised.triplets import CosineDistance

# References on a line: class 0 at 0 and 1, class 1 at 10, 11 and 30.
REFERENCES = torch.tensor([[0.0], [1.0], [10.0], [11.0], [30.0]])
REFERENCE_LABELS = torch.tensor([0, 0, 1, 1, 1])


def test_prototypes_are_class_means() -> None:
    classes, prototypes = class_prototypes(REFERENCES, REFERENCE_LABELS)
    assert classes.tolist() == [0, 1]
    assert prototypes[:, 0].tolist() == pytest.approx([0.5, 17.0])


def test_prototype_knn_and_precision_on_hand_made_points() -> None:
    queries = torch.tensor([[2.0], [9.0], [12.0]])
    labels = torch.tensor([0, 0, 1])
    # Prototypes 0.5 and 17: 2 -> 0, 9 -> 0 (8.5 < 8.0 is false: |9-0.5| = 8.5, |9-17| = 8), 12 -> 1.
    assert prototype_accuracy(queries, labels, REFERENCES, REFERENCE_LABELS) == pytest.approx(
        100 * 2 / 3
    )
    # Nearest reference: 2 -> 1 (class 0), 9 -> 10 (class 1), 12 -> 11 (class 1).
    assert precision_at_1(queries, labels, REFERENCES, REFERENCE_LABELS) == pytest.approx(
        100 * 2 / 3
    )
    # 3 neighbours of 9: 10, 11 (class 1) and 1 (class 0): class 1 wins.
    assert knn_predict(queries, REFERENCES, REFERENCE_LABELS, k=3).tolist() == [0, 1, 1]
    assert knn_accuracy(queries, labels, REFERENCES, REFERENCE_LABELS, k=3) == pytest.approx(
        100 * 2 / 3
    )


def test_knn_tie_goes_to_the_class_of_the_nearest_neighbour() -> None:
    # Neighbours of 4 with k = 2: 1 (class 0, distance 3) and 10 (class 1, distance 6): a 1-1 tie.
    assert knn_predict(torch.tensor([[4.0]]), REFERENCES, REFERENCE_LABELS, k=2).tolist() == [0]
    assert knn_predict(torch.tensor([[7.0]]), REFERENCES, REFERENCE_LABELS, k=2).tolist() == [1]


def test_cosine_distance_scores() -> None:
    references = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    queries = torch.tensor([[5.0, 1.0], [1.0, 3.0]])
    labels = torch.tensor([0, 1])
    assert precision_at_1(queries, labels, references, labels, CosineDistance()) == 100.0


def test_scores_reject_bad_inputs_and_flag_divergence() -> None:
    with pytest.raises(ValueError, match=r"k must be in \[1, 5\]"):
        knn_predict(torch.zeros(1, 1), REFERENCES, REFERENCE_LABELS, k=6)
    with pytest.raises(ValueError, match="queries need non-empty embeddings"):
        precision_at_1(torch.zeros(2, 1), torch.tensor([0]), REFERENCES, REFERENCE_LABELS)
    diverged = torch.tensor([[math.nan]])
    scores = embedding_scores(diverged, torch.tensor([0]), REFERENCES, REFERENCE_LABELS, k=3)
    assert list(scores) == ["prototype_accuracy", "knn3_accuracy", "precision_at_1"]
    assert all(math.isnan(value) for value in scores.values())


def test_pca_2d_finds_the_main_axes() -> None:
    # Points spread along (1, 1, 0) with a small spread along (1, -1, 0).
    t = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])
    s = torch.tensor([0.1, -0.2, 0.0, 0.2, -0.1])  # zero mean, orthogonal to t
    points = torch.stack([t + s, t - s, torch.zeros(5)], 1)
    projected = pca_2d(points)
    assert projected.shape == (5, 2)
    assert projected[:, 0].tolist() == pytest.approx((t * math.sqrt(2)).tolist(), abs=1e-5)
    assert projected[:, 1].abs().tolist() == pytest.approx(
        (s * math.sqrt(2)).abs().tolist(), abs=1e-5
    )
    with pytest.raises(ValueError, match="PCA to 2-D needs"):
        pca_2d(torch.zeros(1, 3))


def test_embedding_net_and_plot(tmp_path: Path, small_data) -> None:
    torch.manual_seed(0)
    model = mnist_embedding_net(embedding_size=6, normalize=True)
    embeddings = embed(model, small_data.images[:40], device="cpu")
    assert embeddings.shape == (40, 6)
    assert embeddings.norm(dim=1).tolist() == pytest.approx([1.0] * 40, abs=1e-5)
    assert model.training  # the previous mode is restored
    png = plot_embeddings(embeddings, small_data.labels[:40], tmp_path / "plots" / "pca.png", "t")
    assert Image.open(png).size == (600, 600)
    with pytest.raises(ValueError, match="embedding_size must be positive"):
        mnist_embedding_net(0)
