"""Rollouts to files: GIF with Pillow (a core dependency), MP4 with the ``video`` extra."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

VIDEO_SUFFIXES = (".gif", ".mp4")


def check_video_path(path: str | Path) -> None:
    """Fail before a rollout, not after it, on a file name or an MP4 writer that will not do.

    :raises ValueError: ``path`` does not end in ``.gif``/``.mp4``, or MP4 has no encoder.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"output must end in one of {VIDEO_SUFFIXES}, got {str(path)!r}")
    if suffix == ".mp4" and (
        importlib.util.find_spec("imageio") is None
        or not any(importlib.util.find_spec(name) for name in ("imageio_ffmpeg", "av"))
    ):
        raise ValueError(
            "writing MP4 needs imageio with ffmpeg: pip install 'negdl[video]'; or write a .gif"
        )


def write_video(frames: list[np.ndarray], path: str | Path, fps: int) -> None:
    """Write RGB frames ``(H, W, 3) uint8`` to a GIF or MP4 file at ``fps`` frames per second."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        from PIL import Image

        images = [Image.fromarray(frame) for frame in frames]
        images[0].save(
            path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0
        )
        return
    try:
        import imageio.v2 as imageio

        imageio.mimwrite(path, frames, fps=fps)
    except (ImportError, ValueError, RuntimeError) as error:
        raise ValueError(
            f"writing MP4 needs imageio with ffmpeg: pip install 'negdl[video]' ({error}); or write a .gif"
        ) from error
