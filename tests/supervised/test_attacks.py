"""Attacks: budgets, pixel range, determinism, effect, hand-computed steps; robustness helpers."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from supervised.attacks import ATTACKS, BIM, CW, FGSM, PGD, TPGD, make_attack
from supervised.data import LabelledImages
from supervised.robustness import accuracy_under_attack, fgsm_sweep, transfer_matrix

EPS = 0.1


def halves_data(count: int = 200, seed: int = 0) -> LabelledImages:
    """1x6x6 images in [0.2, 0.8]; the label says whether the left half is brighter."""
    generator = torch.Generator().manual_seed(seed)
    images = 0.2 + 0.6 * torch.rand(count, 1, 6, 6, generator=generator)
    labels = (images[..., :3].mean((1, 2, 3)) > images[..., 3:].mean((1, 2, 3))).long()
    return LabelledImages(images, labels, ("right", "left"))


@pytest.fixture(scope="module")
def linear_model() -> nn.Module:
    """A logistic regression trained to near-perfect clean accuracy on ``halves_data``."""
    torch.manual_seed(0)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test one-thread fixture
    data = halves_data(2000, seed=1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(150):
        loss = F.cross_entropy(model(data.images), data.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.set_num_threads(previous)
    return model.eval()


def clean_accuracy(model, data) -> float:
    with torch.no_grad():
        return 100.0 * (model(data.images).argmax(1) == data.labels).float().mean().item()


def attack_options(name: str) -> dict:
    return {} if name == "CW" else {"eps": EPS}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_stays_in_budget_and_range_and_is_seeded(name: str, linear_model) -> None:
    data = halves_data()
    attack = make_attack(name, linear_model, batch_size=64, seed=3, **attack_options(name))
    adversarial = attack(data.images, data.labels)
    assert adversarial.shape == data.images.shape and adversarial.device == data.images.device
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0
    change = (adversarial - data.images).abs().max().item()
    if name == "CW":
        l2 = (adversarial - data.images).flatten(1).norm(dim=1)
        assert torch.allclose(attack.last_l2, l2) and attack.last_l2.shape == (len(data),)
        assert l2.max() > 0
    else:
        assert 0 < change <= EPS + 1e-6
    again = make_attack(name, linear_model, batch_size=64, seed=3, **attack_options(name))
    assert torch.equal(again(data.images, data.labels), adversarial)
    assert (
        clean_accuracy(linear_model, data.with_images(adversarial))
        < clean_accuracy(linear_model, data) - 20
    ), f"{name} hardly hurts an undefended model"


def test_random_attacks_depend_on_the_seed(linear_model) -> None:
    data = halves_data()
    for name in ("PGD", "RFGSM", "FFGSM", "TPGD"):
        a = make_attack(name, linear_model, eps=EPS, seed=0)(data.images, data.labels)
        b = make_attack(name, linear_model, eps=EPS, seed=1)(data.images, data.labels)
        assert not torch.equal(a, b), name


def closed_form_gradient_sign(model: nn.Module, images: torch.Tensor, labels: torch.Tensor):
    """d CE / d x for a linear model: W^T (softmax(Wx + b) - onehot(y)), by hand."""
    weight, bias = model[1].weight, model[1].bias
    flat = images.flatten(1)
    probs = torch.softmax(flat @ weight.T + bias, 1)
    residual = probs - F.one_hot(labels, 2).float()
    return (residual @ weight).view_as(images).sign()


def test_fgsm_and_bim_match_hand_computed_steps(linear_model) -> None:
    data = halves_data(50)
    with torch.no_grad():
        expected = torch.clamp(
            data.images + EPS * closed_form_gradient_sign(linear_model, data.images, data.labels),
            0,
            1,
        )
    assert torch.allclose(FGSM(linear_model, EPS)(data.images, data.labels), expected, atol=1e-6)
    alpha, steps = 0.03, 5
    with torch.no_grad():
        current = data.images.clone()
        for _ in range(steps):
            stepped = current + alpha * closed_form_gradient_sign(
                linear_model, current, data.labels
            )
            current = torch.clamp(
                torch.minimum(torch.maximum(stepped, data.images - EPS), data.images + EPS), 0, 1
            )
    bim = BIM(linear_model, EPS, alpha, steps)(data.images, data.labels)
    assert torch.allclose(bim, current, atol=1e-6)
    assert BIM(linear_model, 4 / 255, steps=0).steps == 5  # min(4 + 4, 1.25 * 4)


def edge_data(count: int = 40, seed: int = 5) -> LabelledImages:
    """Like ``halves_data`` but a third of the pixels sit exactly at 0 or 1, so every step's
    clipping to the input range matters."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 1, 6, 6, generator=generator)
    pick = torch.rand(count, 1, 6, 6, generator=generator)
    images = torch.where(pick < 0.17, 0.0, torch.where(pick > 0.83, 1.0, images))
    labels = (images[..., :3].mean((1, 2, 3)) > images[..., 3:].mean((1, 2, 3))).long()
    return LabelledImages(images, labels, ("right", "left"))


