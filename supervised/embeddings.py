"""Embedding networks and how to score an embedding: class prototypes, k-NN, precision@1, a 2-D view.

Every score classifies test *queries* against labelled training *references* in embedding
space, so it measures the embedding, not a classifier head.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from supervised.evaluation import batched_forward
from supervised.models import MnistFeatures, mlp_head
from supervised.training import evaluating
from supervised.triplets import Distance, EuclideanDistance


class EmbeddingNet(nn.Module):
    """A feature extractor (with an ``out_features`` attribute) followed by a projection through
    ``hidden`` layers to ``embedding_size`` dimensions, scaled to unit L2 norm if ``normalize``."""

    def __init__(
        self,
        extractor: nn.Module,
        embedding_size: int = 128,
        hidden: Sequence[int] = (500,),
        normalize: bool = False,
    ) -> None:
        super().__init__()
        if embedding_size <= 0:
            raise ValueError(f"embedding_size must be positive, got {embedding_size}")
        self.extractor = extractor
        # The extractor's documented ``out_features``: an int (nn.Module types attributes loosely).
        out_features = cast(int, extractor.out_features)
        self.projection = mlp_head([out_features, *hidden, embedding_size])
        self.embedding_size, self.normalize = embedding_size, normalize

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        embeddings = self.projection(self.extractor(inputs))
        return F.normalize(embeddings, dim=1) if self.normalize else embeddings

    def clone(self) -> EmbeddingNet:
        return copy.deepcopy(self)


def mnist_embedding_net(
    embedding_size: int = 128, hidden: Sequence[int] = (500,), normalize: bool = False
) -> EmbeddingNet:
    """The source's MNIST conv block (:class:`~supervised.models.MnistFeatures`) with a
    projection 800 -> 500 -> ``embedding_size`` (the classifier's FC layers, ending in the
    embedding instead of the classes)."""
    return EmbeddingNet(MnistFeatures(), embedding_size, hidden, normalize)


@torch.no_grad()
def embed(
    model: nn.Module,
    images: torch.Tensor,
    batch_size: int = 1000,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Embeddings of all ``images`` in eval mode (the model's previous mode is restored)."""
    with evaluating(model):
        return batched_forward(model, images, batch_size, device)


def _check_labelled(embeddings: torch.Tensor, labels: torch.Tensor, name: str) -> None:
    if embeddings.ndim != 2 or len(embeddings) != len(labels) or len(labels) == 0:
        raise ValueError(
            f"{name} need non-empty embeddings (N, D) and N labels, got "
            f"{tuple(embeddings.shape)} and {tuple(labels.shape)}"
        )


