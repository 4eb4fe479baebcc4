"""Occlusions: seeded, composable transforms that blank part of each image.

An :class:`Occlusion` builds a boolean mask (True = blanked) and fills it with the background
value of the *unnormalised* images (0 for MNIST, i.e. black). Training always sees full images;
these transforms derive partial test sets from a test split. Occlusions combine with ``|``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import torch

from negdl.checks import check_int, check_number
from supervised.data.common import LabelledImages
from supervised.runtime import SEED_MAX, check_seed


def check_occlusion(name: str, value: object) -> Occlusion:
    """``value`` when it is an :class:`Occlusion`, else a ``TypeError`` naming ``name`` (a name
    such as ``"horizontal"`` is not an occlusion: look it up in e.g. :func:`mnist_cuts`)."""
    if not isinstance(value, Occlusion):
        hint = "; a name is not an occlusion: look it up, e.g. mnist_cuts()[name]"
        raise TypeError(
            f"{name} must be an Occlusion (e.g. HorizontalCut()), got {type(value).__name__} "
            f"{value!r}{hint if isinstance(value, str) else ''}"
        )
    return value


class Occlusion(ABC):
    """Base class: subclasses only say which pixels to blank; ``background`` is written into
    them (before normalisation)."""

    def __init__(self, background: float = 0.0) -> None:
        self.background = check_number("background", background)

    @abstractmethod
    def mask(self, count: int, height: int, width: int) -> torch.Tensor:
        """Boolean mask ``(1 or count, height, width)``; True marks a blanked pixel."""

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Return an occluded copy of ``images`` ``(N, C, H, W)``; the input is not modified."""
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            raise ValueError(
                f"occlusions take a tensor of images (N, C, H, W), got "
                f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}"
            )
        count, _, height, width = images.shape
        blanked = self.mask(count, height, width).to(images.device)
        return images.masked_fill(blanked[:, None], self.background)

    def __or__(self, other: Occlusion) -> Occlusion:
        check_occlusion("the right operand of |", other)
        return Union(self, other)


class Union(Occlusion):
    """Blank every pixel that any of ``parts`` blanks; the background comes from the first."""

    def __init__(self, *parts: Occlusion) -> None:
        if not parts:
            raise ValueError("Union needs one or more occlusions, got none")
        for index, part in enumerate(parts):
            check_occlusion(f"Union part {index}", part)
        super().__init__(parts[0].background)
        self.parts = parts

    def mask(self, count: int, height: int, width: int) -> torch.Tensor:
        masks = [part.mask(count, height, width) for part in self.parts]
        return torch.stack(torch.broadcast_tensors(*masks)).any(0)


