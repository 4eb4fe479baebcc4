"""pygame drawing of a collision scene: a bird among grey discs, contacts in red, and a HUD.

Only ``render()`` reaches this module; the physics never imports pygame. Works headless with
``SDL_VIDEODRIVER=dummy``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BACKGROUND = (236, 240, 245)
OBSTACLE = (128, 128, 128)
CONTACT = (220, 40, 40)
BIRD_BODY = (245, 180, 40)
BIRD_WING = (200, 130, 20)
BIRD_BEAK = (240, 110, 30)
HUD_TEXT = (30, 30, 30)


class CollisionRenderer:
    """Draws scenes into a pygame window (``"human"``) or returns them as RGB arrays.

    :param window_size: side of the square canvas in pixels.
    :param render_mode: ``"human"`` or ``"rgb_array"``.
    :param fps: frame rate the ``"human"`` window is held to.
    """

    def __init__(self, window_size: int, render_mode: str, fps: int) -> None:
        import pygame

        self._pg = pygame
        self.size = window_size
        self.render_mode = render_mode
        self.fps = fps
        # Only display and font: pygame.init() would also open the audio device.
        pygame.display.init()
        pygame.font.init()
        if render_mode == "human":
            pygame.display.set_caption("NegCollision")
            self.window = pygame.display.set_mode((window_size, window_size))
            self.clock = pygame.time.Clock()
        self.canvas = pygame.Surface((window_size, window_size))
        self.font = pygame.font.Font(None, max(14, window_size // 24))

    def _to_px(self, xy: np.ndarray) -> np.ndarray:
        """World (y up) to pixels (y down)."""
        return np.stack([xy[..., 0] * self.size, (1.0 - xy[..., 1]) * self.size], axis=-1)

    def draw(
        self,
        agent: np.ndarray,
        agent_radius: float,
        obstacles: np.ndarray,
        obstacle_radius: float,
        contacts: np.ndarray,
        heading: np.ndarray,
        hud: Sequence[str],
    ) -> np.ndarray | None:
        """Draw one frame; return it as ``(H, W, 3) uint8`` in ``"rgb_array"`` mode.

        :param heading: the direction the bird faces (non-zero, world coordinates).
        """
        pg = self._pg
        canvas = self.canvas
        canvas.fill(BACKGROUND)
        radius_px = max(1, round(obstacle_radius * self.size))
        centres = np.rint(self._to_px(obstacles)).astype(int).tolist()
        for (x, y), touching in zip(centres, contacts.tolist(), strict=True):
            pg.draw.circle(canvas, CONTACT if touching else OBSTACLE, (x, y), radius_px)
        self._draw_bird(self._to_px(agent), agent_radius * self.size, heading, bool(contacts.any()))
        for row, text in enumerate(hud):
            canvas.blit(
                self.font.render(text, True, HUD_TEXT), (6, 4 + row * self.font.get_linesize())
            )
        if self.render_mode == "human":
            pg.event.pump()
            self.window.blit(canvas, (0, 0))
            pg.display.flip()
            self.clock.tick(self.fps)
            return None
        return np.transpose(pg.surfarray.array3d(canvas), (1, 0, 2)).copy()

    def _draw_bird(self, centre: np.ndarray, radius: float, heading: np.ndarray, hit: bool) -> None:
        """A bird facing ``heading``: tail, body, wing, head, beak and eye.

        It fills the agent's collision disc; a red ring marks a contact.
        """
        pg = self._pg
        forward = heading / np.linalg.norm(heading) * np.array([1.0, -1.0])
        side = np.array([-forward[1], forward[0]])
        r = max(radius, 4.0)

        def pt(f: float, s: float) -> tuple[float, float]:
            p = centre + (f * forward + s * side) * r
            return (float(p[0]), float(p[1]))

        if hit:
            pg.draw.circle(self.canvas, CONTACT, pt(0, 0), r * 1.45, width=max(2, round(r * 0.25)))
        pg.draw.polygon(
            self.canvas, BIRD_WING, [pt(-0.5, 0.0), pt(-1.15, 0.45), pt(-1.15, -0.45)]
        )  # tail
        body = pg.Rect(0, 0, 1.5 * r, 1.5 * r)
        body.center = pt(-0.15, 0.0)
        pg.draw.ellipse(self.canvas, BIRD_BODY, body)
        pg.draw.circle(self.canvas, BIRD_BODY, pt(0.45, 0.0), 0.5 * r)  # head
        pg.draw.polygon(self.canvas, BIRD_BEAK, [pt(0.8, 0.22), pt(1.25, 0.0), pt(0.8, -0.22)])
        pg.draw.polygon(self.canvas, BIRD_WING, [pt(0.1, 0.1), pt(-0.55, 0.15), pt(-0.25, 0.95)])
        pg.draw.circle(self.canvas, (20, 20, 20), pt(0.55, -0.2), max(1.5, 0.12 * r))  # eye

    def close(self) -> None:
        self._pg.display.quit()
        self._pg.font.quit()
