"""Adversarial attacks in plain torch: FGSM, PGD, BIM, CW (L2), RFGSM, FFGSM, TPGD, MIFGSM.

Each attack is a small class on one base (:class:`Attack`: input checks, eval mode, batches on
the device, seeded randomness, the L-inf projection). Defaults and update rules are those of
torchattacks 3.5.1 except two, described in the supervised guide: CW's margin is the paper's
``max_{j != y} z_j - z_y`` (``CW(margin="torchattacks")`` reproduces torchattacks' masked
maxima, whose margin is 0 when every logit is negative), and MIFGSM takes a zero step on an all
zero gradient where torchattacks divides 0 by 0; its mean runs over every non-batch dimension
(torchattacks: dimensions 1, 2, 3, so 4-d images only).

Attacks work on images in ``input_range`` (``[0, 1]``); normalisation belongs to the model.
Losses are summed over a batch rather than averaged (torchattacks averages): the sign steps are
the same, and the result does not depend on how a test set is split into batches (except CW's
early stop, which the reference decides per batch).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from negdl.checks import check_choice, check_int
from supervised.evaluation import model_device
from supervised.runtime import check_seed, select_device
from supervised.training import evaluating, prepare_inputs


class Attack(ABC):
    """Base class of every attack.

    :param model: maps images in ``input_range`` to logits.
    :param eps: L-inf budget, in ``[0, high - low]`` (``None`` for attacks without one: CW).
    :param targeted: the labels given to a call are classes to reach, not true classes.
    :param batch_size: images attacked at once (a few hundred keep the MNIST net's activations
        in cache on a CPU).
    :param seed: seed of the random starts; the same seed, images and batch size give the same
        adversarial images.
    """

    name = "attack"
    supports_targeted = True
    needs_labels = True

    def __init__(
        self,
        model: nn.Module,
        eps: float | None = 8 / 255,
        *,
        targeted: bool = False,
        input_range: tuple[float, float] = (0.0, 1.0),
        batch_size: int = 250,
        device: torch.device | str | None = None,
        seed: int = 0,
    ) -> None:
        low, high = (float(value) for value in input_range)
        if not low < high:
            raise ValueError(f"input_range must be (low, high) with low < high, got {input_range}")
        if eps is not None and not 0.0 <= eps <= high - low:
            raise ValueError(
                f"eps must be in [0, {high - low:g}] (the input range's width), got {eps}"
            )
        check_int("batch_size", batch_size, 1)
        check_seed("seed", seed)
        if targeted and not self.supports_targeted:
            raise ValueError(f"{self.name} has no targeted mode; use targeted=False")
        self.model, self.eps, self.targeted = model, eps, targeted
        self.low, self.high = low, high
        self.batch_size, self.seed = batch_size, seed
        self.device = model_device(model) if device is None else select_device(device)

    @staticmethod
    def _positive(**values: float) -> None:
        for name, value in values.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")

    def __call__(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Adversarial copies of ``images`` (float, in ``input_range``) for int64 ``labels``: the
        true classes, or the classes to reach when targeted."""
        self.check_inputs(images, labels)
        generator = torch.Generator(self.device).manual_seed(self.seed)
        with evaluating(self.model), torch.enable_grad():
            chunks = [
                self.perturb(
                    prepare_inputs(images[start : start + self.batch_size], self.device),
                    None
                    if labels is None
                    else labels[start : start + self.batch_size].to(self.device),
                    generator,
                ).detach()
                for start in range(0, len(images), self.batch_size)
            ]
        return torch.cat(chunks).to(images.device) if chunks else images.clone()

    def check_inputs(self, images: torch.Tensor, labels: torch.Tensor | None) -> None:
        """Raise ``ValueError`` for wrong shapes, types or pixels outside ``input_range``."""
        if not (
            isinstance(images, torch.Tensor) and images.ndim >= 2 and images.is_floating_point()
        ):
            raise ValueError(
                "images must be a float tensor (N, ...) such as (N, C, H, W), got "
                f"{type(images).__name__} {tuple(getattr(images, 'shape', ()))}"
            )
        if len(images) and (images.min() < self.low or images.max() > self.high):
            raise ValueError(
                f"images must lie in [{self.low:g}, {self.high:g}], got values in "
                f"[{images.min().item():g}, {images.max().item():g}]; attack raw pixels and put "
                "normalisation inside the model"
            )
        if labels is None and self.needs_labels:
            raise ValueError(f"{self.name} needs labels (N,)")
        if labels is not None and (labels.shape != images.shape[:1] or labels.dtype != torch.int64):
            raise ValueError(
                f"labels must be an int64 tensor ({len(images)},), got {labels.dtype} {tuple(labels.shape)}"
            )

    def loss_gradient(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Gradient of the cross-entropy (summed over the batch) with respect to ``images``;
        of its negative when targeted, so ascending it always helps the attack."""
        images = images.detach().requires_grad_(True)
        loss = F.cross_entropy(self.model(images), labels, reduction="sum")
        return torch.autograd.grad(-loss if self.targeted else loss, images)[0]

    def budget(self) -> float:
        """``eps``, which every attack but the unbounded ones (CW) has."""
        if self.eps is None:
            raise ValueError(f"{self.name} has no eps budget")
        return self.eps

    def project(self, adversarial: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """Back into the eps-ball around ``images`` and the input range."""
        eps = self.budget()
        delta = torch.clamp(adversarial - images, -eps, eps)
        return torch.clamp(images + delta, self.low, self.high).detach()

    def normal_noise(self, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)

    @abstractmethod
    def perturb(
        self, images: torch.Tensor, labels: torch.Tensor | None, generator: torch.Generator
    ) -> torch.Tensor:
        """Adversarial images for one batch already on the device."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(eps={self.eps}, targeted={self.targeted}, seed={self.seed})"


class FGSM(Attack):
    """Fast gradient sign method (Goodfellow et al. 2015): one step of ``eps`` along the sign
    of the loss gradient. https://arxiv.org/abs/1412.6572"""

    name = "FGSM"

    def direction(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The sign of the loss gradient; the step for every eps (an eps sweep reuses it)."""
        return self.loss_gradient(images, labels).sign()

    def perturb(self, images, labels, generator):
        return self.step(images, self.direction(images, labels), self.eps)

    def step(self, images: torch.Tensor, direction: torch.Tensor, eps: float) -> torch.Tensor:
        """``clamp(images + eps * direction)`` into the input range."""
        return torch.clamp(images + eps * direction, self.low, self.high)


class PGD(Attack):
    """Projected gradient descent (Madry et al. 2018), L-inf, ``steps`` steps of ``alpha`` from a
    uniform random start in the eps-ball. https://arxiv.org/abs/1706.06083"""

    name = "PGD"

    def __init__(
        self,
        model: nn.Module,
        eps: float = 8 / 255,
        alpha: float = 2 / 255,
        steps: int = 10,
        random_start: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(model, eps, **kwargs)
        self._positive(alpha=alpha)
        self.alpha, self.steps, self.random_start = alpha, self.step_count(steps), random_start

    def step_count(self, steps: int) -> int:
        """The number of iterations ``steps`` asks for; ``ValueError`` unless it is positive."""
        self._positive(steps=steps)
        return int(steps)

    def start(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Where the iterations begin: uniformly in the eps-ball, or at the images."""
        if not self.random_start:
            return images.clone()
        eps = self.budget()
        noise = torch.empty_like(images).uniform_(-eps, eps, generator=generator)
        return torch.clamp(images + noise, self.low, self.high)

    def ascent(
        self, images: torch.Tensor, labels: torch.Tensor | None
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """The function whose sign each step follows: the loss gradient at the current point."""
        assert labels is not None  # check_inputs refuses None when needs_labels
        return lambda adversarial: self.loss_gradient(adversarial, labels)

    def perturb(self, images, labels, generator):
        adversarial = self.start(images, generator)
        ascent = self.ascent(images, labels)
        for _ in range(self.steps):
            step = self.alpha * ascent(adversarial).sign()
            adversarial = self.project(adversarial + step, images)
        return adversarial


class FixedStartPGD(PGD):
    """PGD without the ``random_start`` option: the iterations begin where :meth:`start` says,
    at the images unless a subclass draws its own start."""

    def __init__(
        self,
        model: nn.Module,
        eps: float = 8 / 255,
        alpha: float = 2 / 255,
        steps: int = 10,
        **kwargs,
    ) -> None:
        super().__init__(model, eps, alpha, steps, random_start=False, **kwargs)


class BIM(FixedStartPGD):
    """Basic iterative method (Kurakin et al. 2017): iterated FGSM steps of ``alpha`` clipped
    to the eps-ball; ``steps`` 0 picks ``min(255 eps + 4, 1.25 * 255 eps)`` as the paper does.
    https://arxiv.org/abs/1607.02533"""

    name = "BIM"

    def step_count(self, steps: int) -> int:
        """``steps``, or the paper's rule when it is 0; ``ValueError`` when it is negative."""
        if steps < 0:
            raise ValueError(f"steps must be >= 0 (0: the paper's rule), got {steps}")
        eps = self.budget()
        return int(min(eps * 255 + 4, 1.25 * eps * 255)) if steps == 0 else int(steps)

    def project(self, adversarial: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """The reference's clip into the eps-ball and the input range: the same point as
        :meth:`Attack.project`, computed as torchattacks does (so rounding matches it)."""
        eps = self.budget()
        lower = torch.clamp(images - eps, min=self.low)
        return torch.clamp(
            torch.minimum(torch.maximum(adversarial, lower), images + eps), max=self.high
        ).detach()


class CW(Attack):
    """Carlini-Wagner L2 (2017): Adam on ``w`` with ``x = (tanh(w) + 1) / 2``, minimising the
    squared L2 distance plus ``c`` times the margin ``max(z_true - max_other z, -kappa)``; keeps
    each image's smallest successful perturbation (the clean image when none succeeds).
    https://arxiv.org/abs/1608.04644

    There is no eps; :attr:`last_l2` holds the L2 norm of every perturbation of the last call.
    As in the reference, a batch stops early when its total cost rises between checks, and
    pixels exactly at 0 or 1 map to infinite ``w`` and stay fixed.

    :param margin: ``"paper"`` (the best other logit) or ``"torchattacks"`` (for comparisons).
    """

    name = "CW"

    def __init__(
        self,
        model: nn.Module,
        c: float = 1.0,
        kappa: float = 0.0,
        steps: int = 50,
        lr: float = 0.01,
        margin: str = "paper",
        **kwargs,
    ) -> None:
        super().__init__(model, None, **kwargs)
        self.margin_rule = check_choice("margin", margin, ("paper", "torchattacks"))
        if self.low != 0.0 or self.high != 1.0:
            raise ValueError("CW's tanh change of variables needs input_range (0, 1)")
        if kappa < 0:
            raise ValueError(f"kappa must be >= 0, got {kappa}")
        self._positive(c=c, steps=steps, lr=lr)
        self.c, self.kappa, self.steps, self.lr = c, kappa, int(steps), lr
        self.last_l2 = torch.empty(0)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        adversarial = super().__call__(images, labels)
        self.last_l2 = (adversarial - images).flatten(1).norm(dim=1)
        return adversarial

    def margin(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per sample: how far the attack still is from success, floored at ``-kappa``."""
        onehot = F.one_hot(labels, logits.shape[1])
        if self.margin_rule == "torchattacks":  # zeros from the mask enter both maxima
            own = (onehot * logits).amax(1)
            other = ((1 - onehot) * logits).amax(1)
        else:
            own = logits.gather(1, labels[:, None])[:, 0]
            other = logits.masked_fill(onehot.bool(), -torch.inf).amax(1)
        gap = other - own if self.targeted else own - other
        return torch.clamp(gap, min=-self.kappa)

    def perturb(self, images, labels, generator):
        w = torch.atanh(torch.clamp(images * 2 - 1, -1, 1)).detach().requires_grad_(True)
        best = images.clone()
        best_l2 = torch.full((len(images),), 1e10, device=images.device)
        optimizer = torch.optim.Adam([w], lr=self.lr)
        previous_cost = 1e10
        for step in range(self.steps):
            adversarial = (torch.tanh(w) + 1) / 2
            l2 = (adversarial - images).pow(2).flatten(1).sum(1)
            logits = self.model(adversarial)
            cost = l2.sum() + self.c * self.margin(logits, labels).sum()
            optimizer.zero_grad()
            cost.backward()
            optimizer.step()
            predicted = logits.detach().argmax(1)
            success = predicted == labels if self.targeted else predicted != labels
            improved = success & (best_l2 > l2.detach())
            best_l2 = torch.where(improved, l2.detach(), best_l2)
            best = torch.where(
                improved.view(-1, *[1] * (images.ndim - 1)), adversarial.detach(), best
            )
            if step % max(self.steps // 10, 1) == 0:
                if cost.item() > previous_cost:
                    break
                previous_cost = cost.item()
        return best


class RFGSM(FixedStartPGD):
    """R+FGSM (Tramer et al. 2018): a random sign step of ``alpha``, then ``steps`` sign steps
    of ``alpha`` projected to the eps-ball (the reference's iterative form).
    https://arxiv.org/abs/1705.07204"""

    name = "RFGSM"

    def start(self, images, generator):
        step = self.alpha * self.normal_noise(images, generator).sign()
        return torch.clamp(images + step, self.low, self.high)


class FFGSM(PGD):
    """Fast adversarial training's FGSM (Wong et al. 2020): PGD with one step of ``alpha``
    (10/255 by default, larger than eps). https://arxiv.org/abs/2001.03994"""

    name = "FFGSM"

    def __init__(
        self, model: nn.Module, eps: float = 8 / 255, alpha: float = 10 / 255, **kwargs
    ) -> None:
        super().__init__(model, eps, alpha, steps=1, random_start=True, **kwargs)


class TPGD(FixedStartPGD):
    """TRADES' PGD (Zhang et al. 2019): maximise the KL divergence from the clean output;
    needs no labels. https://arxiv.org/abs/1901.08573"""

    name = "TPGD"
    supports_targeted = False
    needs_labels = False

    def start(self, images, generator):
        noise = 0.001 * self.normal_noise(images, generator)
        return torch.clamp(images + noise, self.low, self.high)

    def ascent(self, images, labels):
        with torch.no_grad():
            clean = F.softmax(self.model(images), 1)

        def divergence_gradient(adversarial: torch.Tensor) -> torch.Tensor:
            adversarial = adversarial.detach().requires_grad_(True)
            log_probs = F.log_softmax(self.model(adversarial), 1)
            divergence = F.kl_div(log_probs, clean, reduction="sum")
            return torch.autograd.grad(divergence, adversarial)[0]

        return divergence_gradient


class MIFGSM(FixedStartPGD):
    """Momentum iterative FGSM (Dong et al. 2018): sign steps along an accumulated (``decay``),
    per-image L1-normalised gradient. https://arxiv.org/abs/1710.06081"""

    name = "MIFGSM"

    def __init__(
        self,
        model: nn.Module,
        eps: float = 8 / 255,
        alpha: float = 2 / 255,
        steps: int = 10,
        decay: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(model, eps, alpha, steps, **kwargs)
        if decay < 0:
            raise ValueError(f"decay must be >= 0, got {decay}")
        self.decay = decay

    def ascent(self, images, labels):
        momentum = torch.zeros_like(images)
        reduce_dims = tuple(range(1, images.ndim))

        def accumulated_gradient(adversarial: torch.Tensor) -> torch.Tensor:
            nonlocal momentum
            gradient = self.loss_gradient(adversarial, labels)
            scale = gradient.abs().mean(reduce_dims, keepdim=True)
            # A zero gradient gives 0, not NaN.
            scale = scale.clamp_min(torch.finfo(scale.dtype).tiny)
            momentum = gradient / scale + self.decay * momentum
            return momentum

        return accumulated_gradient


#: Attacks by name, for :func:`make_attack` and the scripts.
ATTACKS: dict[str, type[Attack]] = {
    cls.name: cls for cls in (FGSM, PGD, BIM, CW, RFGSM, FFGSM, TPGD, MIFGSM)
}


def make_attack(name: str, model: nn.Module, **kwargs) -> Attack:
    """An attack by name (one of :data:`ATTACKS`) on ``model`` with its keyword arguments."""
    return ATTACKS[check_choice("attack", name, tuple(ATTACKS))](model, **kwargs)
