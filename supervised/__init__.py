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
- ``supervised.join_rules`` / ``supervised.synergy``: join rules and synergy models (a normal
  and a negative head on one frozen extractor), assembled or trained, with case analysis.
- ``supervised.attacks`` / ``supervised.robustness``: FGSM, PGD, BIM, CW, RFGSM, FFGSM, TPGD,
  MIFGSM in plain torch; accuracy under attack, the FGSM eps sweep, transfer matrices.
"""

from supervised.attacks import (
    ATTACKS,
    BIM,
    CW,
    FFGSM,
    FGSM,
    MIFGSM,
    PGD,
    RFGSM,
    TPGD,
    Attack,
    make_attack,
)
from supervised.cbomf import (
    MODES,
    CBOMFConfig,
    Phase,
    evaluate_modes,
    train_mode,
    train_modes,
)
from supervised.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from supervised.data import DataFileError, LabelledImages, load_cifar10, load_emnist, load_mnist
from supervised.evaluation import batched_forward, evaluate, evaluate_models, extract_features
from supervised.join_rules import (
    JOIN_RULES,
    Ensemble,
    JoinRule,
    LearnedFusion,
    MeanProbabilityRule,
    MostConfidentRule,
    ProductRule,
    SumRule,
    WeightedSumRule,
    make_join_rule,
)
from supervised.models import (
    NegatableClassifier,
    cifar_lenet,
    cifar_resnet18,
    make_classifier,
    mnist_net,
)
from supervised.negation import FeatureNegation, negation_for
from supervised.occlusions import Occlusion, corner_occlusions, mnist_cuts, partial_test_sets
from supervised.robustness import accuracy_under_attack, fgsm_sweep, transfer_matrix
from supervised.runtime import seed_everything, select_device
from supervised.stacked import StackedBatches, StackedTrainer, evaluate_stacked, predict_stacked
from supervised.synergy import (
    SynergyModel,
    assemble_synergy,
    case_analysis,
    hot_start_synergy,
    train_fusion,
    train_synergy,
)
from supervised.training import (
    BatchSource,
    LossReducer,
    MeanReducer,
    TensorBatches,
    Trainer,
    iterate_batches,
)

__all__ = [
    "ATTACKS",
    "Attack",
    "BIM",
    "BatchSource",
    "CBOMFConfig",
    "CW",
    "CheckpointError",
    "DataFileError",
    "Ensemble",
    "FFGSM",
    "FGSM",
    "FeatureNegation",
    "JOIN_RULES",
    "JoinRule",
    "LabelledImages",
    "LearnedFusion",
    "LossReducer",
    "MIFGSM",
    "MODES",
    "MeanProbabilityRule",
    "MeanReducer",
    "MostConfidentRule",
    "NegatableClassifier",
    "Occlusion",
    "PGD",
    "Phase",
    "ProductRule",
    "RFGSM",
    "StackedBatches",
    "StackedTrainer",
    "SumRule",
    "SynergyModel",
    "TPGD",
    "TensorBatches",
    "Trainer",
    "WeightedSumRule",
    "accuracy_under_attack",
    "assemble_synergy",
    "batched_forward",
    "case_analysis",
    "cifar_lenet",
    "cifar_resnet18",
    "corner_occlusions",
    "evaluate",
    "evaluate_models",
    "evaluate_modes",
    "evaluate_stacked",
    "extract_features",
    "fgsm_sweep",
    "hot_start_synergy",
    "iterate_batches",
    "load_checkpoint",
    "load_cifar10",
    "load_emnist",
    "load_mnist",
    "make_attack",
    "make_classifier",
    "make_join_rule",
    "mnist_cuts",
    "mnist_net",
    "negation_for",
    "partial_test_sets",
    "predict_stacked",
    "save_checkpoint",
    "seed_everything",
    "select_device",
    "train_fusion",
    "train_mode",
    "train_modes",
    "train_synergy",
    "transfer_matrix",
]
