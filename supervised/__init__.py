"""Negative-learning supervised models, datasets, occlusions and training utilities.

Small composable parts (see the README's supervised section):

- ``supervised.data``: MNIST, EMNIST and CIFAR-10 readers into :class:`LabelledImages` tensors.
- ``supervised.occlusions``: seeded occlusions that derive partial test sets.
- ``supervised.negation`` / ``supervised.models``: feature negations and
  extractor + head models they plug into.
- ``supervised.runtime``, ``supervised.training``, ``supervised.evaluation``,
  ``supervised.checkpoints``: device, seeding, the fit loop, multi-set evaluation, checkpoints.
- ``supervised.capture``: the training step captured as a CUDA graph and replayed on CUDA.
- ``supervised.stacked``: K copies of a model trained and evaluated in one vectorised step.
- ``supervised.cbomf``: classification based on missing features, every training mode.
"""

from supervised.cbomf import (
    MODES,
    CBOMFConfig,
    Phase,
    evaluate_modes,
    evaluate_modes_stacked,
    train_mode,
    train_modes,
    train_modes_stacked,
)
from supervised.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from supervised.data import DataFileError, LabelledImages, load_cifar10, load_emnist, load_mnist
from supervised.evaluation import batched_forward, evaluate
from supervised.models import NegatableClassifier, cifar_lenet, cifar_resnet18, mnist_net
from supervised.negation import FeatureNegation, negation_for
from supervised.occlusions import Occlusion, corner_occlusions, mnist_cuts, partial_test_sets
from supervised.runtime import seed_everything, select_device
from supervised.stacked import StackedBatches, StackedTrainer, evaluate_stacked, predict_stacked
from supervised.training import Trainer, iterate_batches

__all__ = [
    "MODES",
    "CBOMFConfig",
    "CheckpointError",
    "DataFileError",
    "FeatureNegation",
    "LabelledImages",
    "NegatableClassifier",
    "Occlusion",
    "Phase",
    "StackedBatches",
    "StackedTrainer",
    "Trainer",
    "cifar_lenet",
    "cifar_resnet18",
    "corner_occlusions",
    "evaluate",
    "evaluate_modes",
    "evaluate_modes_stacked",
    "evaluate_stacked",
    "iterate_batches",
    "load_checkpoint",
    "load_cifar10",
    "load_emnist",
    "load_mnist",
    "mnist_cuts",
    "mnist_net",
    "negation_for",
    "partial_test_sets",
    "predict_stacked",
    "batched_forward",
    "save_checkpoint",
    "seed_everything",
    "select_device",
    "train_mode",
    "train_modes",
    "train_modes_stacked",
]
