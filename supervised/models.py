"""Models as a feature extractor plus a classifier head, with an optional negation in between.

:class:`NegatableClassifier` is the shape every supervised model in negdl takes, so negation,
synergy heads and attacks can plug in between the two parts. Input standardisation is the
first layer of each extractor, so data, occlusions and attacks all work on raw ``[0, 1]`` pixels.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from negdl.checks import check_bool, check_choice, check_int, check_number
from supervised.data.mnist import MNIST_MEAN, MNIST_STD
from supervised.negation import FeatureNegation, negate_last_conv_, negation_for
from supervised.runtime import check_seed

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu6": nn.ReLU6,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
}


def make_activation(name: str) -> nn.Module:
    """An activation module by name: one of ``ACTIVATIONS``."""
    return ACTIVATIONS[check_choice("activation", name, tuple(ACTIVATIONS))]()


def reset_parameters_(module: nn.Module, seed: int | None = None) -> None:
    """Re-initialise ``module`` and every layer inside it with their default initialisers, in
    place, from ``seed`` (the global RNG left untouched) or fresh draws when None."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(check_seed("seed", seed))
        for layer in module.modules():
            reset = getattr(layer, "reset_parameters", None)
            if reset is not None:
                reset()


class Standardize(nn.Module):
    """Per-channel ``(x - mean) / std`` with fixed buffers (never trained), ``std`` > 0."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if (
            not all(isinstance(v, Sequence) and not isinstance(v, str) for v in (mean, std))
            or len(mean) != len(std)
            or not mean
        ):
            raise ValueError(
                f"mean and std need one number per channel, as many of each, got {mean!r}, {std!r}"
            )
        for index, (m, s) in enumerate(zip(mean, std, strict=True)):
            check_number(f"mean[{index}]", m)
            check_number(f"std[{index}]", s, 0, low_open=True)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std


class NegatableClassifier(nn.Module):
    """``head(negation(extractor(x)))`` with the negation switchable on and off (:attr:`negate`).

    :param negation: checked against ``output_activation`` (by default
        ``extractor.output_activation``), and the one matching it when None.
    """

    def __init__(
        self,
        extractor: nn.Module,
        head: nn.Module,
        negation: FeatureNegation | None = None,
        output_activation: nn.Module | None = None,
    ) -> None:
        super().__init__()
        for name, module in (("extractor", extractor), ("head", head)):
            if not isinstance(module, nn.Module):
                raise ValueError(f"{name} must be a torch.nn.Module, got {type(module).__name__}")
        if negation is not None and not isinstance(negation, FeatureNegation):
            raise ValueError(
                f"negation must be a FeatureNegation (see supervised.negation), got {negation!r}"
            )
        self.extractor, self.head = extractor, head
        activation = output_activation
        if activation is None:
            activation = getattr(extractor, "output_activation", None)
        if activation is not None:
            negation = negation_for(activation) if negation is None else negation
            negation.check_activation(activation)
        elif negation is not None:
            raise ValueError(
                "cannot check the negation: pass output_activation or give the extractor an output_activation attribute"
            )
        self.negation = negation
        self.negate = False
        self.extractor_frozen = False

    def set_negation(self, enabled: bool) -> None:
        enabled = check_bool("enabled", enabled)
        if enabled and self.negation is None:
            raise ValueError("this model has no negation; construct it with negation=...")
        self.negate = bool(enabled)

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """The extractor's features, before any negation."""
        return self.extractor(inputs)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from extractor features, negated first when :attr:`negate` is on."""
        if self.negate:
            if self.negation is None:
                raise ValueError("negate is on but this model has no negation")
            features = self.negation(features)
        return self.head(features)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(inputs))

    def freeze_extractor(self) -> None:
        """Stop training every extractor parameter and keep the extractor in eval mode."""
        for parameter in self.extractor.parameters():
            parameter.requires_grad_(False)
        self.extractor_frozen = True
        self.extractor.eval()

    def train(self, mode: bool = True) -> NegatableClassifier:
        super().train(mode)
        if self.extractor_frozen:
            # A frozen extractor must not update batch-norm statistics or apply dropout.
            self.extractor.eval()
        return self

    def reset_head(self, seed: int | None = None) -> None:
        """Re-initialise every head layer with its default initialiser (seeded when given)."""
        reset_parameters_(self.head, seed)

    def negate_kernels(self) -> nn.Conv2d:
        """Kernel negation: negate the last convolution's weights and bias in place."""
        return negate_last_conv_(self.extractor)

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        return (parameter for parameter in self.parameters() if parameter.requires_grad)

    def clone(self) -> NegatableClassifier:
        """An independent deep copy (parameters, buffers, negation state)."""
        return copy.deepcopy(self)


