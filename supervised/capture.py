"""How a training step runs on the device: captured and replayed, or eager; fp32 or AMP.

A small model's step on a GPU is bound by kernel launches, not arithmetic, so forward, backward
and optimiser update are captured as one CUDA graph and replayed (:class:`GraphedStep`).
``torch.compile(mode="reduce-overhead")`` is selectable for measurement, not the default: it
takes seconds to compile for every new trainer, and CBOMF builds one per phase.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch
from torch import nn

from negdl.checks import check_choice

#: ``capture=`` values: ``"auto"`` (a CUDA graph on CUDA in fp32, eager otherwise),
#: ``"cuda-graph"`` (required, an error where impossible), ``"compile"``
#: (``torch.compile(mode="reduce-overhead")``), ``"off"`` (eager).
CAPTURE_MODES = ("auto", "cuda-graph", "compile", "off")

#: Models with fewer parameters train in fp32 on CUDA by default: float16 autocast measured
#: slower for the MNIST net (0.43M), whose kernels are too small for the savings to outweigh the
#: extra casts. Larger models (ResNet18, 11M) keep AMP until measured otherwise.
AMP_MIN_PARAMETERS = 5_000_000

#: Eager steps before each capture, as in PyTorch's whole-network capture example.
WARMUP_STEPS = 3

StepFn = Callable[[tuple[torch.Tensor, ...]], torch.Tensor]


def default_amp(model: nn.Module, device: torch.device) -> bool:
    """Whether a trainer uses float16 autocast by default: on CUDA, for large models only."""
    large = sum(parameter.numel() for parameter in model.parameters()) >= AMP_MIN_PARAMETERS
    return device.type == "cuda" and large


def resolve_capture(
    mode: str, device: torch.device, amp: bool, optimizer: torch.optim.Optimizer
) -> tuple[str, str]:
    """The capture a trainer uses (``"cuda-graph"``, ``"compile"`` or ``"off"``) and why.

    ``"auto"`` falls back to eager with the reason, and warns on CUDA when the optimiser is what
    prevents capture (easily fixed; AMP, by contrast, is chosen for large models on purpose);
    ``"cuda-graph"`` where it is impossible is an error that says what to change.
    """
    check_choice("capture", mode, CAPTURE_MODES)
    fixed = {"off": "capture switched off", "compile": 'torch.compile(mode="reduce-overhead")'}
    if mode in fixed:
        return mode, fixed[mode]
    # Optimisers that keep a step count (Adam, RMSprop...) hold it on the host unless built
    # with capturable=True, and a graph would replay the first count forever.
    host_count = any(not group.get("capturable", True) for group in optimizer.param_groups)
    problems = []
    if device.type != "cuda":
        problems.append(f"CUDA graphs need a CUDA device, training is on {device.type}")
    if amp:
        problems.append("AMP's gradient scaler reads a value on the host every step; use amp=False")
    if host_count:
        problems.append(
            f"{type(optimizer).__name__} keeps its step count on the host; "
            "construct it with capturable=True"
        )
    if not problems:
        return "cuda-graph", "whole step captured as a CUDA graph"
    reason = "; ".join(problems)
    if mode == "cuda-graph":
        raise ValueError(f"capture='cuda-graph' is impossible here: {reason}")
    if device.type == "cuda" and host_count:
        warnings.warn(f"training step not captured, it runs eagerly: {reason}", stacklevel=3)
    return "off", reason


class StepRecorder(ABC):
    """How a step is warmed up, recorded once and replayed."""

    @abstractmethod
    def warmup(self) -> AbstractContextManager[None]:
        """The context the eager warm-up steps run in."""

    @abstractmethod
    def record(self, run: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
        """Record ``run`` (which reads the static buffers) and return its replay, which returns
        the loss it computed; recording itself computes nothing."""


class CudaGraphRecorder(StepRecorder):
    """Records a step as a CUDA graph on a side stream of its own, as PyTorch's whole-network
    capture example does: a failed capture leaves only that stream unusable, never the default
    capture stream other trainers share."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stream = torch.cuda.Stream(device)

    @contextmanager
    def warmup(self) -> Iterator[None]:
        ambient = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(ambient)
        with torch.cuda.stream(self.stream):
            yield
        ambient.wait_stream(self.stream)

    def record(self, run: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.stream):
            loss = run()

        def replay() -> torch.Tensor:
            graph.replay()
            return loss

        return replay


