"""Check on a GPU what the CPU tests cannot: captured steps and stacked training on CUDA.

Every check prints PASS or FAIL with the numbers behind it, and the exit code is non-zero when
one fails; on the CPU the CUDA-only checks are skipped, so the script is smoke-tested there.
Checks: captured vs eager Trainer, the eager fallback of a step that cannot be captured, stacked
models and CBOMF seeds vs separate runs; rates of ResNet18 in fp32 vs AMP, the MNIST net eager vs
captured.

    python scripts/gpu_check.py --data-dir ../shared/data --out gpu_check.md
"""

from __future__ import annotations

import functools
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from negdl.cli import check_out_file, run_main
from negdl.results import machine_description, write_text_atomic
from supervised.capture import AMP_MIN_PARAMETERS
from supervised.cbomf import MODES, CBOMFConfig, evaluate_modes, train_modes
from supervised.cli.common import check_known
from supervised.context import RunContext
from supervised.data import DataFileError, DataOptions, LabelledImages
from supervised.models import cifar_resnet18, mnist_net
from supervised.occlusions import mnist_cuts, partial_test_sets
from supervised.runtime import select_device
from supervised.stacked import StackedTrainer
from supervised.training import LossReducer, Trainer, TrainerOptions


@dataclass
class Args(DataOptions):
    """Check captured and stacked training on CUDA against eager and separate runs."""

    device: str | None = None
    """cuda or cpu (CUDA-only checks skipped); when not given, cuda when present; random digits-shaped data stand in when MNIST is not in the data folder"""
    train_images: int = 2000
    """training images of the equality checks"""
    rate_steps: int = 200
    """timed steps of each rate measurement"""
    cbomf_modes: tuple[str, ...] = ("SN", "ONN", "NR", "ALT", "HN-K")
    """modes of the CBOMF check (full network, negation, frozen head, alternation, kernels)"""
    out: str | None = None
    """write the report (markdown) here too"""
    threads: int = 0
    """torch CPU threads (0: torch's default)"""

    def __post_init__(self) -> None:
        if self.train_images < 130 or self.rate_steps <= 0 or self.threads < 0:
            raise ValueError("need train_images >= 130, rate_steps > 0 and threads >= 0")
        if not self.cbomf_modes:
            raise ValueError(f"need CBOMF modes from {list(MODES)}")
        check_known("CBOMF mode", self.cbomf_modes, MODES)
        select_device(self.device)
        super().__post_init__()  # --data-dir, --download
        check_out_file("--out", self.out)


class Report(list[str]):
    """The report's lines, each printed as it is added, and how many checks failed."""

    failed = 0

    def check(self, name: str, passed: bool, detail: str) -> None:
        self.failed += not passed
        self.add(f"- {'PASS' if passed else 'FAIL'} {name}: {detail}")

    def add(self, *lines: str) -> None:
        print(*lines, sep="\n", flush=True)
        self += lines


