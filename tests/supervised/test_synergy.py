"""Join rules on hand-made logits, synergy assembly and training, case analysis."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from supervised.cbomf import CBOMFConfig, train_modes
from supervised.checkpoints import load_checkpoint, read_metadata, save_checkpoint
from supervised.context import RunContext
from supervised.join_rules import (
    Ensemble,
    LearnedFusion,
    MeanProbabilityRule,
    MostConfidentRule,
    ProductRule,
    SumRule,
    WeightedSumRule,
    make_join_rule,
)
from supervised.models import cifar_lenet, cifar_resnet18, mnist_net
from supervised.synergy import (
    SynergyModel,
    assemble_synergy,
    case_analysis,
    hot_start_synergy,
    model_from_metadata,
    model_metadata,
    synergy_from_classifier,
    synergy_outputs,
    train_fusion,
    train_synergy,
)

CPU = RunContext("cpu", progress=False)
FAST = CBOMFConfig(lr=0.05, momentum=0.5, batch_size=64, epochs=1, second_epochs=1)
# Two members, three classes: sample 0 both right (class 0), sample 1 only the negative head
# right (class 2), the normal head confidently wrong.
NORMAL = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
NEGATIVE = torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.0, 1.0]])
STACKED = torch.stack((NORMAL, NEGATIVE), 1)


def test_sum_rules_on_hand_made_logits() -> None:
    assert torch.equal(SumRule()(STACKED), NORMAL + NEGATIVE)
    assert torch.equal(WeightedSumRule(2.0)(STACKED), NORMAL + 2 * NEGATIVE)
    assert torch.equal(SumRule((0.5, 1.0))(STACKED), 0.5 * NORMAL + NEGATIVE)
    # When both heads are right, the sum is right, whatever the logits' scales.
    generator = torch.Generator().manual_seed(0)
    logits = (
        torch.randn(500, 2, 7, generator=generator) * torch.rand(500, 2, 1, generator=generator) * 5
    )
    both_right = logits[:, 0].argmax(1) == logits[:, 1].argmax(1)
    for rule in (SumRule(), WeightedSumRule(0.5), ProductRule(), MostConfidentRule()):
        joined = rule(logits[both_right]).argmax(1)
        assert torch.equal(joined, logits[both_right, 0].argmax(1)), type(rule).__name__


def test_product_mean_and_max_rules_against_hand_computed_values() -> None:
    p_normal, p_negative = NORMAL.softmax(1), NEGATIVE.softmax(1)
    product = ProductRule()(STACKED).softmax(1)
    expected = p_normal * p_negative / (p_normal * p_negative).sum(1, keepdim=True)
    assert torch.allclose(product, expected, atol=1e-6)
    # sample 1 by hand: p_normal = (1, e^3, 1) / (2 + e^3), p_negative = (1, 1, e) / (2 + e)
    e3, e = math.exp(3), math.e
    by_hand = torch.tensor([1 * 1, e3 * 1, 1 * e]) / (1 + e3 + e)
    assert torch.allclose(product[1], by_hand, atol=1e-6)
    mean = MeanProbabilityRule()(STACKED).exp()
    assert torch.allclose(mean, (p_normal + p_negative) / 2, atol=1e-6)
    # Max-ensemble: sample 0 the normal head is more confident (0.787 vs 0.506), sample 1 too
    # (e^3 / (2 + e^3) = 0.909 vs e / (2 + e) = 0.576): both rows come from the normal head.
    chosen = MostConfidentRule()(STACKED).exp()
    assert torch.allclose(chosen, p_normal, atol=1e-6)
    flipped = MostConfidentRule()(torch.stack((NEGATIVE, NORMAL), 1)).exp()
    assert torch.allclose(flipped, p_normal, atol=1e-6)


def test_rule_errors() -> None:
    with pytest.raises(ValueError, match="join rule must be one of .*got 'median'"):
        make_join_rule("median")
    with pytest.raises(ValueError, match=r"\(batch, members >= 2, classes\)"):
        SumRule()(NORMAL)
    with pytest.raises(ValueError, match="omega must be >= 0"):
        WeightedSumRule(-1)
    with pytest.raises(ValueError, match="3 weights for 2 members"):
        SumRule((1, 1, 1))(STACKED)
    with pytest.raises(ValueError, match="joins 2 members of 4 classes"):
        LearnedFusion(4)(STACKED)
    assert isinstance(make_join_rule("weighted", omega=0.5), WeightedSumRule)
    assert make_join_rule("fusion", num_classes=3).config() == {
        "num_classes": 3,
        "members": 2,
        "channels": 1,
    }


def test_fusion_starts_as_the_sum() -> None:
    assert torch.allclose(LearnedFusion(3, channels=2)(STACKED), NORMAL + NEGATIVE, atol=1e-6)


def test_ensemble_joins_independent_models() -> None:
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    inputs = torch.randn(5, 4)
    ensemble = Ensemble([a, b], MeanProbabilityRule())
    expected = (a(inputs).softmax(1) + b(inputs).softmax(1)) / 2
    assert torch.allclose(ensemble(inputs).exp(), expected, atol=1e-6)
    with pytest.raises(ValueError, match="at least two members"):
        Ensemble([a], SumRule())
    with pytest.raises(ValueError, match="disagree on the output shape"):
        Ensemble([a, nn.Linear(4, 2)], SumRule())(inputs)


def trained_pair(data):
    trained = train_modes(["SN", "HN"], mnist_net, data, FAST, context=CPU)[0]
    return trained["SN"].model, trained["HN"].model


def test_assembled_synergy_reuses_both_models(small_data) -> None:
    normal, negative = trained_pair(small_data)
    synergy = assemble_synergy(normal, negative)
    images = small_data.images[:20]
    with torch.no_grad():
        normal.eval(), negative.eval()
        members = synergy.member_logits(synergy.features(images))
        assert torch.allclose(members[:, 0], normal(images), atol=1e-6)
        assert torch.allclose(members[:, 1], negative(images), atol=1e-6)
        assert torch.allclose(synergy(images), normal(images) + negative(images), atol=1e-5)
    assert all(not p.requires_grad for p in synergy.extractor.parameters())
    product = synergy.with_rule(ProductRule())
    assert product.extractor is synergy.extractor and product.head is synergy.head
    with pytest.raises(ValueError, match="normal must run without negation"):
        assemble_synergy(negative, negative)
    with pytest.raises(ValueError, match="negative must run with negation on"):
        assemble_synergy(normal, normal)
    other = negative.clone()
    with torch.no_grad():
        other.extractor.conv1.weight.add_(1.0)
    with pytest.raises(ValueError, match="extractor differs"):
        assemble_synergy(normal, other)


def test_synergy_model_checks_heads_and_frozen_extractor() -> None:
    model = mnist_net()
    with pytest.raises(ValueError, match="head gives 10 classes but negative_head gives 47"):
        SynergyModel(model.extractor, model.head, mnist_net(47).head)
    with pytest.raises(ValueError, match="needs a frozen extractor"):
        SynergyModel(model.extractor, model.head, mnist_net().head, rule=LearnedFusion(10))
    with pytest.raises(ValueError, match="always uses both heads"):
        synergy_from_classifier(model, 0).set_negation(True)


def test_fusion_training_changes_only_the_fusion(small_data) -> None:
    normal, negative = trained_pair(small_data)
    synergy = assemble_synergy(normal, negative)
    before = {k: v.clone() for k, v in synergy.state_dict().items()}
    fused = train_fusion(synergy, small_data, FAST, epochs=2, seed=0, context=CPU)
    after = fused.model.state_dict()
    fusion_keys = {k for k in after if k.startswith("rule.")}
    assert fusion_keys == {
        "rule.conv.weight",
        "rule.conv.bias",
        "rule.linear.weight",
        "rule.linear.bias",
    }
    assert all(torch.equal(after[k], before[k]) for k in before), "extractor or heads changed"
    start = LearnedFusion(10)
    assert any(not torch.equal(after[f"rule.{k}"], v) for k, v in start.state_dict().items())
    assert all(torch.equal(v, synergy.state_dict()[k]) for k, v in before.items())


def test_trained_and_hot_start_synergy_learn(small_data) -> None:
    config = CBOMFConfig(lr=0.05, batch_size=32, epochs=2, second_epochs=3)
    jointly = train_synergy(mnist_net, small_data, config, seed=1, context=CPU)
    (losses,) = jointly.losses  # one phase of two epochs
    assert len(losses) == 2 and losses[-1] < losses[0]
    assert any(p.requires_grad for p in jointly.model.extractor.parameters())
    normal, _ = trained_pair(small_data)
    extractor_before = {k: v.clone() for k, v in normal.extractor.state_dict().items()}
    hot = hot_start_synergy(normal, small_data, config, seed=1, context=CPU, global_step=10)
    assert hot.losses[0][-1] < hot.losses[0][0] and hot.global_step == 10 + 3 * 8
    assert all(
        torch.equal(hot.model.extractor.state_dict()[k], v) for k, v in extractor_before.items()
    )
    again = train_synergy(mnist_net, small_data, config, seed=1, context=CPU)
    assert again.losses == jointly.losses


def test_case_counts_add_up() -> None:
    generator = torch.Generator().manual_seed(0)
    members = torch.randn(300, 2, 4, generator=generator)
    labels = torch.randint(0, 4, (300,), generator=generator)
    joined = SumRule()(members)
    cases = case_analysis(members, joined, labels)
    assert cases.total == 300
    assert cases.rescued <= cases.neither and cases.lost <= cases.both
    normal_right = int((members[:, 0].argmax(1) == labels).sum())
    assert cases.both + cases.only_normal == normal_right
    assert cases.synergy_right == int((joined.argmax(1) == labels).sum())
    # The hand-made pair: sample 0 both right, sample 1 only negative right; the sum picks
    # class 1 for sample 1 (3 vs 1), so synergy is right once.
    hand = case_analysis(STACKED, SumRule()(STACKED), torch.tensor([0, 2]))
    assert (hand.both, hand.only_normal, hand.only_negative, hand.neither) == (1, 0, 1, 0)
    assert (hand.rescued, hand.lost, hand.synergy_right) == (0, 0, 1)
    with pytest.raises(ValueError, match=r"member_logits must be \(N, 2, classes\)"):
        case_analysis(NORMAL, NORMAL, labels[:2])


@pytest.mark.parametrize(
    ("factory", "shape"),
    [(mnist_net, (3, 1, 28, 28)), (cifar_lenet, (3, 3, 32, 32)), (cifar_resnet18, (2, 3, 32, 32))],
)
def test_synergy_works_with_every_architecture(factory, shape, tmp_path: Path) -> None:
    torch.manual_seed(0)
    synergy = synergy_from_classifier(factory(), seed=3)
    images = torch.rand(shape)
    synergy.eval()
    members, joined = synergy_outputs(synergy, images)
    assert members.shape == (shape[0], 2, 10) and joined.shape == (shape[0], 10)
    assert not torch.equal(members[:, 0], members[:, 1])
    arch = {mnist_net: "mnist", cifar_lenet: "lenet", cifar_resnet18: "resnet18"}[factory]
    path = save_checkpoint(
        tmp_path / "m.pt", synergy, metadata=model_metadata(synergy, arch, 10, "relu")
    )
    rebuilt = model_from_metadata(read_metadata(path))
    load_checkpoint(path, rebuilt)
    rebuilt.eval()
    assert torch.allclose(rebuilt(images), synergy(images), atol=1e-5)