class RerunRecorder(StepRecorder):
    """ "Replays" by running the step again on the static buffers: a CUDA graph's control flow on
    any device, so it is tested on the CPU; no faster than eager."""

    def warmup(self) -> AbstractContextManager[None]:
        return nullcontext()

    def record(self, run: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
        return run


class GraphedStep:
    """A training step replayed from a recording, with static input buffers.

    The first batch fixes the buffers' shapes. Per value of ``key()``, the first ``warmup_steps``
    batches of that shape run eagerly in the recorder's warm-up context, the next is recorded and
    every later one is copied into the buffers and replayed. Batches of another shape (an epoch's
    short last batch) run eagerly: padding would change what a reducer and batch-norm see. If
    recording fails, every later step runs eagerly, with a warning; :attr:`failure` says why.

    :param step: the eager step (forward, backward, update) returning the detached loss; it must
        launch the same work whenever ``key()`` is the same.
    :param warmup_steps: >= 1, since the optimiser creates its state in the first step.
    """

    def __init__(
        self,
        step: StepFn,
        recorder: StepRecorder,
        key: Callable[[], Hashable] | None = None,
        warmup_steps: int = WARMUP_STEPS,
    ) -> None:
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps must be >= 1, got {warmup_steps}")
        self.step, self.recorder, self.key, self.warmup_steps = step, recorder, key, warmup_steps
        self.failure: str | None = None
        self.reset()

    def reset(self) -> None:
        """Forget every recording and the static buffers (the step's Python state changed)."""
        self.static: tuple[torch.Tensor, ...] | None = None
        self.replays: dict[Hashable, Callable[[], torch.Tensor]] = {}
        self.warmed: dict[Hashable, int] = {}

    @property
    def recordings(self) -> int:
        """How many recordings are live."""
        return len(self.replays)

    def fits(self, batch: tuple[torch.Tensor, ...]) -> bool:
        """Whether ``batch`` has the shapes, dtypes and devices of the static buffers."""
        layout = lambda tensors: [(t.shape, t.dtype, t.device) for t in tensors]  # noqa: E731
        return self.static is not None and layout(batch) == layout(self.static)

    def __call__(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Run one step on ``batch``; returns the detached loss (a fresh tensor every step)."""
        if self.failure is not None:
            return self.step(batch)
        if self.static is None:
            self.static = tuple(torch.empty_like(tensor) for tensor in batch)
        static = self.static
        if not self.fits(batch):
            return self.step(batch)
        key = self.key() if self.key is not None else None
        if key not in self.replays and self.warmed.get(key, 0) < self.warmup_steps:
            self.warmed[key] = self.warmed.get(key, 0) + 1
            with self.recorder.warmup():
                return self.step(batch)
        for buffer, tensor in zip(static, batch, strict=True):
            buffer.copy_(tensor)
        if key not in self.replays:
            try:
                self.replays[key] = self.recorder.record(lambda: self.step(static))
            except RuntimeError as error:
                self.failure = f"{type(error).__name__}: {error}"
                warnings.warn(
                    f"the training step could not be captured, training continues eagerly "
                    f"({self.failure})",
                    RuntimeWarning,
                    stacklevel=2,
                )
                return self.step(batch)
        # The replay overwrites its output in place; callers may keep losses across steps.
        return self.replays[key]().clone()


class CompiledStep:
    """A training step through ``torch.compile(mode="reduce-overhead")``; dynamo guards on the
    Python state the step reads and recompiles when it changes, so nothing needs resetting."""

    def __init__(self, step: StepFn) -> None:
        self.compiled = torch.compile(step, mode="reduce-overhead")

    def reset(self) -> None:
        """Nothing to forget: dynamo's guards notice changed Python state."""

    def __call__(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        torch.compiler.cudagraph_mark_step_begin()
        return self.compiled(batch).clone()


def captured_step(
    capture: str,
    step: StepFn,
    device: torch.device,
    key: Callable[[], Hashable] | None = None,
) -> GraphedStep | CompiledStep | None:
    """The replaying wrapper of ``step`` for a :func:`resolve_capture` mode (None for ``"off"``)."""
    if capture == "cuda-graph":
        return GraphedStep(step, CudaGraphRecorder(device), key)
    if capture == "compile":
        return CompiledStep(step)
    if capture == "off":
        return None
    raise ValueError(
        f"capture must be resolved to 'cuda-graph', 'compile' or 'off', got {capture!r}"
    )
