"""Each occlusion against a mask written out by hand."""

from __future__ import annotations

import pytest
import torch

from supervised.data import LabelledImages
from supervised.occlusions import (
    CornerOcclusion,
    DiagonalCut,
    HorizontalCut,
    RandomSquares,
    Rectangles,
    TripleCut,
    VerticalCut,
    cifar_blocks,
    corner_occlusions,
    mnist_cuts,
    occlude,
    partial_test_sets,
)


def blank(images: torch.Tensor, occlusion) -> torch.Tensor:
    """Which pixels the occlusion set to its background (images are all ones)."""
    return occlusion(images)[:, 0] == occlusion.background


def test_horizontal_vertical_diagonal_cuts_on_a_4x4() -> None:
    images = torch.ones(2, 1, 4, 4)
    expected_h = torch.tensor(
        [[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool
    )
    expected_d = torch.tensor(
        [[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]], dtype=torch.bool
    )
    assert torch.equal(blank(images, HorizontalCut())[0], expected_h)
    assert torch.equal(blank(images, VerticalCut())[1], expected_h.T)
    assert torch.equal(blank(images, DiagonalCut())[0], expected_d)


def test_triple_cut_blanks_the_three_source_squares() -> None:
    expected = torch.zeros(28, 28, dtype=torch.bool)
    expected[6:15, 6:15] = True
    expected[18:27, 11:20] = True
    expected[8:17, 17:26] = True
    mask = blank(torch.ones(1, 1, 28, 28), TripleCut())[0]
    assert torch.equal(mask, expected)
    assert 0.28 < mask.float().mean() < 0.32  # "roughly 30% of the image"


def test_corner_occlusion_half_and_small_fraction() -> None:
    half = blank(torch.ones(1, 1, 4, 4), CornerOcclusion(0.5))[0]
    # Legs of 4 pixels: centres on or below the anti-diagonal through the bottom-left corner.
    expected = torch.tensor(
        [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool
    )
    assert torch.equal(half, expected)
    small = blank(torch.ones(1, 1, 10, 10), CornerOcclusion(0.08))[0]
    # Legs sqrt(0.16) * 10 = 4: pixels with (col + 0.5) + (9 - row + 0.5) <= 4.
    expected_small = torch.zeros(10, 10, dtype=torch.bool)
    for row, cols in ((9, 4), (8, 3), (7, 2), (6, 1)):
        expected_small[row, :cols] = True
    assert torch.equal(small, expected_small)
    realised = [
        blank(torch.ones(1, 1, 28, 28), CornerOcclusion(f)).float().mean().item()
        for f in (0.1, 0.3, 0.5)
    ]
    assert realised == sorted(realised) and abs(realised[-1] - 0.5) < 0.03


def test_fixed_and_random_blocks() -> None:
    ssk = blank(torch.ones(1, 1, 32, 32), Rectangles([(5, 5, 10, 10)]))[0]
    assert ssk.sum() == 100 and ssk[5:15, 5:15].all()
    random = RandomSquares(size=3, count=2, seed=7)
    masks = blank(torch.ones(50, 1, 12, 12), random)
    assert torch.equal(
        masks, blank(torch.ones(50, 1, 12, 12), RandomSquares(3, 2, seed=7))
    )  # seeded
    counts = masks.flatten(1).sum(1)
    assert counts.min() >= 9 and counts.max() <= 18  # two 3x3 squares, possibly overlapping
    assert not torch.equal(masks[0], masks[1]) or not torch.equal(
        masks[1], masks[2]
    )  # placed per image
    assert set(cifar_blocks()) == {"SSK", "SSKR", "MSK", "MSKR"}


def test_background_value_union_and_input_untouched() -> None:
    images = torch.full((1, 3, 4, 4), 0.7)
    out = (HorizontalCut(background=0.25) | VerticalCut())(images)
    assert torch.all(images == 0.7)
    assert out[0, :, 0, 0].tolist() == [0.25] * 3 and out[0, :, 3, 0].tolist() == [0.25] * 3
    assert out[0, :, 3, 3].tolist() == pytest.approx([0.7] * 3)


def test_partial_test_sets_and_presets() -> None:
    test = LabelledImages(torch.ones(3, 1, 28, 28), torch.arange(3), ("a", "b", "c"))
    sets = partial_test_sets(test, {**mnist_cuts(), **corner_occlusions((0.1, 0.5))})
    assert list(sets) == [
        "full",
        "horizontal",
        "vertical",
        "diagonal",
        "triple",
        "corner10",
        "corner50",
    ]
    assert torch.equal(sets["vertical"].labels, test.labels) and sets["full"] is test
    assert torch.equal(occlude(test, HorizontalCut()).images, sets["horizontal"].images)
    with pytest.raises(ValueError, match="reserved"):
        partial_test_sets(test, {"full": HorizontalCut()})


def test_invalid_occlusions_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"fraction must be a finite number in \(0, 0.5\]"):
        CornerOcclusion(0.6)
    with pytest.raises(ValueError, match="does not fit a 28x28 image"):
        Rectangles([(25, 0, 9, 9)])(torch.ones(1, 1, 28, 28))
    with pytest.raises(ValueError, match="does not fit"):
        RandomSquares(40)(torch.ones(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        HorizontalCut()(torch.ones(28, 28))


def test_partial_test_sets_move_every_set_to_the_device(monkeypatch) -> None:
    moved = []
    original = LabelledImages.to

    def spy(self, device):
        moved.append(str(device))
        return original(self, device)

    monkeypatch.setattr(LabelledImages, "to", spy)
    test = LabelledImages(torch.ones(3, 1, 28, 28), torch.arange(3), ("a", "b", "c"))
    partial_test_sets(test, mnist_cuts())
    assert moved == []  # no device: the sets stay where the test set is
    sets = partial_test_sets(test, mnist_cuts(), device="cpu")
    assert moved == ["cpu"] * len(sets) == ["cpu"] * 5
