"""Captured steps: when capture is chosen, and the replay logic (static buffers, warm-up, short
batches, keys, failures) run on the CPU through a recorder that reruns instead of replaying."""

from __future__ import annotations

import warnings

import pytest
import torch

from supervised.capture import (
    AMP_MIN_PARAMETERS,
    GraphedStep,
    RerunRecorder,
    default_amp,
    resolve_capture,
)
from supervised.context import RunContext
from supervised.models import cifar_resnet18, mnist_net
from supervised.training import Trainer, TrainerOptions

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
ON_CPU = RunContext(CPU, progress=False)


def sgd(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)


def test_resolve_capture_decides_and_explains() -> None:
    model = mnist_net()
    assert resolve_capture("auto", CUDA, False, sgd(model))[0] == "cuda-graph"
    mode, reason = resolve_capture("auto", CPU, False, sgd(model))
    assert mode == "off" and "need a CUDA device" in reason
    assert resolve_capture("off", CUDA, False, sgd(model))[0] == "off"
    assert resolve_capture("compile", CPU, False, sgd(model))[0] == "compile"
    adam = torch.optim.Adam(model.parameters())
    with pytest.warns(UserWarning, match="construct it with capturable=True"):
        assert resolve_capture("auto", CUDA, False, adam)[0] == "off"
    capturable = torch.optim.Adam(model.parameters(), capturable=True)
    assert resolve_capture("auto", CUDA, False, capturable)[0] == "cuda-graph"
    mode, reason = resolve_capture("auto", CUDA, True, sgd(model))
    assert mode == "off" and "gradient scaler" in reason
    with pytest.raises(ValueError, match="impossible here: CUDA graphs need a CUDA device"):
        resolve_capture("cuda-graph", CPU, False, sgd(model))
    with pytest.raises(ValueError, match="capture must be one of"):
        resolve_capture("graphs", CPU, False, sgd(model))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning where eager is expected or chosen
        resolve_capture("auto", CPU, True, adam)
        resolve_capture("auto", CUDA, True, sgd(model))


def test_fp32_by_default_for_small_models_on_cuda() -> None:
    assert not default_amp(mnist_net(), CPU) and not default_amp(mnist_net(), CUDA)
    large = cifar_resnet18()
    assert sum(p.numel() for p in large.parameters()) >= AMP_MIN_PARAMETERS
    assert default_amp(large, CUDA) and not default_amp(large, CPU)


def test_trainer_on_cpu_runs_eagerly_and_says_why() -> None:
    model = mnist_net()
    trainer = Trainer(model, sgd(model), context=ON_CPU)
    assert trainer.capture == "off" and trainer.captured is None and not trainer.amp
    assert "CUDA" in trainer.capture_reason
    with pytest.raises(ValueError, match="capture='cuda-graph' is impossible"):
        Trainer(model, sgd(model), context=ON_CPU, options=TrainerOptions(capture="cuda-graph"))


class CountingRecorder(RerunRecorder):
    """Counts warm-up steps and recordings; can fail the way an uncapturable step does."""

    def __init__(self, fail: bool = False) -> None:
        self.warmups = self.records = 0
        self.fail = fail

    def warmup(self):
        self.warmups += 1
        return super().warmup()

    def record(self, run):
        self.records += 1
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        return super().record(run)


def fit(data, recorder=None, capture_key=None, epochs=3, before_epoch=None):
    torch.manual_seed(0)
    model = mnist_net()
    trainer = Trainer(
        model,
        sgd(model),
        context=ON_CPU,
        options=TrainerOptions(log_every=1, capture_key=capture_key),
    )
    if recorder is not None:
        trainer.captured = GraphedStep(trainer.eager_step, recorder, capture_key)
    generator = torch.Generator().manual_seed(1)
    data = (data.images[:150], data.labels[:150])  # batches of 64, 64 and a short 22
    losses = trainer.fit(data, epochs, generator, before_epoch)
    return losses, model, trainer


def test_replayed_steps_equal_eager_steps_with_a_short_final_batch(small_data) -> None:
    eager_losses, eager_model, _ = fit(small_data)
    recorder = CountingRecorder()
    losses, model, trainer = fit(small_data, recorder)
    # The replay reads the static buffers, so equality proves each batch was copied in.
    assert losses == eager_losses
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), eager_model.parameters(), strict=True)
    )
    # 9 steps: epoch 1's two full batches and epoch 2's first warm up, epoch 2's second is
    # recorded and replayed, epoch 3's are replayed; the short batches run eagerly.
    assert (recorder.warmups, recorder.records, trainer.global_step) == (3, 1, 9)
    assert trainer.captured.recordings == 1


def test_state_switched_between_epochs_is_keyed_or_recaptured(small_data) -> None:
    torch.manual_seed(0)
    model = mnist_net()
    data = (small_data.images[:128], small_data.labels[:128])  # two full batches per epoch

    def before_epoch(epoch: int) -> None:
        model.flag = epoch % 2

    for key, records in ((lambda: model.flag, 2), (None, 4)):
        recorder = CountingRecorder()
        trainer = Trainer(
            model, sgd(model), context=ON_CPU, options=TrainerOptions(capture_key=key)
        )
        trainer.captured = GraphedStep(trainer.eager_step, recorder, key, warmup_steps=1)
        trainer.fit(data, 4, before_epoch=before_epoch)
        # With a key: one recording per flag value, kept across epochs; without: the state
        # may have changed at every before_epoch, so every epoch warms up and records anew.
        assert recorder.records == records and recorder.warmups == records


def test_a_step_that_cannot_be_captured_continues_eagerly(small_data) -> None:
    eager_losses, eager_model, _ = fit(small_data)
    recorder = CountingRecorder(fail=True)
    with pytest.warns(RuntimeWarning, match="could not be captured, training continues eagerly"):
        losses, model, trainer = fit(small_data, recorder)
    assert losses == eager_losses and recorder.records == 1
    assert "operation not permitted" in trainer.captured.failure
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), eager_model.parameters(), strict=True)
    )


def test_graphed_step_checks_its_settings() -> None:
    with pytest.raises(ValueError, match="warmup_steps must be >= 1"):
        GraphedStep(lambda batch: batch[0], RerunRecorder(), warmup_steps=0)
    step = GraphedStep(lambda batch: batch[0].sum(), RerunRecorder(), warmup_steps=1)
    first = (torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))
    step(first)
    assert step.fits(first)
    assert not step.fits((torch.zeros(3, 2), torch.zeros(3, dtype=torch.long)))
    assert not step.fits((torch.zeros(4, 2), torch.zeros(4)))  # dtype differs
    assert not step.fits((torch.zeros(4, 2),))
