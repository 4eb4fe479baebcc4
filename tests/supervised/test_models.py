"""Negation values and matching, kernel negation, models, freezing and head reset."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from supervised.models import (
    MnistFeatures,
    NegatableClassifier,
    cifar_lenet,
    cifar_resnet18,
    mlp_head,
    mnist_net,
)
from supervised.negation import (
    LeakyReLUNegation,
    ReLU6Negation,
    ReLUNegation,
    SigmoidNegation,
    TanhNegation,
    negate_last_conv_,
    negation_for,
)

X = torch.tensor([[-1.0, 0.0, 0.25, 1.0, 6.0]])


@pytest.mark.parametrize(
    ("negation", "expected"),
    [
        (ReLUNegation(), [2.0, 1.0, 0.75, 0.0, -5.0]),
        (SigmoidNegation(), [2.0, 1.0, 0.75, 0.0, -5.0]),
        (LeakyReLUNegation(), [2.0, 1.0, 0.75, 0.0, -5.0]),
        (TanhNegation(), [1.0, 0.0, -0.25, -1.0, -6.0]),
        (ReLU6Negation(6.0), [7.0, 6.0, 5.75, 5.0, 0.0]),
        (ReLU6Negation(3.0), [4.0, 3.0, 2.75, 2.0, -3.0]),
    ],
)
def test_negation_values(negation, expected) -> None:
    assert negation(X).tolist() == [expected]


@pytest.mark.parametrize(
    ("activation", "negation_type"),
    [
        ("relu", ReLUNegation),
        ("sigmoid", SigmoidNegation),
        ("tanh", TanhNegation),
        ("relu6", ReLU6Negation),
        ("leaky_relu", LeakyReLUNegation),
    ],
)
def test_default_negation_matches_activation(activation: str, negation_type) -> None:
    model = mnist_net(activation=activation)
    assert type(model.negation) is negation_type
    model.set_negation(True)
    features = model.features(torch.rand(2, 1, 28, 28))
    assert torch.equal(model(torch.zeros(0, 1, 28, 28)), model.head(model.negation(features[:0])))
    assert torch.allclose(model.classify(features), model.head(model.negation.constant - features))


def test_mismatched_negation_is_rejected() -> None:
    with pytest.raises(
        ValueError,
        match=r"TanhNegation \(-x\) does not match .* activation ReLU; it is meant for Tanh",
    ):
        mnist_net(negation=TanhNegation())
    with pytest.raises(ValueError, match="does not match the extractor's output activation ReLU6"):
        mnist_net(activation="relu6", negation=ReLUNegation())
    with pytest.raises(ValueError, match="6 - x and 3 - x"):
        ReLU6Negation(5.0)
    with pytest.raises(ValueError, match="no feature negation is defined for GELU"):
        negation_for(nn.GELU())
    with pytest.raises(ValueError, match="activation must be one of .*got 'swish'"):
        mnist_net(activation="swish")
    with pytest.raises(ValueError, match="num_classes must be an integer >= 1"):
        mnist_net(num_classes=0)


def test_model_without_negation_refuses_to_negate() -> None:
    model = NegatableClassifier(nn.Flatten(), nn.Linear(4, 2))
    assert model.negation is None
    with pytest.raises(ValueError, match="has no negation"):
        model.set_negation(True)
    with pytest.raises(ValueError, match="pass output_activation"):
        NegatableClassifier(nn.Flatten(), nn.Linear(4, 2), ReLUNegation())


def test_kernel_negation_negates_the_last_conv_output() -> None:
    torch.manual_seed(0)
    extractor = MnistFeatures()
    hidden = torch.rand(3, 20, 12, 12)
    before = extractor.conv2(hidden)
    conv1_weight = extractor.conv1.weight.clone()
    assert negate_last_conv_(extractor) is extractor.conv2
    assert torch.equal(extractor.conv2(hidden), -before)
    assert torch.equal(extractor.conv1.weight, conv1_weight)
    with pytest.raises(ValueError, match="no Conv2d"):
        negate_last_conv_(nn.Linear(2, 2))


def test_model_shapes() -> None:
    assert mnist_net(47)(torch.rand(2, 1, 28, 28)).shape == (2, 47)
    assert cifar_lenet()(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    resnet = cifar_resnet18()
    assert resnet.features(torch.rand(2, 3, 32, 32)).shape == (2, 512) and isinstance(
        resnet.negation, ReLUNegation
    )
    assert [
        layer.out_features for layer in mlp_head([800, 500, 10]) if isinstance(layer, nn.Linear)
    ] == [500, 10]


def test_freeze_keeps_every_extractor_parameter_and_statistic() -> None:
    torch.manual_seed(0)
    model = cifar_resnet18()
    model.freeze_extractor()
    before = {name: value.clone() for name, value in model.extractor.state_dict().items()}
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.5, momentum=0.9
    )  # all parameters on purpose
    model.train()
    for _ in range(2):
        loss = nn.functional.cross_entropy(
            model(torch.rand(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3])
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    assert not model.extractor.training and model.head.training
    assert all(
        torch.equal(value, before[name]) for name, value in model.extractor.state_dict().items()
    )
    assert all(parameter.requires_grad for parameter in model.trainable_parameters())
    assert {id(p) for p in model.trainable_parameters()} == {id(p) for p in model.head.parameters()}


def test_reset_head_reinitialises_only_the_head_reproducibly() -> None:
    model = mnist_net()
    extractor = {name: value.clone() for name, value in model.extractor.state_dict().items()}
    head = [parameter.clone() for parameter in model.head.parameters()]
    model.reset_head(seed=3)
    first = [parameter.clone() for parameter in model.head.parameters()]
    assert all(not torch.equal(old, new) for old, new in zip(head, first, strict=True))
    model.reset_head(seed=3)
    assert all(torch.equal(a, b) for a, b in zip(first, model.head.parameters(), strict=True))
    assert all(
        torch.equal(value, extractor[name]) for name, value in model.extractor.state_dict().items()
    )
    clone = model.clone()
    clone.head[0].weight.data.zero_()
    assert not torch.equal(clone.head[0].weight, model.head[0].weight)
