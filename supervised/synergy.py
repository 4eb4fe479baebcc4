"""Synergy models: one shared frozen extractor, a normal head, a negative head on the negated
features, and a join rule, so the strengths of CBOMF's normal and negative models add up.

Assembled from a CBOMF run's SN and HN models without training (:func:`assemble_synergy`),
trained from scratch (:func:`train_synergy`), on SN's frozen extractor
(:func:`hot_start_synergy`), or with a learned fusion on fixed members (:func:`train_fusion`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from supervised.cbomf import CBOMFConfig, fit_trainable
from supervised.context import DEFAULT_CONTEXT, RunContext
from supervised.data.common import LabelledImages
from supervised.evaluation import _same_extractor, batched_forward, model_device
from supervised.join_rules import JoinRule, LearnedFusion, WeightedSumRule, make_join_rule
from supervised.models import NegatableClassifier, make_classifier, reset_parameters_
from supervised.negation import FeatureNegation
from supervised.runtime import derive_seed, make_generator, seeded_build
from supervised.training import Trained, evaluating

#: The source's hyperparameters (SGD lr 0.01, momentum 0.5, batch 64, 10 + 10 epochs).
DEFAULT_CONFIG = CBOMFConfig()


def _output_classes(head: nn.Module) -> int | None:
    linears = [layer for layer in head.modules() if isinstance(layer, nn.Linear)]
    return linears[-1].out_features if linears else None


class SynergyModel(NegatableClassifier):
    """``rule(stack(head(f), negative_head(negation(f))))`` with ``f = extractor(x)``.

    A :class:`NegatableClassifier` whose negation applies on the negative branch only; the two
    heads classify the same classes. ``rule`` is :class:`WeightedSumRule` with omega 1 (the
    source's) by default.
    """

    negation: FeatureNegation  # never None: __init__ refuses a model without one

    def __init__(
        self,
        extractor: nn.Module,
        head: nn.Module,
        negative_head: nn.Module,
        negation: FeatureNegation | None = None,
        rule: JoinRule | None = None,
    ) -> None:
        super().__init__(extractor, head, negation)
        if self.negation is None:
            raise ValueError(
                "a synergy model needs a feature negation: pass negation= or give the extractor an output_activation"
            )
        normal_classes, negative_classes = _output_classes(head), _output_classes(negative_head)
        if None not in (normal_classes, negative_classes) and normal_classes != negative_classes:
            raise ValueError(
                f"head gives {normal_classes} classes but negative_head gives {negative_classes}; "
                "both heads must classify the same classes"
            )
        self.negative_head = negative_head
        self.rule = rule if rule is not None else WeightedSumRule(1.0)
        if not isinstance(self.rule, JoinRule):
            raise TypeError(f"rule must be a JoinRule, got {type(self.rule).__name__}")
        if self.rule.requires_frozen_members and any(
            parameter.requires_grad for parameter in self.extractor.parameters()
        ):
            raise ValueError(
                f"join rule {type(self.rule).__name__} is trained on fixed members and needs a frozen "
                "extractor; call freeze_extractor() first (or use with_rule on a frozen model)"
            )

    def set_negation(self, enabled: bool) -> None:
        raise ValueError(
            "a synergy model always uses both heads; negation applies to the negative head only"
        )

    def member_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Both heads' logits from extractor features, stacked ``(N, 2, classes)``."""
        normal = self.head(features)
        negative = self.negative_head(self.negation(features))
        if normal.shape != negative.shape:
            raise ValueError(
                f"head and negative_head disagree: {tuple(normal.shape)} vs {tuple(negative.shape)}"
            )
        return torch.stack((normal, negative), 1)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Joined logits from extractor features."""
        return self.rule(self.member_logits(features))

    def freeze_heads(self) -> None:
        """Stop training both heads (before training a learned fusion on top)."""
        for parameter in (*self.head.parameters(), *self.negative_head.parameters()):
            parameter.requires_grad_(False)

    def with_rule(self, rule: JoinRule) -> SynergyModel:
        """The same extractor, heads and negation (shared, not copied) joined by ``rule``."""
        joined = SynergyModel(self.extractor, self.head, self.negative_head, self.negation, rule)
        joined.extractor_frozen = self.extractor_frozen
        return joined


def assemble_synergy(
    normal: NegatableClassifier, negative: NegatableClassifier, rule: JoinRule | None = None
) -> SynergyModel:
    """Join, without training, a ``normal`` model without negation (e.g. CBOMF SN) and a
    ``negative`` one with negation on, trained on its frozen extractor (e.g. HN)."""
    if normal.negate:
        raise ValueError("normal must run without negation (e.g. the SN model); it has negation on")
    if not negative.negate or negative.negation is None:
        raise ValueError("negative must run with negation on (e.g. the HN model)")
    if not _same_extractor(normal.extractor, negative.extractor):
        raise ValueError(
            "negative's extractor differs from normal's: train the negative head on normal's frozen "
            "extractor (the HN schedule does) before assembling"
        )
    model = SynergyModel(
        copy.deepcopy(normal.extractor),
        copy.deepcopy(normal.head),
        copy.deepcopy(negative.head),
        copy.deepcopy(negative.negation),
    )
    model.freeze_extractor()
    return model if rule is None else model.with_rule(rule)


def synergy_from_classifier(model: NegatableClassifier, seed: int) -> SynergyModel:
    """A fresh synergy model with ``model``'s extractor and head, plus a negative head of the
    same architecture, both heads re-initialised from ``seed``."""
    synergy = SynergyModel(
        copy.deepcopy(model.extractor),
        copy.deepcopy(model.head),
        copy.deepcopy(model.head),
        copy.deepcopy(model.negation),
    )
    synergy.reset_head(seed)  # the two heads get different draws
    reset_parameters_(synergy.negative_head, derive_seed(seed, "negative"))
    return synergy


def train_synergy(
    model_factory: Callable[[], NegatableClassifier],
    data: LabelledImages,
    config: CBOMFConfig = DEFAULT_CONFIG,
    seed: int = 0,
    context: RunContext = DEFAULT_CONTEXT,
) -> Trained[SynergyModel]:
    """Trained synergy: extractor and both heads (the architecture of ``model_factory``) trained
    jointly from scratch on the summed output (omega 1) for ``config.epochs``."""
    base = seeded_build(model_factory, seed, "init")
    model = synergy_from_classifier(base, derive_seed(seed, "synergy-heads"))
    generator = make_generator(seed, "synergy-shuffle")
    return fit_trainable(
        model, data, config, config.epochs, generator, context, 0, "trained synergy"
    )


def hot_start_synergy(
    normal: NegatableClassifier,
    data: LabelledImages,
    config: CBOMFConfig = DEFAULT_CONFIG,
    seed: int = 0,
    context: RunContext = DEFAULT_CONTEXT,
    global_step: int = 0,
) -> Trained[SynergyModel]:
    """Hot-start trained synergy: both heads re-initialised and trained jointly on the summed
    output for ``config.second_epochs``, on the frozen extractor of ``normal`` (e.g. CBOMF SN,
    not modified); the curve continues from ``global_step``."""
    model = synergy_from_classifier(normal, derive_seed(seed, "hot-start-heads"))
    model.freeze_extractor()
    generator = make_generator(seed, "hot-start-shuffle")
    epochs = config.second_epochs
    return fit_trainable(
        model, data, config, epochs, generator, context, global_step, "hot-start synergy"
    )


def train_fusion(
    synergy: SynergyModel,
    data: LabelledImages,
    config: CBOMFConfig = DEFAULT_CONFIG,
    epochs: int = 1,
    seed: int = 0,
    channels: int = 1,
    context: RunContext = DEFAULT_CONTEXT,
    global_step: int = 0,
) -> Trained[SynergyModel]:
    """SynergyF: a :class:`LearnedFusion` (``channels`` convolution channels) trained for
    ``epochs`` on a copy of ``synergy`` whose extractor and heads stay frozen."""
    if epochs <= 0:
        raise ValueError(f"fusion epochs must be positive, got {epochs}")
    model = copy.deepcopy(synergy)
    model.freeze_extractor()
    model.freeze_heads()
    num_classes = _output_classes(model.head)
    if num_classes is None:
        raise ValueError("cannot size the fusion: the head has no nn.Linear output layer")
    fused = seeded_build(
        lambda: model.with_rule(LearnedFusion(num_classes, channels=channels)), seed, "fusion-init"
    )
    generator = make_generator(seed, "fusion-shuffle")
    return fit_trainable(fused, data, config, epochs, generator, context, global_step, "fusion")


@dataclass(frozen=True)
class CaseCounts:
    """Per-sample outcome counts on one test set.

    ``both + only_normal + only_negative + neither`` is the test-set size; ``rescued`` counts
    the samples synergy gets right although both heads are wrong (part of ``neither``),
    ``lost`` those it gets wrong although both are right (part of ``both``).
    """

    both: int
    only_normal: int
    only_negative: int
    neither: int
    rescued: int
    lost: int
    synergy_right: int

    @property
    def total(self) -> int:
        return self.both + self.only_normal + self.only_negative + self.neither


def case_analysis(
    member_logits: torch.Tensor, synergy_logits: torch.Tensor, labels: torch.Tensor
) -> CaseCounts:
    """Count who gets each sample right from the stacked normal and negative logits
    ``(N, 2, classes)`` and the joined ones ``(N, classes)``."""
    if member_logits.ndim != 3 or member_logits.shape[1] != 2:
        raise ValueError(
            f"member_logits must be (N, 2, classes), got shape {tuple(member_logits.shape)}"
        )
    if synergy_logits.shape != member_logits[:, 0].shape or labels.shape != member_logits.shape[:1]:
        raise ValueError(
            f"synergy_logits {tuple(synergy_logits.shape)} and labels {tuple(labels.shape)} must "
            f"match member_logits {tuple(member_logits.shape)}"
        )
    labels = labels.to(member_logits.device)
    normal, negative = (member_logits.argmax(-1) == labels[:, None]).unbind(1)
    joined = synergy_logits.argmax(-1) == labels
    count = lambda mask: int(mask.sum().item())  # noqa: E731
    return CaseCounts(
        both=count(normal & negative),
        only_normal=count(normal & ~negative),
        only_negative=count(~normal & negative),
        neither=count(~normal & ~negative),
        rescued=count(joined & ~normal & ~negative),
        lost=count(~joined & normal & negative),
        synergy_right=count(joined),
    )


@torch.no_grad()
def synergy_outputs(
    model: SynergyModel,
    images: torch.Tensor,
    batch_size: int = 1000,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Member logits ``(N, 2, classes)`` and joined logits ``(N, classes)`` for all ``images``."""
    target = model_device(model) if device is None else device
    with evaluating(model):
        members = batched_forward(
            lambda x: model.member_logits(model.features(x)), images, batch_size, target
        )
        return members, batched_forward(model.rule, members, batch_size, target)


def model_metadata(
    model: NegatableClassifier, arch: str, num_classes: int, activation: str
) -> dict:
    """Plain metadata from which :func:`model_from_metadata` rebuilds ``model``'s architecture
    (classifier or synergy model, its negation state and join rule)."""
    metadata: dict = {"arch": arch, "num_classes": num_classes, "activation": activation}
    if not isinstance(model, SynergyModel):
        return {**metadata, "kind": "classifier", "negate": model.negate}
    rule = model.rule
    return {**metadata, "kind": "synergy", "rule": rule.rule_name, "rule_config": rule.config()}


def check_model_metadata(metadata: dict) -> None:
    """Raise ``ValueError`` unless ``metadata`` describes a model as :func:`model_metadata`
    does (without building it)."""
    missing = {"arch", "num_classes", "activation", "kind"} - metadata.keys()
    if missing:
        raise ValueError(
            f"checkpoint metadata lacks {sorted(missing)}; save it with model_metadata"
        )
    if metadata["kind"] not in ("classifier", "synergy"):
        raise ValueError(f"unknown model kind {metadata['kind']!r}; expected classifier or synergy")


def model_from_metadata(metadata: dict) -> NegatableClassifier:
    """An untrained model of the architecture :func:`model_metadata` describes, ready for
    :func:`supervised.checkpoints.load_checkpoint`; synergy models come with a frozen extractor."""
    check_model_metadata(metadata)
    base = make_classifier(metadata["arch"], metadata["num_classes"], metadata["activation"])
    if metadata["kind"] == "classifier":
        base.set_negation(metadata.get("negate", False))
        return base
    synergy = synergy_from_classifier(base, 0)
    synergy.freeze_extractor()
    rule = make_join_rule(metadata["rule"], **metadata.get("rule_config", {}))
    if rule.requires_frozen_members:
        synergy.freeze_heads()
    return synergy.with_rule(rule)