def max_difference(a: nn.Module, b: nn.Module) -> float:
    return max(
        (x.double() - y.double()).abs().max().item()
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def load_data(args: Args) -> LabelledImages:
    try:
        data = args.load("mnist", train=True)
    except DataFileError:
        generator = torch.Generator().manual_seed(0)
        images = torch.rand(args.train_images, 1, 28, 28, generator=generator)
        labels = torch.randint(0, 10, (args.train_images,), generator=generator)
        data = LabelledImages(images, labels, tuple("0123456789"))
    # One more than a multiple of 64: every epoch ends on a short batch.
    return data.subset(slice(0, args.train_images - args.train_images % 64 + 1))


def train_single(
    data: LabelledImages,
    device: torch.device,
    capture: str,
    optimizer: Callable[[Iterator[nn.Parameter]], torch.optim.Optimizer],
    switch_negation: bool = False,
    reducer: LossReducer | None = None,
) -> tuple[list[float], nn.Module, Trainer]:
    torch.manual_seed(0)
    model = mnist_net()
    trainer = Trainer(
        model,
        optimizer(model.parameters()),
        reducer=reducer,
        context=RunContext(device, progress=False),
        options=TrainerOptions(capture=capture, capture_key=lambda: model.negate),
    )

    def before_epoch(epoch: int) -> None:
        model.set_negation(switch_negation and epoch % 2 == 1)

    losses = trainer.fit(
        (data.images, data.labels), 3, torch.Generator().manual_seed(1), before_epoch
    )
    return losses, model, trainer


def check_captured_trainer(report: Report, data: LabelledImages, device: torch.device) -> None:
    optimizers = {
        "SGD momentum": functools.partial(torch.optim.SGD, lr=0.05, momentum=0.5),
        "Adam capturable": functools.partial(torch.optim.Adam, lr=1e-3, capturable=True),
    }
    for name, optimizer in optimizers.items():
        for switch in (False, True):
            eager_losses, eager, _ = train_single(data, device, "off", optimizer, switch)
            losses, captured, trainer = train_single(data, device, "cuda-graph", optimizer, switch)
            difference = max_difference(eager, captured)
            loss_gap = max(abs(a - b) for a, b in zip(losses, eager_losses, strict=True))
            graphs = trainer.captured.recordings
            report.check(
                f"captured Trainer = eager Trainer ({name}, negation {'switched per epoch' if switch else 'fixed'})",
                difference < 1e-4 and loss_gap < 1e-4 and graphs == 1 + switch,
                f"max parameter difference {difference:.1e}, epoch-loss gap {loss_gap:.1e}, "
                f"{graphs} graph(s), 3 epochs of {len(data)} images with a short last batch",
            )


class AboveMeanReducer(LossReducer):
    """The mean of the losses above the batch mean: the kept count depends on the data, which a
    CUDA graph cannot hold."""

    def reduce(self, losses: torch.Tensor) -> torch.Tensor:
        return losses[losses >= losses.mean()].mean()


def check_uncapturable_falls_back(
    report: Report, data: LabelledImages, device: torch.device
) -> None:
    sgd = functools.partial(torch.optim.SGD, lr=0.05)
    reducer = AboveMeanReducer()
    _, eager, _ = train_single(data, device, "off", sgd, reducer=reducer)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, captured, trainer = train_single(data, device, "cuda-graph", sgd, reducer=reducer)
    warned = any("could not be captured" in str(w.message) for w in caught)
    difference = max_difference(eager, captured)
    report.check(
        "uncapturable reducer trains eagerly with a warning",
        warned and trainer.captured.failure is not None and difference < 1e-4,
        f"warning {warned}, reason {trainer.captured.failure!r:.120}, max parameter difference "
        f"{difference:.1e}",
    )


def check_stacked(report: Report, data: LabelledImages, device: torch.device) -> None:
    seeds = (0, 1, 2)
    images = data.images.double()

    def seeded_net(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return mnist_net().double()

    models = [seeded_net(seed) for seed in seeds]
    trainer = StackedTrainer(
        models,
        lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.5),
        context=RunContext(device, progress=False),
        options=TrainerOptions(capture="auto"),
    )
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    trainer.fit((images, data.labels), 2, generators)
    worst = 0.0
    for seed, model in zip(seeds, models, strict=True):
        reference = seeded_net(seed)
        Trainer(
            reference,
            torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.5),
            context=RunContext(device, progress=False),
            options=TrainerOptions(capture="off"),
        ).fit((images, data.labels), 2, torch.Generator().manual_seed(seed))
        worst = max(worst, max_difference(model, reference))
    report.check(
        f"{len(seeds)} stacked models ({trainer.capture}) = separate eager runs (float64)",
        worst < 1e-9,
        f"max parameter difference {worst:.1e} after 2 epochs",
    )


