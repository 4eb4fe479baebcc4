"""Draw one example of every partial-input / occlusion variant as a PNG grid for the README.

Rows are test digits, blanked pixels drawn dark grey; columns are the full image, the four MNIST
cuts, corner occlusion 10-50% and the four block occlusions (defined on 32x32 images, so every
digit is padded by 2 pixels of background first, as a CIFAR-sized image).

    negdl-occlusion-grid --download       # writes runs/supervised/occlusions.png
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torch.nn import functional as F

from negdl.checks import check_int
from negdl.cli import check_out_file, run_main
from supervised.data import DataOptions
from supervised.occlusions import cifar_blocks, corner_occlusions, mnist_cuts


@dataclass
class Args(DataOptions):
    """Write a PNG grid with one example per occlusion variant."""

    out: str = "runs/supervised/occlusions.png"
    """output PNG path (the README's copy is docs/supervised/occlusions.png: scripts/update_docs.py)"""
    examples: int = 3
    """number of test digits (rows)"""
    scale: int = 3
    """pixels per image pixel"""
    seed: int = 0
    """seed of the randomly placed blocks"""
    mark_blanked: bool = True
    """paint blanked pixels dark grey so the region is visible (the model sees background 0)"""

    def __post_init__(self) -> None:
        check_int("--examples", self.examples, 1, 10_000)
        check_int("--scale", self.scale, 1, 64)
        check_int("--seed", self.seed, 0)
        check_out_file("--out", self.out)
        extensions = Image.registered_extensions()
        if extensions.get(Path(self.out).suffix.lower()) not in Image.SAVE:
            raise ValueError(
                f"--out {self.out!r} needs an image file name, e.g. ending in .png (a format "
                "Pillow writes, named by the extension)"
            )
        super().__post_init__()  # --data-dir, --download


def run(args: Args) -> None:
    test = args.load("mnist", train=False).subset(slice(0, args.examples))
    count = len(test)
    padded = F.pad(test.images, (2, 2, 2, 2))  # 28x28 -> 32x32 with background 0
    columns = {"full": (padded, torch.zeros(count, 32, 32, dtype=torch.bool))}
    for name, occlusion in {**mnist_cuts(), **corner_occlusions()}.items():
        blanked = F.pad(occlusion.mask(count, 28, 28).expand(count, 28, 28), (2, 2, 2, 2))
        columns[name] = (F.pad(occlusion(test.images), (2, 2, 2, 2)), blanked)
    for name, occlusion in cifar_blocks(args.seed).items():
        columns[name] = (occlusion(padded), occlusion.mask(count, 32, 32).expand(count, 32, 32))
    cell, header, gap = 32 * args.scale, 14, 4
    grid = Image.new(
        "L", (len(columns) * (cell + gap) + gap, header + args.examples * (cell + gap) + gap), 255
    )
    draw = ImageDraw.Draw(grid)
    for column, (name, (images, blanked)) in enumerate(columns.items()):
        left = gap + column * (cell + gap)
        draw.text((left, 1), name, fill=0)
        for row, image in enumerate(images):
            pixels = (image[0] * 255).round().to(torch.uint8)
            if args.mark_blanked:
                pixels[blanked[row]] = 80
            tile = Image.fromarray(pixels.numpy()).resize((cell, cell), Image.Resampling.NEAREST)
            grid.paste(tile, (left, header + gap + row * (cell + gap)))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out)
    print(f"wrote {args.out} ({len(columns)} variants x {args.examples} digits)")


main = functools.partial(run_main, "negdl-occlusion-grid", Args, run)


if __name__ == "__main__":
    main()
