"""Classes of bad input that used to fail deep inside torch or Python, each checked at every
entry point that takes it: a name where an occlusion belongs, and seeds torch cannot hold."""

from __future__ import annotations

import pytest
import torch

from supervised.attacks import make_attack
from supervised.complementary import train_noisy
from supervised.data import LabelledImages
from supervised.models import mnist_net
from supervised.negative_aware import OccludedNegatives, negative_test_sets, train_classifier
from supervised.occlusions import (
    HorizontalCut,
    RandomSquares,
    Union,
    cifar_blocks,
    occlude,
    partial_test_sets,
)
from supervised.runtime import SEED_MAX, derive_seed, make_generator, seed_everything
from supervised.siamese import train_schedules
from supervised.synergy import train_synergy


def tiny_data() -> LabelledImages:
    images = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    return LabelledImages(images, torch.arange(8) % 2, ("a", "b"))


OCCLUSION_ENTRY_POINTS = {
    "occlude": lambda bad: occlude(tiny_data(), bad),
    "partial_test_sets": lambda bad: partial_test_sets(tiny_data(), {"cut": bad}),
    "Union": lambda bad: Union(HorizontalCut(), bad),
    "|": lambda bad: HorizontalCut() | bad,
    "OccludedNegatives": lambda bad: OccludedNegatives([HorizontalCut(), bad]),
}


@pytest.mark.parametrize("entry", list(OCCLUSION_ENTRY_POINTS))
@pytest.mark.parametrize("bad", ["horizontal", None, lambda images: images])
def test_a_name_or_function_is_not_an_occlusion(entry: str, bad) -> None:
    with pytest.raises(TypeError, match=r"must be an Occlusion \(e.g. HorizontalCut\(\)\), got"):
        OCCLUSION_ENTRY_POINTS[entry](bad)


def test_occlusion_name_errors_say_how_to_look_one_up() -> None:
    with pytest.raises(TypeError, match=r"a name is not an occlusion: look it up, e.g. mnist_cuts"):
        occlude(tiny_data(), "horizontal")
    with pytest.raises(TypeError, match="occlusions must be a sequence of Occlusion objects"):
        OccludedNegatives("horizontal")  # would have been split into letters
    with pytest.raises(TypeError, match="occlusions must be a sequence of Occlusion objects"):
        OccludedNegatives(HorizontalCut())


SEED_ENTRY_POINTS = {
    "seed_everything": lambda seed: seed_everything(seed),
    "derive_seed": lambda seed: derive_seed(seed, "x"),
    "make_generator": lambda seed: make_generator(seed, "x"),
    "RandomSquares": lambda seed: RandomSquares(4, seed=seed),
    "cifar_blocks": lambda seed: cifar_blocks(seed),
    "reset_head": lambda seed, model=None: model.reset_head(seed),
    "attack": lambda seed, model=None: make_attack("PGD", model, seed=seed),
    "train_noisy": lambda seed: train_noisy(["CE"], mnist_net, tiny_data(), seed=seed),
    "train_classifier": lambda seed, model=None: train_classifier(
        model, tiny_data(), None, seed=seed
    ),
    "negative_test_sets": lambda seed: negative_test_sets(tiny_data(), {}, seed),
    "train_synergy": lambda seed: train_synergy(mnist_net, tiny_data(), seed=seed),
    "train_schedules": lambda seed: train_schedules(["TSN"], tiny_data(), seed=seed),
}


@pytest.mark.parametrize("entry", list(SEED_ENTRY_POINTS))
@pytest.mark.parametrize(
    "seed, error",
    [(2**64, ValueError), (SEED_MAX + 1, ValueError), (-1, ValueError), (1.0, TypeError),
     ("0", TypeError), (True, TypeError)],
)  # fmt: skip
def test_seeds_torch_cannot_hold_are_refused_up_front(entry: str, seed, error) -> None:
    call = SEED_ENTRY_POINTS[entry]
    if "model" in call.__code__.co_varnames:  # built before the RNG state is taken
        model = mnist_net(2)
        call = lambda seed: SEED_ENTRY_POINTS[entry](seed, model)  # noqa: E731
    state = torch.random.get_rng_state()
    with pytest.raises(error, match=r"seed must be an integer in \[0, "):
        call(seed)
    assert torch.equal(torch.random.get_rng_state(), state)  # refused before any draw


def test_the_largest_seed_works_everywhere_a_generator_is_seeded() -> None:
    assert RandomSquares(4, seed=SEED_MAX).mask(2, 8, 8).shape == (2, 8, 8)
    assert make_generator(SEED_MAX).initial_seed() == derive_seed(SEED_MAX)
    attack = make_attack("PGD", mnist_net(2).eval(), eps=0.1, steps=1, seed=SEED_MAX)
    data = tiny_data()
    assert attack(data.images, data.labels).shape == data.images.shape