def _grid(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.arange(height)[:, None], torch.arange(width)[None, :]


class HorizontalCut(Occlusion):
    """Blank the top half of the image (rows ``0 .. H//2 - 1``)."""

    def mask(self, count: int, height: int, width: int) -> torch.Tensor:
        rows, cols = _grid(height, width)
        return (rows < height // 2).expand(height, width)[None]


class VerticalCut(Occlusion):
    """Blank the left half of the image (columns ``0 .. W//2 - 1``)."""

    def mask(self, count: int, height: int, width: int) -> torch.Tensor:
        rows, cols = _grid(height, width)
        return (cols < width // 2).expand(height, width)[None]


class DiagonalCut(Occlusion):
    """Blank the top-right and bottom-left quarters."""

    def mask(self, count: int, height: int, width: int) -> torch.Tensor:
        rows, cols = _grid(height, width)
        top, left = rows < height // 2, cols < width // 2
        return ((top & ~left) | (~top & left))[None]


class Rectangles(Occlusion):
    """Blank fixed rectangles given as ``(top, left, height, width)`` in pixels; one that does
    not fit inside the image is an error, never silently clipped."""

    def __init__(self, boxes: Sequence[tuple[int, int, int, int]], background: float = 0.0) -> None:
        super().__init__(background)
        if isinstance(boxes, (str, bytes)) or not isinstance(boxes, Sequence) or not boxes:
            raise ValueError(
                f"boxes must be a non-empty list of (top, left, height, width), got {boxes!r}"
            )
        self.boxes = []
        for index, box in enumerate(boxes):
            if not isinstance(box, Sequence) or len(box) != 4:
                raise ValueError(f"boxes[{index}] must be (top, left, height, width), got {box!r}")
            lows = (0, 0, 1, 1)
            names = ("top", "left", "height", "width")
            self.boxes.append(
                tuple(
                    check_int(f"boxes[{index}].{name}", value, low)
                    for name, value, low in zip(names, box, lows, strict=True)
                )
            )

    def mask(self, count: int, height: int, width: int) -> torch.Tensor:
        blanked = torch.zeros(1, height, width, dtype=torch.bool)
        for top, left, box_height, box_width in self.boxes:
            if top + box_height > height or left + box_width > width:
                raise ValueError(
                    f"box {(top, left, box_height, box_width)} does not fit a {height}x{width} image"
                )
            blanked[0, top : top + box_height, left : left + box_width] = True
        return blanked


class TripleCut(Rectangles):
    """Blank three 9x9 squares (about 30% of a 28x28 digit), at the source's positions:
    rows 6-14/cols 6-14, rows 18-26/cols 11-19 and rows 8-16/cols 17-25 (inclusive)."""

    def __init__(self, background: float = 0.0) -> None:
        super().__init__([(6, 6, 9, 9), (18, 11, 9, 9), (8, 17, 9, 9)], background)


class RandomSquares(Occlusion):
    """Blank ``count`` (possibly overlapping) squares of side ``size`` at random positions drawn
    per image; the same ``seed`` gives the same masks on every call."""

    def __init__(self, size: int, count: int = 1, seed: int = 0, background: float = 0.0) -> None:
        super().__init__(background)
        self.size = check_int("size", size, 1)
        self.count = check_int("count", count, 1)
        self.seed = check_seed("seed", seed)

    def mask(self, count: int, height: int, width: int) -> torch.Tensor:
        if self.size > min(height, width):
            raise ValueError(f"a {self.size}-pixel square does not fit a {height}x{width} image")
        generator = torch.Generator().manual_seed(self.seed)
        tops = torch.randint(0, height - self.size + 1, (count, self.count, 1), generator=generator)
        lefts = torch.randint(0, width - self.size + 1, (count, self.count, 1), generator=generator)
        rows, cols = torch.arange(height), torch.arange(width)
        in_rows = (rows >= tops) & (rows < tops + self.size)  # (N, squares, H)
        in_cols = (cols >= lefts) & (cols < lefts + self.size)  # (N, squares, W)
        return (in_rows[..., :, None] & in_cols[..., None, :]).any(1)


class CornerOcclusion(Occlusion):
    """Blank a right triangle in the bottom-left corner covering ``fraction`` of the image.

    The triangle's legs run along the left and bottom edges with lengths ``sqrt(2 * fraction)``
    times the image's height and width; a pixel is blanked when its centre lies inside or on
    the hypotenuse. ``fraction`` (of the area, in ``(0, 0.5]``) 0.5 blanks the lower-left half.
    """

    def __init__(self, fraction: float, background: float = 0.0) -> None:
        super().__init__(background)
        self.fraction = check_number("fraction", fraction, 0, 0.5, low_open=True)

    def mask(self, count: int, height: int, width: int) -> torch.Tensor:
        scale = math.sqrt(2.0 * self.fraction)
        rows, cols = _grid(height, width)
        # Distances of pixel centres from the left and bottom edges, relative to the legs.
        across = (cols + 0.5) / (scale * width)
        up = (height - rows - 0.5) / (scale * height)
        return (across + up <= 1.0 + 1e-9)[None]


def occlude(data: LabelledImages, occlusion: Occlusion) -> LabelledImages:
    """A copy of ``data`` with every image occluded; labels are unchanged."""
    check_occlusion("occlusion", occlusion)
    return data.with_images(occlusion(data.images))


def partial_test_sets(
    test: LabelledImages,
    occlusions: Mapping[str, Occlusion],
    full_name: str = "full",
    device: torch.device | str | None = None,
) -> dict[str, LabelledImages]:
    """Named test sets: the full split under ``full_name`` plus one occluded copy per entry,
    each moved to ``device`` when given (occluded where ``test`` is)."""
    if not isinstance(test, LabelledImages):
        raise ValueError(f"test must be LabelledImages, got {type(test).__name__}")
    for name, occlusion in occlusions.items():
        if not isinstance(name, str):
            raise TypeError(f"occlusions must map names (str) to occlusions, got key {name!r}")
        check_occlusion(f"occlusions[{name!r}]", occlusion)
    if full_name in occlusions:
        raise ValueError(f"occlusion name {full_name!r} is reserved for the unoccluded test set")
    sets = {full_name: test} | {name: occlude(test, o) for name, o in occlusions.items()}
    return sets if device is None else {name: data.to(device) for name, data in sets.items()}


def mnist_cuts() -> dict[str, Occlusion]:
    """The source's four partial-input MNIST test sets: horizontal, vertical, diagonal, triple."""
    return {
        "horizontal": HorizontalCut(),
        "vertical": VerticalCut(),
        "diagonal": DiagonalCut(),
        "triple": TripleCut(),
    }


def corner_occlusions(
    fractions: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5),
) -> dict[str, Occlusion]:
    """Corner occlusions named ``corner10`` ... ``corner50`` by percentage (rounded); two
    fractions that round to the same name are an error, not merged."""
    occlusions: dict[str, CornerOcclusion] = {}
    for fraction in fractions:
        occlusion = CornerOcclusion(fraction)
        name = f"corner{round(100 * occlusion.fraction)}"
        if name in occlusions:
            raise ValueError(
                f"corner fractions {occlusions[name].fraction} and {occlusion.fraction} both round "
                f"to the name {name}; give fractions that differ in whole percents"
            )
        occlusions[name] = occlusion
    return dict(occlusions)


def cifar_blocks(seed: int = 0) -> dict[str, Occlusion]:
    """The source's block occlusions for 32x32 images.

    SSK: one 10x10 square at (5, 5). SSKR: one 10x10 square at a random place per image.
    MSK: three fixed 8x8 squares (positions chosen here: the source does not list them).
    MSKR: two random 12x12 squares per image ("two larger random squares").
    """
    check_int("seed", seed, 0, SEED_MAX - 1)  # MSKR uses the next seed
    return {
        "SSK": Rectangles([(5, 5, 10, 10)]),
        "SSKR": RandomSquares(10, 1, seed=seed),
        "MSK": Rectangles([(4, 4, 8, 8), (12, 20, 8, 8), (20, 6, 8, 8)]),
        "MSKR": RandomSquares(12, 2, seed=seed + 1),
    }