def check_cbomf(
    report: Report, data: LabelledImages, device: torch.device, modes: tuple[str, ...]
) -> None:
    config = CBOMFConfig(epochs=1, second_epochs=2)
    start = time.perf_counter()
    context = RunContext(device, progress=False)
    stacked = train_modes(modes, mnist_net, data, config, (0, 1), context)
    stacked_seconds = time.perf_counter() - start
    test_sets = partial_test_sets(data.subset(slice(0, 500)), mnist_cuts())
    together = evaluate_modes(stacked, test_sets, context)
    worst, accuracy_gap, separate_seconds = 0.0, 0.0, 0.0
    for seed in (0, 1):
        start = time.perf_counter()
        alone = train_modes(modes, mnist_net, data, config, (seed,), context)[seed]
        separate_seconds += time.perf_counter() - start
        accuracies = evaluate_modes({seed: alone}, test_sets, context)[seed]
        for mode in modes:
            worst = max(worst, max_difference(stacked[seed][mode].model, alone[mode].model))
            accuracy_gap = max(
                accuracy_gap,
                *(abs(together[seed][mode][s] - accuracies[mode][s]) for s in test_sets),
            )
    # float32 with TF32 convolutions: a ReLU or max-pool decision flipped by rounding can grow,
    # so this bound is loose; accuracies must agree within a few test images.
    report.check(
        "CBOMF seeds stacked = one after another (float32)",
        worst < 1e-2 and accuracy_gap <= 1.0,
        f"max parameter difference {worst:.1e}, largest accuracy gap {accuracy_gap:.2f} points "
        f"({len(test_sets['full'])} test images); training {stacked_seconds:.1f} s stacked vs {separate_seconds:.1f} s separately",
    )


def step_rate(trainer: Trainer, batch: tuple[torch.Tensor, torch.Tensor], steps: int) -> float:
    for _ in range(10):  # warm-up, capture
        trainer.step(batch)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    rates = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(steps):
            trainer.step(batch)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize(trainer.device)
        rates.append(steps * len(batch[1]) / (time.perf_counter() - start))
    return statistics.median(rates)


#: (model, factory, image shape, batch size, runs on the CPU too)
RATE_MODELS = (
    ("ResNet18, CIFAR-sized, batch 128", cifar_resnet18, (3, 32, 32), 128, False),
    ("MNIST net, batch 64", mnist_net, (1, 28, 28), 64, True),
)
#: (label, amp, capture)
STEP_SETTINGS = (
    ("fp32 eager", False, "off"),
    ("float16 AMP eager", True, "off"),
    ("fp32 captured", False, "auto"),
)


def measure_rates(report: Report, device: torch.device, steps: int) -> None:
    cuda = device.type == "cuda"
    generator = torch.Generator().manual_seed(0)
    report.add("", "| model | step | samples/s |", "| --- | --- | ---: |")
    for name, factory, shape, batch, on_cpu in RATE_MODELS:
        if not (cuda or on_cpu):
            continue
        images = torch.rand(batch, *shape, generator=generator).to(device)
        images = images.contiguous(memory_format=torch.channels_last)
        labels = torch.randint(0, 10, (batch,), generator=generator).to(device)
        for label, amp, capture in STEP_SETTINGS if cuda else STEP_SETTINGS[:1]:
            torch.manual_seed(0)
            model = factory()
            trainer = Trainer(
                model,
                torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
                context=RunContext(device, progress=False),
                options=TrainerOptions(amp=amp, capture=capture),
            )
            model.train()
            rate = step_rate(trainer, (images, labels), steps)
            report.add(f"| {name} | {label} ({trainer.capture}) | {rate:,.0f} |")
    parameters = sum(p.numel() for p in cifar_resnet18().parameters())
    report.add(
        f"\nAMP is the CUDA default from {AMP_MIN_PARAMETERS:,} parameters (ResNet18 has "
        f"{parameters:,}): keep it only if the ResNet18 AMP row beats its fp32 rows."
    )


def main(args: Args) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    report = Report()
    report.add(f"# GPU check on {machine_description(device)}", "")
    data = load_data(args).to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        check_captured_trainer(report, data, device)
        check_uncapturable_falls_back(report, data, device)
    else:
        report.add("- SKIP captured-step checks: they need CUDA")
    check_stacked(report, data, device)
    check_cbomf(report, data, device, args.cbomf_modes)
    measure_rates(report, device, args.rate_steps)
    report.add("", f"{report.failed} check(s) failed.")
    if args.out:
        write_text_atomic(args.out, "\n".join(report) + "\n")
    raise SystemExit(1 if report.failed else 0)


if __name__ == "__main__":
    run_main("gpu_check.py", Args, main)
