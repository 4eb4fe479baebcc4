"""Invariants checked by property-based tests (Hypothesis), each bounded to a few seconds:
attacks stay in budget and range, occlusions only write the background, OHEM keeps exactly the
hardest k, and join rules are invariant to the members' order exactly where they should be."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

from supervised.attacks import ATTACKS, make_attack
from supervised.join_rules import (
    LearnedFusion,
    MeanProbabilityRule,
    MostConfidentRule,
    ProductRule,
    SumRule,
    WeightedSumRule,
)
from supervised.occlusions import (
    CornerOcclusion,
    DiagonalCut,
    HorizontalCut,
    RandomSquares,
    Rectangles,
    VerticalCut,
)
from supervised.reducers import HardExampleMining

# Few examples, no deadline (a busy 2-core machine), no database: deterministic and bounded.
BOUNDED = settings(
    max_examples=12,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def edge_images(seed: int, count: int = 6) -> torch.Tensor:
    """1x5x5 images, about a third of the pixels exactly at 0 or 1."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 1, 5, 5, generator=generator)
    pick = torch.rand(count, 1, 5, 5, generator=generator)
    return torch.where(pick < 0.17, 0.0, torch.where(pick > 0.83, 1.0, images))


def linear_model(seed: int, classes: int, scale: float) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(25, classes))
    with torch.no_grad():
        model[1].weight.mul_(scale)
        model[1].bias.mul_(scale)
    return model.eval()


@BOUNDED
@given(
    name=st.sampled_from(sorted(ATTACKS)),
    seed=st.integers(0, 2**31),
    eps=st.floats(0.0, 0.5),
    classes=st.integers(2, 4),
    scale=st.floats(0.1, 50.0),  # large scales saturate the softmax: zero gradients
    targeted=st.booleans(),
)
def test_attacks_stay_within_eps_and_the_pixel_range(name, seed, eps, classes, scale, targeted):
    images = edge_images(seed)
    labels = torch.randint(
        0, classes, (len(images),), generator=torch.Generator().manual_seed(seed)
    )
    model = linear_model(seed, classes, scale)
    targeted = targeted and ATTACKS[name].supports_targeted
    options = {"steps": 3} if name in ("PGD", "BIM", "CW", "RFGSM", "TPGD", "MIFGSM") else {}
    if name == "BIM":
        options["alpha"] = 0.05
    attack = make_attack(
        name, model, seed=seed, targeted=targeted, **({} if name == "CW" else {"eps": eps}),
        **options,
    )  # fmt: skip
    adversarial = attack(images, None if name == "TPGD" else labels)
    assert adversarial.shape == images.shape and torch.isfinite(adversarial).all()
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    if name == "CW":  # an L2 attack without a budget: it reports the L2 norm it used
        assert torch.allclose(attack.last_l2, (adversarial - images).flatten(1).norm(dim=1))
    else:
        assert (adversarial - images).abs().max() <= eps + 1e-6


OCCLUSIONS = st.one_of(
    st.builds(HorizontalCut, st.floats(0, 1)),
    st.builds(VerticalCut, st.floats(0, 1)),
    st.builds(DiagonalCut, st.floats(0, 1)),
    st.builds(CornerOcclusion, st.floats(0.01, 0.5), st.floats(0, 1)),
    st.builds(
        RandomSquares,
        st.integers(1, 5),
        st.integers(1, 3),
        st.integers(0, 2**63 - 1),
        st.floats(0, 1),
    ),
    st.builds(
        Rectangles,
        st.lists(
            st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 2), st.integers(1, 2)),
            min_size=1,
            max_size=3,
        ),
        st.floats(0, 1),
    ),
)


@BOUNDED
@given(first=OCCLUSIONS, second=OCCLUSIONS, seed=st.integers(0, 2**31), union=st.booleans())
def test_occlusions_only_ever_write_the_background(first, second, seed, union) -> None:
    occlusion = first | second if union else first
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(4, 3, 5, 5, generator=generator)
    before = images.clone()
    occluded = occlusion(images)
    assert torch.equal(images, before)  # the input is not modified
    changed = occluded != images
    assert (occluded[changed] == occlusion.background).all()
    mask = occlusion.mask(4, 5, 5).expand(4, 5, 5)
    # Exactly the masked pixels hold the background, in every channel; the rest are untouched.
    assert (occluded.permute(1, 0, 2, 3)[:, mask] == occlusion.background).all()
    assert torch.equal(occluded.permute(1, 0, 2, 3)[:, ~mask], images.permute(1, 0, 2, 3)[:, ~mask])


@BOUNDED
@given(
    losses=st.lists(st.floats(-1e3, 1e3, allow_subnormal=False), min_size=1, max_size=40),
    data=st.data(),
)
def test_ohem_keeps_exactly_the_hardest_k(losses, data) -> None:
    k = data.draw(st.integers(1, len(losses)))
    values = torch.tensor(losses, dtype=torch.float64, requires_grad=True)
    reduced = HardExampleMining(k=k)(values)
    reduced.backward()
    kept = values.grad != 0
    assert int(kept.sum()) == k and torch.allclose(
        values.grad[kept], torch.full((k,), 1.0 / k, dtype=torch.float64)
    )
    hardest = sorted(losses)[-k:]
    # The kept losses are the k largest (as a multiset: ties may keep either copy).
    assert sorted(values.detach()[kept].tolist()) == hardest
    assert reduced.item() == pytest.approx(sum(hardest) / k)


MEMBER_LOGITS = st.tuples(st.integers(0, 2**31), st.integers(2, 4), st.integers(2, 5))


def member_logits(seed: int, members: int, classes: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 3 * torch.randn(3, members, classes, generator=generator, dtype=torch.float64)


@BOUNDED
@given(shape=MEMBER_LOGITS, data=st.data())
def test_symmetric_join_rules_ignore_the_members_order(shape, data) -> None:
    logits = member_logits(*shape)
    order = torch.tensor(data.draw(st.permutations(range(shape[1]))))
    for rule in (SumRule(), SumRule([2.0] * shape[1]), ProductRule(), MeanProbabilityRule(),
                 MostConfidentRule()):  # fmt: skip
        assert torch.allclose(rule(logits), rule(logits[:, order]), atol=1e-9), rule


@BOUNDED
@given(shape=MEMBER_LOGITS, data=st.data())
def test_weighted_join_rules_follow_the_members_order(shape, data) -> None:
    """Weights (and a learned fusion) belong to positions: swapping two different members
    changes the joined output."""
    seed, members, classes = shape
    logits = member_logits(seed, members, classes)
    order = torch.tensor(data.draw(st.permutations(range(members))))
    assume(not torch.equal(order, torch.arange(members)))
    weights = [float(index + 1) for index in range(members)]  # all different
    weighted = SumRule(weights)
    assert not torch.allclose(weighted(logits), weighted(logits[:, order]))
    # Permuting the weights with the members gives the same output back.
    assert torch.allclose(weighted(logits), SumRule([weights[i] for i in order])(logits[:, order]))
    fusion = LearnedFusion(classes, members).double()
    with torch.no_grad():
        # It starts as the plain sum (symmetric); once trained, its weights tell members apart.
        assert torch.allclose(fusion(logits), fusion(logits[:, order]))
        fusion.conv.weight.copy_(torch.tensor(weights, dtype=torch.float64).view(1, 1, -1, 1))
        assert not torch.allclose(fusion(logits), fusion(logits[:, order]))
    if members == 2:
        omega = WeightedSumRule(0.5)
        assert not torch.allclose(omega(logits), omega(logits[:, [1, 0]]))
