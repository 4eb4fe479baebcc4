"""The torch device a run asks for, checked: a device that is not there is an error, not a
silent fallback to the CPU."""

from __future__ import annotations

import torch

#: Device types negdl runs on.
DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The device to run on: CUDA when present for ``"auto"`` (or None), else ``device`` itself.

    :param device: ``"auto"``, None, ``"cpu"``, ``"cuda"``, ``"cuda:<index>"`` or ``"mps"``.
    :raises ValueError: an unknown name, or a device this machine does not have.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise ValueError(
            f"device must be a string such as 'cpu' or 'cuda', got {type(device).__name__} {device!r}"
        )
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise ValueError(
            f"invalid device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:<index>' or 'mps'"
        ) from None
    if chosen.type not in DEVICE_TYPES:
        raise ValueError(f"device {device!r} is not supported; use one of {DEVICE_TYPES}")
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} was requested but CUDA is not available on this machine; "
                "use 'cpu' or 'auto'"
            )
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} was requested but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} was requested but MPS is not available; use 'cpu'")
    return chosen
