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
from supervised.evaluation import evaluate
from supervised.models import mnist_net
from supervised.occlusions import mnist_cuts, partial_test_sets
from supervised.runtime import make_generator

FAST = CBOMFConfig(lr=0.05, momentum=0.5, batch_size=64, epochs=2, second_epochs=4)


def same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_every_mode_learns_and_shares_phase_one(small_data) -> None:
    results = train_modes(
        list(MODES), mnist_net, small_data, FAST, seed=0, device="cpu", progress=False
    )
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
    together = train_modes(
        ["SN", "NR"], mnist_net, small_data, FAST, seed=3, device="cpu", progress=False
    )
    alone = train_mode(
        "NR", mnist_net, small_data, config=FAST, seed=3, device="cpu", progress=False
    )
    assert same_state(together["NR"].model, alone.model) and together["NR"].losses == alone.losses
    other_seed = train_mode(
        "NR", mnist_net, small_data, config=FAST, seed=4, device="cpu", progress=False
    )
    assert other_seed.losses != alone.losses


@pytest.mark.parametrize("mode", ["NR", "HN-K"])
def test_cached_features_match_the_straightforward_path(small_data, mode: str) -> None:
    cached = train_mode(
        mode, mnist_net, small_data, config=FAST, seed=1, device="cpu", progress=False
    )
    direct_config = CBOMFConfig(**{**FAST.__dict__, "cache_features": False})
    direct = train_mode(
        mode, mnist_net, small_data, config=direct_config, seed=1, device="cpu", progress=False
    )
    assert cached.losses[-1] == pytest.approx(direct.losses[-1], rel=1e-4)
    for a, b in zip(
        cached.model.state_dict().values(), direct.model.state_dict().values(), strict=True
    ):
        assert torch.allclose(a, b, atol=1e-5)
    assert same_state(cached.model.extractor, direct.model.extractor)


def test_alt_really_alternates(small_data) -> None:
    model = mnist_net()
    seen: list[bool] = []
    model.head.register_forward_pre_hook(lambda module, args: seen.append(model.negate))
    phase = Phase(5, negation="alternate", freeze_extractor=True, reset_head=True)
    run_phase(
        model,
        phase,
        small_data,
        FAST,
        make_generator(0, "t"),
        reset_seed=1,
        device="cpu",
        progress=False,
    )
    steps = len(small_data) // FAST.batch_size
    per_epoch = [seen[i * steps : (i + 1) * steps] for i in range(5)]
    assert [set(epoch) for epoch in per_epoch] == [{True}, {False}, {True}, {False}, {True}]
    four = Phase(4, negation="alternate")
    assert [four.negation_in_epoch(e) for e in range(4)] == [False, True, False, True]


def test_phase_resets_head_and_detects_a_changing_extractor(small_data) -> None:
    model = mnist_net()
    head_before = [p.clone() for p in model.head.parameters()]
    run_phase(
        model,
        Phase(0, freeze_extractor=True, reset_head=True),
        small_data,
        FAST,
        make_generator(0, "t"),
        reset_seed=5,
        device="cpu",
        progress=False,
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
        run_phase(
            leaky,
            Phase(1, freeze_extractor=True),
            small_data,
            CBOMFConfig(cache_features=False),
            make_generator(0, "t"),
            0,
            "cpu",
            progress=False,
        )


def test_configuration_errors(small_data) -> None:
    with pytest.raises(ValueError, match="unknown CBOMF mode 'XX'"):
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
        ["SN", "HN", "TP", "HN-K", "NR-K"],
        mnist_net,
        small_data,
        config,
        device="cpu",
        progress=False,
    )
    test_sets = partial_test_sets(small_data.subset(slice(0, 100)), mnist_cuts())
    shared = evaluate_modes(trained, test_sets, "cpu")
    for mode, result in trained.items():
        direct = evaluate(result.model, test_sets)
        assert shared[mode] == pytest.approx(direct, abs=1e-9), mode
