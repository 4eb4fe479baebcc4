"""Benchmark: training samples/s of the MNIST net, project tensor pipeline vs a per-sample
``Dataset`` + ``DataLoader`` pipeline, measured in the same run on the same data.

The conventional pipeline is what the source (and torchvision's MNIST) does: each sample is a
PIL image turned into a normalised tensor in ``__getitem__``, collated by a ``DataLoader``. The
project pipeline keeps the split as a tensor on the device, batches by indexing and trains
through ``Trainer`` (``StackedTrainer``: K models at once, samples/s summed over them) with the
settings each row names. Project rows time ``step`` over the source's batches (the batch gather
included); the warm-up before each measurement holds any capture or compilation.

    python scripts/bench_supervised.py --download     # writes runs/supervised/bench.md
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from negdl.cli import check_out_file, run_main
from negdl.results import machine_description, write_text_atomic
from supervised.context import RunContext
from supervised.data import MNIST_MEAN, MNIST_STD, DataFileError, DataOptions, LabelledImages
from supervised.evaluation import extract_features
from supervised.models import mnist_net
from supervised.runtime import select_device
from supervised.stacked import StackedBatches, StackedTrainer, predict_stacked
from supervised.training import Trainer, TrainerOptions


@dataclass
class Args(DataOptions):
    """Measure training throughput of the MNIST net with two data pipelines."""

    steps: int = 300
    """timed training steps per measurement"""
    warmup_steps: int = 30
    """untimed steps before each measurement (a captured step records at the 4th)"""
    repeats: int = 3
    """measurements per pipeline; the median is reported"""
    batch_size: int = 64
    """training batch size (the source's)"""
    devices: tuple[str, ...] = ()
    """devices to measure; when not given, cpu, plus cuda when present"""
    loader_workers: int = 0
    """DataLoader worker processes of the conventional pipeline"""
    out: str = "runs/supervised/bench.md"
    """write the markdown table here too (the README's copy is docs/supervised/bench.md: scripts/update_docs.py)"""
    seed: int = 0
    """seed of the models, the shuffling and any synthetic data"""
    threads: int = 0
    """torch CPU threads (0: torch's default)"""
    stack_sizes: tuple[int, ...] = (5,)
    """numbers of models trained at once in the stacked rows (none: 0)"""
    compile: bool = True
    """on CUDA, also measure torch.compile(mode="reduce-overhead") (compiling takes a minute)"""

    def __post_init__(self) -> None:
        if (
            min(self.steps, self.repeats, self.batch_size) <= 0
            or min(self.warmup_steps, self.loader_workers, self.threads, *self.stack_sizes) < 0
        ):
            raise ValueError(
                "steps, repeats and batch size must be positive; warm-up steps, workers, threads "
                "and stack sizes >= 0"
            )
        for device in self.devices:
            select_device(device)
        super().__post_init__()  # --data-dir, --download
        check_out_file("--out", self.out)


class PerSampleMnist(Dataset):
    """The conventional dataset: PIL image -> float tensor -> normalised, one sample at a time."""

    def __init__(self, pixels: np.ndarray, labels: np.ndarray) -> None:
        self.pixels, self.labels = pixels, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = Image.fromarray(self.pixels[index])  # uint8 (28, 28): mode L
        tensor = torch.from_numpy(np.array(image, dtype=np.uint8)).float().div(255).unsqueeze(0)
        return (tensor - MNIST_MEAN) / MNIST_STD, int(self.labels[index])


def load_pixels(args: Args) -> tuple[LabelledImages, str]:
    """The MNIST training split, or random data of the same shape when MNIST is not available."""
    try:
        return args.load("mnist", train=True), "MNIST training split"
    except DataFileError:
        generator = torch.Generator().manual_seed(args.seed)
        count = (args.steps + args.warmup_steps) * args.batch_size
        pixels = torch.randint(0, 256, (count, 1, 28, 28), generator=generator, dtype=torch.uint8)
        labels = torch.randint(0, 10, (count,), generator=generator)
        random = LabelledImages(pixels.float() / 255, labels, tuple("0123456789"))
        return random, "random 28x28 data (MNIST not found)"


def timed(run: Callable[[int], int], args: Args, device: torch.device, models: int = 1) -> float:
    """Median samples/s of ``run(steps)`` (which returns the samples it trained on), after a
    warm-up. A stack of ``models`` runs ``steps / models`` timed steps, so that every measurement
    covers about the same samples (the warm-up keeps its step count: it holds the capture)."""
    rates = []
    for _ in range(args.repeats):
        run(args.warmup_steps)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        samples = run(max(1, args.steps // models))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        rates.append(samples / (time.perf_counter() - start))
    return statistics.median(rates)


def conventional_rate(
    data: LabelledImages, args: Args, device: torch.device, frozen: bool
) -> float:
    """Samples/s of the per-sample Dataset + DataLoader loop (the dataset standardises, so the
    model does not); ``frozen`` freezes the extractor as phase 2 of HN/NR/ALT/TP does: every
    batch still runs through it, only the head trains."""
    torch.manual_seed(args.seed)
    model = mnist_net().to(device)
    model.extractor.standardize = torch.nn.Identity()
    if frozen:
        model.freeze_extractor()
    optimizer = torch.optim.SGD(list(model.trainable_parameters()), lr=0.01, momentum=0.5)
    pixels = (data.images[:, 0] * 255).round().to(torch.uint8).numpy()
    loader = DataLoader(
        PerSampleMnist(pixels, data.labels.numpy()),
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.loader_workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(args.seed),
    )

    def run(steps: int) -> int:
        model.train()
        samples = 0
        # islice stops before the loader assembles a batch the loop would not train on.
        for images, labels in itertools.islice(loader, steps):
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            samples += len(labels)
        return samples

    return timed(run, args, device)


def project_rate(
    data: LabelledImages,
    args: Args,
    device: torch.device,
    models: int = 1,
    frozen: bool = False,
    capture: str = "off",
    amp: bool = False,
    channels_last: bool = True,
) -> float:
    """Samples/s of the project's trainer on tensors already on the device (moved once, untimed):
    ``Trainer`` for one MNIST net, ``StackedTrainer`` for ``models`` copies, each with its own
    shuffle. With ``frozen`` the heads train on features cached once by the frozen extractors, as
    the CBOMF modes do; the one-off extraction is timed separately."""
    torch.manual_seed(args.seed)
    nets = [mnist_net().to(device) for _ in range(models)]
    on_device = data.to(device)
    inputs = on_device.images
    if frozen:
        for net in nets:
            net.freeze_extractor()
        inputs = predict_stacked(nets, inputs, "features")  # (models, N, features)
    settings = dict(
        batch_size=args.batch_size,
        context=RunContext(device, progress=False),
        # A stacked trainer runs in fp32 and not channels-last whatever these say.
        options=TrainerOptions(amp=amp, channels_last=channels_last, capture=capture),
    )
    if models == 1:
        net = nets[0]
        trainer = Trainer(
            net,
            torch.optim.SGD(net.trainable_parameters(), lr=0.01, momentum=0.5),
            forward=net.classify if frozen else None,
            **settings,
        )
        source = (inputs[0] if frozen else inputs, on_device.labels)
        generators = torch.Generator().manual_seed(args.seed)
    else:
        trainer = StackedTrainer(
            nets,
            lambda params: torch.optim.SGD(params, lr=0.01, momentum=0.5),
            method="classify" if frozen else "forward",
            **settings,
        )
        source = StackedBatches(
            inputs,
            on_device.labels,
            models=models,
            per_model=(frozen, False),
            batch_size=args.batch_size,
        )
        generators = [torch.Generator().manual_seed(args.seed + k) for k in range(models)]
    batch_source = trainer.batch_source(source)
    for net in nets:
        net.train()
    # Epoch after epoch, without end.
    batches = itertools.chain.from_iterable(
        batch_source.batches(generators) for _ in itertools.count()
    )

    def run(steps: int) -> int:
        """``trainer.step`` over the next ``steps`` batches; the samples trained on (all models)."""
        samples = 0
        for batch in itertools.islice(batches, steps):
            trainer.step(batch)
            samples += batch[1].numel()  # labels: (B,) or (K, B)
        return samples

    return timed(run, args, device, models)


def extraction_rate(data: LabelledImages, device: torch.device) -> float:
    """Images/s of the one-off feature extraction that the cached head training relies on."""
    model = mnist_net().to(device, memory_format=torch.channels_last)
    images = data.images.to(device)
    start = time.perf_counter()
    extract_features(model, images, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return len(images) / (time.perf_counter() - start)


def main(args: Args) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [select_device(name) for name in args.devices] or [torch.device("cpu")] + (
        [torch.device("cuda")] if torch.cuda.is_available() else []
    )
    data, source = load_pixels(args)
    lines = [
        f"MNIST net training throughput on {source}: batch {args.batch_size}, {args.steps} timed steps, "
        f"median of {args.repeats} measurements, all pipelines in one run.",
        "",
        "| device | training | pipeline | samples/s | vs conventional |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for device in devices:
        machine = machine_description(device)
        print(f"measuring on {machine}", flush=True)
        lines.insert(1, f"Machine ({device.type}): {machine}.")
        cuda = device.type == "cuda"
        capture, default = ("auto", "captured CUDA graph") if cuda else ("off", "eager")
        total = f"{default} (total over the models)"

        def rate(models: int = 1, device: torch.device = device, **options: Any) -> float:
            return project_rate(data, args, device, models, **options)

        per_sample = "per-sample Dataset + DataLoader"
        tensor = "tensor pipeline, channels-last,"
        full = {
            f"{per_sample} (conventional)": conventional_rate(data, args, device, frozen=False),
            "tensor pipeline, default memory format, eager fp32": rate(channels_last=False),
            f"{tensor} eager fp32" + ("" if cuda else " (project default)"): rate(),
        }
        if cuda:
            full[f"{tensor} eager float16 AMP"] = rate(amp=True)
            full[f"{tensor} captured CUDA graph (project default)"] = rate(capture="auto")
            if args.compile:
                full[f'{tensor} torch.compile(mode="reduce-overhead")'] = rate(capture="compile")
        for k in filter(None, args.stack_sizes):
            full[f"{k} models stacked, {total}"] = rate(k, capture=capture)
        frozen = {
            f"{per_sample}, frozen extractor run every batch (conventional)": conventional_rate(
                data, args, device, frozen=True
            )
        }
        head_rate = rate(frozen=True, capture=capture)
        # The source's phase 2 is 10 epochs; the one-off extraction is spread over them.
        epochs = 10
        amortised = epochs / (1 / extraction_rate(data, device) + epochs / head_rate)
        if cuda:
            frozen["head on cached features, eager fp32"] = rate(frozen=True)
        frozen[f"head on cached features, {default} (project default)"] = head_rate
        spread = f"head on cached features, one-off extraction spread over {epochs} epochs"
        frozen[spread] = amortised
        for k in filter(None, args.stack_sizes):
            name = f"{k} heads stacked on their cached features, {total}"
            frozen[name] = rate(k, frozen=True, capture=capture)
        for training, rows in (
            ("full network (SN, phase 1)", full),
            ("head only (phase 2 of HN/NR/ALT/TP)", frozen),
        ):
            base = next(iter(rows.values()))
            lines += [
                f"| {device.type} | {training} | {name} | {value:,.0f} | {value / base:.2f}x |"
                for name, value in rows.items()
            ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        write_text_atomic(args.out, text + "\n")


if __name__ == "__main__":
    run_main("bench_supervised.py", Args, main)