class MnistFeatures(nn.Module):
    """The source's MNIST conv block: conv(1->20, 5) + maxpool 2 + act; conv(20->50, 5) +
    maxpool 2 + act; flatten to 800 features, on inputs standardised with MNIST's mean/std."""

    def __init__(self, activation: str = "relu") -> None:
        super().__init__()
        self.standardize = Standardize([MNIST_MEAN], [MNIST_STD])
        self.conv1, self.conv2 = nn.Conv2d(1, 20, 5), nn.Conv2d(20, 50, 5)
        self.pool = nn.MaxPool2d(2)
        self.act1, self.output_activation = make_activation(activation), make_activation(activation)
        self.out_features = 50 * 4 * 4

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        hidden = self.act1(self.pool(self.conv1(self.standardize(images))))
        return self.output_activation(self.pool(self.conv2(hidden))).flatten(1)


def mlp_head(sizes: Sequence[int]) -> nn.Sequential:
    """Fully connected layers with ReLU between them, e.g. ``[800, 500, 10]``."""
    if isinstance(sizes, str) or not isinstance(sizes, Sequence) or len(sizes) < 2:
        raise ValueError(f"need at least an input and an output size, got {sizes!r}")
    sizes = [check_int(f"sizes[{index}]", size, 1) for index, size in enumerate(sizes)]
    linears = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    # A ReLU before every linear layer, the first one's dropped: ReLUs only between them.
    return nn.Sequential(*[layer for linear in linears for layer in (nn.ReLU(), linear)][1:])


def mnist_net(
    num_classes: int = 10, activation: str = "relu", negation: FeatureNegation | None = None
) -> NegatableClassifier:
    """The source's MNIST/EMNIST net: :class:`MnistFeatures` then FC 800 -> 500 -> classes; the
    negation defaults to the one matching ``activation``."""
    check_int("num_classes", num_classes, 1)
    extractor = MnistFeatures(activation)
    return NegatableClassifier(
        extractor, mlp_head([extractor.out_features, 500, num_classes]), negation
    )


class LeNetFeatures(nn.Module):
    """The CIFAR-10 LeNet conv block: conv(3->6, 5) + ReLU + pool; conv(6->16, 5) + ReLU + pool;
    flatten to 400 features, on inputs standardised with mean/std 0.5."""

    def __init__(self) -> None:
        super().__init__()
        self.standardize = Standardize([0.5] * 3, [0.5] * 3)
        self.conv1, self.conv2 = nn.Conv2d(3, 6, 5), nn.Conv2d(6, 16, 5)
        self.pool = nn.MaxPool2d(2)
        self.act1, self.output_activation = nn.ReLU(), nn.ReLU()
        self.out_features = 16 * 5 * 5

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        hidden = self.pool(self.act1(self.conv1(self.standardize(images))))
        return self.pool(self.output_activation(self.conv2(hidden))).flatten(1)


def cifar_lenet(
    num_classes: int = 10, negation: FeatureNegation | None = None
) -> NegatableClassifier:
    """The source's CIFAR-10 LeNet: :class:`LeNetFeatures` then FC 400 -> 120 -> 84 -> classes."""
    check_int("num_classes", num_classes, 1)
    extractor = LeNetFeatures()
    return NegatableClassifier(
        extractor, mlp_head([extractor.out_features, 120, 84, num_classes]), negation
    )


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv + batch norm, identity or 1x1 projection shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        hidden = self.relu(self.bn1(self.conv1(inputs)))
        return self.relu(self.bn2(self.conv2(hidden)) + self.shortcut(inputs))


class ResNet18Features(nn.Module):
    """CIFAR ResNet18 (3x3 stem, no stem pooling, stages of 64-128-256-512) pooled to 512
    features; the output passes through the last block's ReLU, so ``1 - x`` matches it."""

    def __init__(self) -> None:
        super().__init__()
        self.standardize = Standardize([0.5] * 3, [0.5] * 3)
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()
        )
        stages, in_planes = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages += [BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1)]
            in_planes = planes
        self.blocks = nn.Sequential(*stages)
        self.output_activation = self.blocks[-1].relu
        self.out_features = 512

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        hidden = self.blocks(self.stem(self.standardize(images)))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(hidden, 1), 1)


def cifar_resnet18(
    num_classes: int = 10, negation: FeatureNegation | None = None
) -> NegatableClassifier:
    """CIFAR ResNet18 as extractor plus a single linear head."""
    check_int("num_classes", num_classes, 1)
    extractor = ResNet18Features()
    return NegatableClassifier(extractor, nn.Linear(extractor.out_features, num_classes), negation)


#: Architectures by name: the source's MNIST net, the CIFAR-10 LeNet and ResNet18.
ARCHITECTURES: dict[str, Callable[[int], NegatableClassifier]] = {
    "mnist": mnist_net,
    "lenet": cifar_lenet,
    "resnet18": cifar_resnet18,
}


def make_classifier(arch: str, num_classes: int, activation: str = "relu") -> NegatableClassifier:
    """A fresh model of a named architecture (one of :data:`ARCHITECTURES`); only the MNIST net
    offers activations other than ReLU."""
    if check_choice("architecture", arch, tuple(ARCHITECTURES)) == "mnist":
        return mnist_net(num_classes, activation)
    if activation != "relu":
        raise ValueError(f"architecture {arch!r} uses ReLU only, got activation {activation!r}")
    return ARCHITECTURES[arch](num_classes)
