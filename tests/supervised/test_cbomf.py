"""CBOMF modes: every mode learns, freezing, resets, alternation, and the shortcuts are exact."""

from __future__ import annotations

import pytest
import torch

from supervised.cbomf import (
    MODES,
    CBOMFConfig,
    Phase,
    evaluate_modes,
    mode_phases,
    run_phase,
    train_mode,
    train_modes,
)
from supervised.context import RunContext
from supervised.evaluation import evaluate
from supervised.models import mnist_net
from supervised.occlusions import mnist_cuts, partial_test_sets

CPU = RunContext("cpu", progress=False)

CPU = RunContext("cpu", progress=False)
FAST = CBOMFConfig(lr=0.05, momentum=0.5, batch_size=64, epochs=2, second_epochs=4)


def same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_every_mode_learns_and_shares_phase_one(small_data) -> None:
    (results,) = train_modes(list(MODES), mnist_net, small_data, FAST, context=CPU).values()
    for mode, result in results.items():
        last = result.losses[-1]
        if mode == "ALT":
            last = last[1::2]  # the epochs with negation on (the schedule ends on)
        assert last[-1] < last[0], f"{mode} did not learn: {result.losses}"
    sn = results["SN"].model
    for mode in ("HN", "NR", "ALT", "TP"):
        assert results[mode].losses[0] == results["SN"].losses[0]
        assert same_state(results[mode].model.extractor, sn.extractor), (
            f"{mode} changed the frozen extractor"
        )
        assert all(not p.requires_grad for p in results[mode].model.extractor.parameters())
    for mode in ("HN-K", "NR-K"):
        extractor = results[mode].model.extractor
        assert torch.equal(extractor.conv2.weight, -sn.extractor.conv2.weight)
        assert torch.equal(extractor.conv2.bias, -sn.extractor.conv2.bias)
        assert torch.equal(extractor.conv1.weight, sn.extractor.conv1.weight)
    expected_negation = {
        "SN": False,
        "ONN": True,
        "HN": True,
        "NR": True,
        "ALT": True,
        "TP": False,
        "HN-K": False,
        "NR-K": False,
    }
    assert {mode: result.model.negate for mode, result in results.items()} == expected_negation


def test_shared_phase_one_equals_training_alone(small_data) -> None:
    together = train_modes(["SN", "NR"], mnist_net, small_data, FAST, (3,), CPU)[3]
    alone = train_mode("NR", mnist_net, small_data, config=FAST, seeds=(3,), context=CPU)
    assert same_state(together["NR"].model, alone.model) and together["NR"].losses == alone.losses
    other_seed = train_mode("NR", mnist_net, small_data, config=FAST, seeds=(4,), context=CPU)
    assert other_seed.losses != alone.losses


@pytest.mark.parametrize("mode", ["NR", "HN-K"])
def test_cached_features_match_the_straightforward_path(small_data, mode: str) -> None:
    cached = train_mode(mode, mnist_net, small_data, config=FAST, seeds=(1,), context=CPU)
    direct_config = CBOMFConfig(**{**FAST.__dict__, "cache_features": False})
    direct = train_mode(mode, mnist_net, small_data, config=direct_config, seeds=(1,), context=CPU)
    assert cached.losses[-1] == pytest.approx(direct.losses[-1], rel=1e-4)
    for a, b in zip(
        cached.model.state_dict().values(), direct.model.state_dict().values(), strict=True
    ):
        assert torch.allclose(a, b, atol=1e-5)
    assert same_state(cached.model.extractor, direct.model.extractor)