def class_prototypes(
    embeddings: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean embedding of each class present: ``(classes (C,), prototypes (C, D))``."""
    _check_labelled(embeddings, labels, "prototypes")
    classes, index = torch.unique(labels, return_inverse=True)
    sums = torch.zeros(len(classes), embeddings.shape[1], device=embeddings.device)
    sums.index_add_(0, index, embeddings.float())
    counts = torch.bincount(index, minlength=len(classes)).to(sums)
    return classes, sums / counts[:, None]


def nearest_references(
    queries: torch.Tensor,
    references: torch.Tensor,
    k: int,
    distance: Distance | None = None,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Indices ``(Q, k)`` of each query's ``k`` nearest references, nearest first, computed in
    chunks of queries so memory stays ``chunk_size x R``."""
    if not 0 < k <= len(references):
        raise ValueError(f"k must be in [1, {len(references)}] (the number of references), got {k}")
    distance = distance if distance is not None else EuclideanDistance()
    return torch.cat(
        [
            distance.pairwise(chunk, references).topk(k, dim=1, largest=False).indices
            for chunk in queries.split(chunk_size)
        ]
    )


def _accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    return 100.0 * (predicted == labels.to(predicted.device)).float().mean().item()


def prototype_accuracy(
    queries: torch.Tensor,
    query_labels: torch.Tensor,
    references: torch.Tensor,
    reference_labels: torch.Tensor,
    distance: Distance | None = None,
) -> float:
    """Accuracy (%) of classifying each query by its nearest class prototype (the mean
    reference embedding of the class)."""
    _check_labelled(queries, query_labels, "queries")
    classes, prototypes = class_prototypes(references, reference_labels)
    return precision_at_1(queries, query_labels, prototypes, classes, distance)


def knn_predict(
    queries: torch.Tensor,
    references: torch.Tensor,
    reference_labels: torch.Tensor,
    k: int = 5,
    distance: Distance | None = None,
) -> torch.Tensor:
    """The majority class among each query's ``k`` nearest references; a tie goes to the tied
    class with the nearest member."""
    _check_labelled(references, reference_labels, "references")
    neighbours = reference_labels[nearest_references(queries, references, k, distance)]  # (Q, k)
    classes = int(reference_labels.max()) + 1
    votes = F.one_hot(neighbours, classes).sum(1)  # (Q, classes)
    winning = votes == votes.max(1, keepdim=True).values
    first_winner = winning.gather(1, neighbours).float().argmax(1)  # nearest tied neighbour
    return neighbours.gather(1, first_winner[:, None])[:, 0]


def knn_accuracy(
    queries: torch.Tensor,
    query_labels: torch.Tensor,
    references: torch.Tensor,
    reference_labels: torch.Tensor,
    k: int = 5,
    distance: Distance | None = None,
) -> float:
    """Accuracy (%) of the ``k``-nearest-neighbour majority vote (test queries against training
    references)."""
    _check_labelled(queries, query_labels, "queries")
    return _accuracy(knn_predict(queries, references, reference_labels, k, distance), query_labels)


def precision_at_1(
    queries: torch.Tensor,
    query_labels: torch.Tensor,
    references: torch.Tensor,
    reference_labels: torch.Tensor,
    distance: Distance | None = None,
) -> float:
    """Precision@1 (%): the share of queries whose nearest reference has their class, as
    pytorch-metric-learning's ``AccuracyCalculator`` with queries and references from
    different sets."""
    _check_labelled(queries, query_labels, "queries")
    _check_labelled(references, reference_labels, "references")
    nearest = nearest_references(queries, references, 1, distance)[:, 0]
    return _accuracy(reference_labels[nearest], query_labels)


def embedding_scores(
    queries: torch.Tensor,
    query_labels: torch.Tensor,
    references: torch.Tensor,
    reference_labels: torch.Tensor,
    k: int = 5,
    distance: Distance | None = None,
) -> dict[str, float]:
    """Prototype accuracy, k-NN accuracy and precision@1 (%); NaN for all when any embedding
    is not finite (a diverged model)."""
    if not (torch.isfinite(queries).all() and torch.isfinite(references).all()):
        names = ("prototype_accuracy", f"knn{k}_accuracy", "precision_at_1")
        return dict.fromkeys(names, float("nan"))
    args = (queries, query_labels, references, reference_labels)
    return {
        "prototype_accuracy": prototype_accuracy(*args, distance=distance),
        f"knn{k}_accuracy": knn_accuracy(*args, k=k, distance=distance),
        "precision_at_1": precision_at_1(*args, distance=distance),
    }


def pca_2d(embeddings: torch.Tensor) -> torch.Tensor:
    """The embeddings projected on their two principal components ``(N, 2)`` (centred; the sign
    of each component is fixed so its largest loading is positive)."""
    if embeddings.ndim != 2 or len(embeddings) < 2 or embeddings.shape[1] < 2:
        raise ValueError(
            f"PCA to 2-D needs at least 2 embeddings of >= 2 dims, got {tuple(embeddings.shape)}"
        )
    centred = embeddings.double() - embeddings.double().mean(0)
    _, _, components = torch.linalg.svd(centred, full_matrices=False)
    axes = components[:2]
    signs = torch.sign(axes.gather(1, axes.abs().argmax(1, keepdim=True)))
    return (centred @ (axes * signs).T).float()


def plot_embeddings(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    path: str | Path,
    title: str = "",
    max_points: int = 5000,
) -> Path:
    """Save a PNG scatter of the 2-D PCA of ``embeddings`` at ``path``, coloured by class; only
    the first ``max_points`` are plotted (the projection uses all)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = pca_2d(embeddings.cpu())[:max_points].numpy()
    classes = labels.cpu()[:max_points].numpy()
    figure, axis = plt.subplots(figsize=(6, 6), dpi=100)
    scatter = axis.scatter(points[:, 0], points[:, 1], c=classes, cmap="tab10", s=3, alpha=0.7)
    axis.legend(*scatter.legend_elements(), title="class", loc="best", fontsize="small")
    axis.set(xlabel="PC 1", ylabel="PC 2", title=title)
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(destination)
    plt.close(figure)
    return destination