def linear_gradient(model: nn.Module, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """d/dx of the cross-entropy of softmax(Wx + b) against the distribution ``target``
    (one-hot labels, or TPGD's clean output): W^T (softmax(Wx + b) - target), by hand."""
    weight, bias = model[1].weight.detach(), model[1].bias.detach()
    probs = torch.softmax(images.flatten(1) @ weight.T + bias, 1)
    return ((probs - target) @ weight).view_as(images)


def clip_step(current, images, step, eps):
    """One L-inf step: into the eps-ball around ``images``, then into [0, 1]."""
    return torch.clamp(images + torch.clamp(current + step - images, -eps, eps), 0, 1)


ALPHA, SEED = 0.04, 11


@torch.no_grad()
def hand_computed(
    name: str,
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    alpha: float = ALPHA,
    steps: int = 2,
    seed: int = SEED,
):
    """``steps`` steps (one for FFGSM) of each L-inf attack, written out; the random start uses
    the attack's seeded generator, drawn in the attack's documented order."""
    generator = torch.Generator().manual_seed(seed)
    onehot = F.one_hot(labels, 2).float()
    if name == "PGD":
        start = images + torch.empty_like(images).uniform_(-EPS, EPS, generator=generator)
    elif name == "FFGSM":
        start = images + torch.empty_like(images).uniform_(-EPS, EPS, generator=generator)
    elif name == "RFGSM":
        start = images + alpha * torch.randn(images.shape, generator=generator).sign()
    elif name == "TPGD":
        start = images + 0.001 * torch.randn(images.shape, generator=generator)
        onehot = torch.softmax(model(images), 1)  # KL to the clean output
    else:  # MIFGSM
        start = images.clone()
    current = torch.clamp(start, 0, 1)
    alpha = 10 / 255 if name == "FFGSM" else alpha
    momentum = torch.zeros_like(images)
    for _ in range(1 if name == "FFGSM" else steps):
        gradient = linear_gradient(model, current, onehot)
        if name == "MIFGSM":
            gradient = gradient / gradient.abs().mean((1, 2, 3), keepdim=True) + momentum
            momentum = gradient
        current = clip_step(current, images, alpha * gradient.sign(), EPS)
    return current


@pytest.mark.parametrize("name", ["PGD", "RFGSM", "FFGSM", "TPGD", "MIFGSM"])
def test_linf_attacks_match_hand_computed_steps_at_the_range_edges(name, linear_model) -> None:
    data = edge_data()
    assert (data.images == 0).any() and (data.images == 1).any()
    expected = hand_computed(name, linear_model, data.images, data.labels)
    options = {} if name == "FFGSM" else {"alpha": ALPHA, "steps": 2}
    attack = make_attack(name, linear_model, eps=EPS, seed=SEED, **options)
    adversarial = attack(data.images, None if name == "TPGD" else data.labels)
    assert torch.allclose(adversarial, expected, atol=1e-6)
    # Clipping happened: some pixels at 0 or 1 were pushed outward and stayed on the edge.
    outward = (data.images == 1) & (adversarial == 1) | (data.images == 0) & (adversarial == 0)
    assert outward.any()


def test_cw_matches_two_hand_computed_adam_steps(linear_model) -> None:
    data = edge_data()
    images, labels = data.images, data.labels
    c, lr = 5.0, 0.3
    with torch.no_grad():
        weight, bias = linear_model[1].weight, linear_model[1].bias
        # Pixels at 0 or 1 are at w = -inf / +inf, where the gradient vanishes: they stay put.
        w = torch.atanh(2 * images - 1)
        x0 = (torch.tanh(w) + 1) / 2
        logits = x0.flatten(1) @ weight.T + bias
        own, other = (
            logits.gather(1, labels[:, None])[:, 0],
            logits.gather(1, 1 - labels[:, None])[:, 0],
        )
        active = (own - other > 0).float()[:, None]  # the margin clamps at -kappa = 0
        # d cost / d x = 2 (x - x0) + c (W_y - W_other) where the margin is active; x = x0 here.
        d_x = c * active * (weight[labels] - weight[1 - labels])
        d_w = d_x.view_as(images) * (1 - torch.tanh(w) ** 2) / 2
        # Adam's first step: m_hat = g, v_hat = g^2, so the step is lr * g / (|g| + 1e-8).
        w1 = w - lr * d_w / (d_w.abs() + 1e-8)
        x1 = (torch.tanh(w1) + 1) / 2
        wrong0 = logits.argmax(1) != labels
        wrong1 = (x1.flatten(1) @ weight.T + bias).argmax(1) != labels
        # The smallest successful image: x0 where it already fools, else x1 where that does.
        keep = torch.where(wrong0, 0, torch.where(wrong1, 1, 0)).view(-1, 1, 1, 1)
        expected = torch.where(keep.bool(), x1, x0)
    adversarial = CW(linear_model, c=c, lr=lr, steps=2)(images, labels)
    assert (keep == 1).any() and (keep == 0).any()  # both cases occur
    assert torch.allclose(adversarial, expected, atol=1e-5)
    assert torch.equal(
        adversarial[(images == 0) | (images == 1)], images[(images == 0) | (images == 1)]
    )


def test_cw_margin_is_the_papers_when_every_logit_is_negative(linear_model) -> None:
    logits = torch.tensor([[-1.0, -3.0, -2.0], [-5.0, -4.0, -6.0]])
    labels = torch.tensor([0, 0])
    paper = CW(linear_model).margin(logits, labels)
    assert paper.tolist() == [1.0, 0.0]  # max(z_y - max_other z, 0): (-1) - (-2), floored
    torchattacks = CW(linear_model, margin="torchattacks").margin(logits, labels)
    assert torchattacks.tolist() == [0.0, 0.0]  # the mask's zeros beat every negative logit
    assert CW(linear_model, kappa=5.0).margin(logits, labels).tolist() == [1.0, -1.0]
    with pytest.raises(ValueError, match="margin must be one of 'paper', 'torchattacks'; got 'x'"):
        CW(linear_model, margin="x")


def test_attack_restores_the_model_mode_and_supports_targets(linear_model) -> None:
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(36, 2))
    model.load_state_dict({"2.weight": linear_model[1].weight, "2.bias": linear_model[1].bias})
    model.train()
    seen = []
    model[1].register_forward_pre_hook(lambda module, args: seen.append(module.training))
    data = halves_data(20)
    PGD(model, EPS, steps=2)(data.images, data.labels)
    assert seen and not any(seen) and model.training
    targets = 1 - data.labels
    adversarial = PGD(linear_model, 0.3, 0.05, 20, targeted=True)(data.images, targets)
    with torch.no_grad():
        reached = (linear_model(adversarial).argmax(1) == targets).float().mean()
    assert reached > 0.9