def test_alt_really_alternates(small_data) -> None:
    model = mnist_net()
    seen: list[bool] = []
    # Training forwards only: the input check's single forward runs in eval mode.
    model.head.register_forward_pre_hook(
        lambda module, args: seen.append(model.negate) if module.training else None
    )
    phase = Phase(5, negation="alternate", freeze_extractor=True, reset_head=True)
    run_phase([model], (phase,), small_data, FAST, [0], CPU)
    steps = len(small_data) // FAST.batch_size
    per_epoch = [seen[i * steps : (i + 1) * steps] for i in range(5)]
    assert [set(epoch) for epoch in per_epoch] == [{True}, {False}, {True}, {False}, {True}]
    four = Phase(4, negation="alternate")
    assert [four.negation_in_epoch(e) for e in range(4)] == [False, True, False, True]


def test_phase_resets_head_and_detects_a_changing_extractor(small_data) -> None:
    model = mnist_net()
    head_before = [p.clone() for p in model.head.parameters()]
    run_phase(
        [model], (Phase(0, freeze_extractor=True, reset_head=True),), small_data, FAST, [5], CPU
    )
    assert all(
        not torch.equal(a, b) for a, b in zip(head_before, model.head.parameters(), strict=True)
    )

    class LeakyFreeze(type(model)):
        def freeze_extractor(self) -> None:  # forgets requires_grad: the check must notice
            self.extractor_frozen = True

    fresh = mnist_net()
    leaky = LeakyFreeze(fresh.extractor, fresh.head)
    with pytest.raises(RuntimeError, match="frozen extractor changed"):
        phase = Phase(1, freeze_extractor=True)
        run_phase([leaky], (phase,), small_data, CBOMFConfig(cache_features=False), [0], CPU)


def test_configuration_errors(small_data) -> None:
    with pytest.raises(ValueError, match="CBOMF mode must be one of .*got 'XX'"):
        train_modes(["SN", "XX"], mnist_net, small_data, FAST)
    with pytest.raises(ValueError, match="negation must be one of"):
        Phase(1, negation="sometimes")
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        CBOMFConfig(lr=0)
    assert [len(mode_phases(mode, CBOMFConfig())) for mode in MODES] == [1, 1, 2, 2, 2, 2, 2, 2]
    assert mode_phases("HN", CBOMFConfig()) == (Phase(10), Phase(10, "on", True, True))


def test_evaluate_modes_on_shared_features_equals_per_model_evaluation(small_data) -> None:
    config = CBOMFConfig(lr=0.05, epochs=1, second_epochs=1)
    trained = train_modes(
        ["SN", "HN", "TP", "HN-K", "NR-K"], mnist_net, small_data, config, context=CPU
    )
    test_sets = partial_test_sets(small_data.subset(slice(0, 100)), mnist_cuts())
    shared = evaluate_modes(trained, test_sets, CPU)[0]
    for mode, result in trained[0].items():
        direct = evaluate(result.model, test_sets)
        assert shared[mode] == pytest.approx(direct, abs=1e-9), mode


class ScalarLog:
    """A stand-in TensorBoard writer that keeps its scalars."""

    def __init__(self) -> None:
        self.scalars: list[tuple[str, float, int]] = []

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, float(value), step))


def test_every_mode_that_reuses_phase_one_shows_it_in_tensorboard(small_data) -> None:
    logs: dict[str, ScalarLog] = {}
    config = CBOMFConfig(lr=0.05, batch_size=64, epochs=1, second_epochs=1)
    train_modes(
        ["SN", "HN", "NR"],
        mnist_net,
        small_data,
        config,
        context=CPU,
        writer_for=lambda _seed, mode: logs.setdefault(mode, ScalarLog()),
    )
    phase_one = logs["SN"].scalars
    assert phase_one  # SN trained phase 1 itself
    last_step = max(step for _, _, step in phase_one)
    for mode in ("HN", "NR"):
        scalars = logs[mode].scalars
        assert scalars[: len(phase_one)] == phase_one  # phase 1, copied from SN's run
        later = scalars[len(phase_one) :]
        assert later and min(step for _, _, step in later) > last_step  # then its own phase 2
    assert logs["HN"].scalars[len(phase_one) :] != logs["NR"].scalars[len(phase_one) :]
