"""pygame drawing of a collision scene: a bird among discs, contacts marked, a HUD band above.

Okabe-Ito colours (readable with every common colour-vision deficiency), and a shape cue for
each role so nothing relies on hue alone. Headless with ``SDL_VIDEODRIVER=dummy``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Okabe-Ito colours (Okabe & Ito, "Color Universal Design", 2008).
BLACK = (0, 0, 0)
BACKGROUND = (247, 247, 247)
OBSTACLE = (0, 114, 178)  # blue
CONTACT = (213, 94, 0)  # vermillion
BIRD_BODY = (230, 159, 0)  # orange
BIRD_WING = (160, 110, 0)  # darker orange
BIRD_BEAK = (240, 228, 66)  # yellow
HUD_BACKGROUND = (40, 40, 40)
HUD_TEXT = (255, 255, 255)
#: The widest HUD line the renderer plans for (it decides between one line and three).
_HUD_TEMPLATE = ("step 00000", "collisions 000000", "return -000000.00")
_HUD_GAP = "    "
#: Open renderers using each pygame module (pygame's state is global to the process): a module
#: is quit when the last renderer using it closes, not while another env still draws with it.
_users = {"font": 0, "display": 0}
#: The HUD fonts by size, shared by the renderers. ``pygame.quit()`` (``gymnasium.utils.play.play``
#: ends with it) or the font module's quit frees them, and drawing with a freed font crashes the
#: process, so either empties this cache.
_fonts: dict[int, Any] = {}


def _hud_font(pygame: Any, size: int) -> Any:
    """The HUD font of ``size``, made (and pygame's font module started) if need be."""
    if not pygame.font.get_init():
        pygame.font.init()
    if not _fonts:  # the first font since pygame started: empty the cache when it quits
        pygame.register_quit(_fonts.clear)
    if size not in _fonts:
        _fonts[size] = pygame.font.Font(None, size)
    return _fonts[size]


class CollisionRenderer:
    """Draws scenes into a pygame window (``"human"``, held to ``fps``) or returns them as RGB
    arrays (``"rgb_array"``): ``window_size`` wide, the HUD band above the square arena."""

    def __init__(self, window_size: int, render_mode: str, fps: int) -> None:
        import pygame

        self._pg = pygame
        self.size = window_size
        self.render_mode = render_mode
        self.fps = fps
        # Only display (for a window) and font: pygame.init() would also open the audio device.
        self._modules: tuple[str, ...] = (
            ("font", "display") if render_mode == "human" else ("font",)
        )
        for module in self._modules:
            getattr(pygame, module).init()
            _users[module] += 1
        self.font_size = max(14, window_size // 24)
        font = _hud_font(pygame, self.font_size)
        one_line = font.size(_HUD_GAP.join(_HUD_TEMPLATE))[0] + 12 <= window_size
        self.hud_lines = 1 if one_line else len(_HUD_TEMPLATE)
        self.line_height = font.get_linesize()
        self.hud_height = self.hud_lines * self.line_height + 8
        self.canvas = pygame.Surface((window_size, window_size + self.hud_height))
        if render_mode == "human":
            self._open_window()
            self.clock = pygame.time.Clock()
        # Drawing into a subsurface clips to it: a disc at the arena's top edge stays out of the HUD.
        self.arena = self.canvas.subsurface((0, self.hud_height, window_size, window_size))

    def _open_window(self) -> None:
        self._pg.display.set_caption("NegCollision")
        self.window = self._pg.display.set_mode(self.canvas.get_size())

    def _to_px(self, xy: np.ndarray) -> np.ndarray:
        """World (y up) to arena pixels (y down)."""
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
        """Draw one frame (the bird facing ``heading``, the ``hud`` texts on one line or one per
        line); return it as ``(H, W, 3) uint8`` in ``"rgb_array"`` mode."""
        pg = self._pg
        self.canvas.fill(HUD_BACKGROUND)
        self.arena.fill(BACKGROUND)
        radius_px = max(1, round(obstacle_radius * self.size))
        rim = max(2, round(radius_px / 3))
        centres = np.rint(self._to_px(obstacles)).astype(int).tolist()
        for (x, y), touching in zip(centres, contacts.tolist(), strict=True):
            if touching:
                pg.draw.circle(self.arena, BLACK, (x, y), radius_px + rim)
                pg.draw.circle(self.arena, CONTACT, (x, y), radius_px)
            else:
                pg.draw.circle(self.arena, OBSTACLE, (x, y), radius_px)
        self._draw_bird(self._to_px(agent), agent_radius * self.size, heading, bool(contacts.any()))
        lines = [_HUD_GAP.join(hud)] if self.hud_lines == 1 else list(hud)
        font = _hud_font(pg, self.font_size)
        for row, text in enumerate(lines):
            self.canvas.blit(font.render(text, True, HUD_TEXT), (6, 4 + row * self.line_height))
        if self.render_mode == "human":
            if pg.display.get_surface() is not self.window:  # pygame was quit under it
                self._open_window()
            pg.event.pump()
            self.window.blit(self.canvas, (0, 0))
            pg.display.flip()
            self.clock.tick(self.fps)
            return None
        return np.transpose(pg.surfarray.array3d(self.canvas), (1, 0, 2)).copy()

    def _draw_bird(self, centre: np.ndarray, radius: float, heading: np.ndarray, hit: bool) -> None:
        """A bird filling the agent's disc, outlined in black; a ring marks a contact."""
        pg, arena = self._pg, self.arena
        forward = heading / np.linalg.norm(heading) * np.array([1.0, -1.0])
        side = np.array([-forward[1], forward[0]])
        r = max(radius, 4.0)
        edge = max(1, round(r * 0.08))

        def pt(f: float, s: float) -> tuple[float, float]:
            p = centre + (f * forward + s * side) * r
            return (float(p[0]), float(p[1]))

        def outlined(draw: Any, colour: tuple[int, int, int], *shape: Any) -> None:
            draw(arena, colour, *shape)
            draw(arena, BLACK, *shape, width=edge)

        if hit:
            ring = max(3, round(r * 0.3))
            pg.draw.circle(arena, BLACK, pt(0, 0), r * 1.45 + edge, width=ring + 2 * edge)
            pg.draw.circle(arena, CONTACT, pt(0, 0), r * 1.45, width=ring)
        tail = [pt(-0.5, 0.0), pt(-1.15, 0.45), pt(-1.15, -0.45)]
        outlined(pg.draw.polygon, BIRD_WING, tail)
        body = pg.Rect(0, 0, 1.5 * r, 1.5 * r)
        body.center = pt(-0.15, 0.0)
        outlined(pg.draw.ellipse, BIRD_BODY, body)
        outlined(pg.draw.circle, BIRD_BODY, pt(0.45, 0.0), 0.5 * r)  # head
        outlined(pg.draw.polygon, BIRD_BEAK, [pt(0.8, 0.22), pt(1.25, 0.0), pt(0.8, -0.22)])  # beak
        wing = [pt(0.1, 0.1), pt(-0.55, 0.15), pt(-0.25, 0.95)]
        outlined(pg.draw.polygon, BIRD_WING, wing)
        pg.draw.circle(arena, BLACK, pt(0.55, -0.2), max(1.5, 0.12 * r))  # eye

    def close(self) -> None:
        """Release this renderer (again: nothing); pygame's modules stay up for the others."""
        for module in self._modules:
            _users[module] -= 1
            if _users[module] == 0:
                if module == "font":
                    _fonts.clear()
                getattr(self._pg, module).quit()
        self._modules = ()