def test_attack_errors(linear_model) -> None:
    data = halves_data(4)
    with pytest.raises(ValueError, match=r"images must lie in \[0, 1\]"):
        FGSM(linear_model)(data.images * 2, data.labels)
    with pytest.raises(ValueError, match=r"eps must be in \[0, 1\]"):
        PGD(linear_model, eps=1.5)
    with pytest.raises(ValueError, match=r"eps must be in \[0, 1\]"):
        FGSM(linear_model, eps=-0.1)
    with pytest.raises(ValueError, match="attack must be one of .*got 'DeepFool'"):
        make_attack("DeepFool", linear_model)
    with pytest.raises(ValueError, match=r"labels must be an int64 tensor \(4,\)"):
        FGSM(linear_model)(data.images, data.labels[:2])
    with pytest.raises(ValueError, match="images must be a float tensor"):
        FGSM(linear_model)(data.images[0, 0, 0], data.labels)
    with pytest.raises(ValueError, match="TPGD has no targeted mode"):
        TPGD(linear_model, targeted=True)
    with pytest.raises(ValueError, match="FGSM needs labels"):
        FGSM(linear_model)(data.images)
    with pytest.raises(ValueError, match="steps must be positive"):
        PGD(linear_model, steps=0)
    with pytest.raises(ValueError, match="c must be positive"):
        CW(linear_model, c=0)
    assert TPGD(linear_model, EPS)(data.images).shape == data.images.shape


def test_fgsm_sweep_equals_separate_attacks(linear_model) -> None:
    data = halves_data(150)
    sweep = fgsm_sweep(linear_model, data, [0.0, 0.05, 0.2], batch_size=64)
    for eps, value in sweep.items():
        assert value == pytest.approx(
            accuracy_under_attack(linear_model, FGSM(linear_model, eps), data)
        )
    assert sweep[0.0] == pytest.approx(clean_accuracy(linear_model, data))
    assert sweep[0.2] < sweep[0.05] < sweep[0.0]


def test_transfer_matrix_shape_and_white_box_diagonal(linear_model) -> None:
    data = halves_data(120)
    other = nn.Sequential(nn.Flatten(), nn.Linear(36, 2))
    with torch.no_grad():
        other[1].weight.copy_(linear_model[1].weight.flip(1).roll(3, 1))
        other[1].bias.zero_()
    models = {"a": linear_model, "b": other, "c": nn.Sequential(nn.Flatten(), nn.Linear(36, 2))}

    def make(model):
        return PGD(model, EPS, 0.02, 5, seed=7)

    matrix = transfer_matrix(models, make, data)
    assert list(matrix) == list(models) and all(
        list(row) == list(models) for row in matrix.values()
    )
    # Independently: PGD written out by hand against each donor, every target scored on it.
    for donor, model in models.items():
        adversarial = hand_computed("PGD", model, data.images, data.labels, 0.02, 5, seed=7)
        for target, scored in models.items():
            expected = clean_accuracy(scored, data.with_images(adversarial))
            assert matrix[donor][target] == pytest.approx(expected), (donor, target)
    assert matrix["a"]["a"] < clean_accuracy(linear_model, data) - 20  # white-box hurts
