"""Rollouts to files, frame by frame (memory stays flat however long the episode): GIF with
Pillow (a core dependency), MP4 with the ``video`` extra."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from typing import Any

import numpy as np

VIDEO_SUFFIXES = (".gif", ".mp4")
VIDEO_EXTRA_HINT = "pip install 'negdl[video]'"


def check_video_path(path: str | Path) -> None:
    """Raise a ``ValueError`` before a rollout, not after it, when ``path`` does not end in
    ``.gif``/``.mp4`` or MP4 has no encoder."""
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"output must end in one of {VIDEO_SUFFIXES}, got {str(path)!r}")
    if suffix == ".mp4" and not _can_write_mp4():
        raise ValueError(
            f"writing MP4 needs imageio with ffmpeg: {VIDEO_EXTRA_HINT}; or write a .gif"
        )


def _can_write_mp4() -> bool:
    return all(importlib.util.find_spec(name) for name in ("imageio", "imageio_ffmpeg"))


def check_video_capture() -> None:
    """Raise a ``ValueError`` early when evaluation videos (MP4) could not be written."""
    if not _can_write_mp4():
        raise ValueError(f"capturing videos (MP4) needs imageio with ffmpeg: {VIDEO_EXTRA_HINT}")


def _gif_palette() -> Any:
    """One 256-colour palette for every frame: the renderer's own colours exactly, greys for
    anti-aliased text, and a 6x6x6 colour cube for anything else."""
    from PIL import Image

    from neg_envs import rendering

    own = [
        rendering.BACKGROUND,
        rendering.OBSTACLE,
        rendering.CONTACT,
        rendering.BIRD_BODY,
        rendering.BIRD_WING,
        rendering.BIRD_BEAK,
        rendering.BLACK,
        rendering.HUD_BACKGROUND,
        rendering.HUD_TEXT,
    ]
    cube = list(itertools.product(range(0, 256, 51), repeat=3))
    greys = [(v, v, v) for v in np.linspace(0, 255, 256 - len(own) - len(cube)).round().astype(int)]
    palette = Image.new("P", (1, 1))
    palette.putpalette([int(channel) for colour in own + greys + cube for channel in colour])
    return palette


class GifWriter:
    """Writes an animated GIF one frame at a time, with one global palette: Pillow's own
    ``save(save_all=True)`` keeps every frame until the end, this writer none.

    :param path: the ``.gif`` file (its folder is created).
    :param fps: frames per second (GIF stores delays in hundredths of a second).
    """

    def __init__(self, path: str | Path, fps: int) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.duration_ms = round(1000 / fps)
        self.size: tuple[int, int] | None = None
        self._palette = _gif_palette()
        self._file = open(path, "wb")  # noqa: SIM115  (closed by close())

    def append(self, frame: np.ndarray) -> None:
        """Encode and write one RGB frame ``(H, W, 3) uint8``; all frames must share a size."""
        from PIL import GifImagePlugin, Image

        image = Image.fromarray(frame).quantize(palette=self._palette, dither=Image.Dither.NONE)
        if self.size is None:
            self.size = image.size
            info = {"optimize": False, "loop": 0, "duration": self.duration_ms}
            header, _ = GifImagePlugin.getheader(image, info=info)
            self._file.write(b"".join(header))
        elif image.size != self.size:
            raise ValueError(f"frame size {image.size} differs from the first frame's {self.size}")
        for chunk in GifImagePlugin.getdata(image, duration=self.duration_ms):
            self._file.write(chunk)

    def close(self) -> None:
        if not self._file.closed:
            self._file.write(b";")  # GIF trailer
            self._file.close()


class Mp4Writer:
    """Streams frames to ffmpeg (imageio-ffmpeg, the ``video`` extra) as they arrive.

    :param path: the ``.mp4`` file (its folder is created).
    :param fps: frames per second.
    """

    def __init__(self, path: str | Path, fps: int) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            import imageio.v2 as imageio

            # H.264 in yuv420p needs even sides; larger blocks would rescale our frames.
            self._writer = imageio.get_writer(path, fps=fps, macro_block_size=2)
        except (ImportError, ValueError, RuntimeError) as error:
            raise ValueError(
                f"writing MP4 needs imageio with ffmpeg: {VIDEO_EXTRA_HINT} ({error}); or write a .gif"
            ) from error

    def append(self, frame: np.ndarray) -> None:
        """Send one RGB frame ``(H, W, 3) uint8`` to the encoder."""
        self._writer.append_data(frame)

    def close(self) -> None:
        self._writer.close()


def open_video(path: str | Path, fps: int) -> GifWriter | Mp4Writer:
    """A writer of RGB frames (``append``, then ``close``) into ``path``, a ``.gif`` or ``.mp4``
    file, at ``fps`` >= 1 frames per second."""
    check_video_path(path)
    if fps < 1:
        raise ValueError(f"fps must be >= 1, got {fps}")
    return (GifWriter if Path(path).suffix.lower() == ".gif" else Mp4Writer)(path, fps)
