"""Keyboard controls of the collision game (pygame key codes), shared by
``gymnasium.utils.play`` and ``scripts/play.py``: arrows or W/A/S/D move, space stays."""

from __future__ import annotations

from collections.abc import Iterable

from neg_envs.collision_core import DOWN, LEFT, RIGHT, STAY, UP


def keys_to_action(allow_stay: bool = True) -> dict[tuple[int, ...], int]:
    """Sorted key-code tuples to actions, the mapping ``gymnasium.utils.play.play`` expects
    (it refuses an empty combination, so pass it ``noop=4`` to stay when no key is held)."""
    import pygame

    moves = {
        UP: (pygame.K_UP, pygame.K_w),
        DOWN: (pygame.K_DOWN, pygame.K_s),
        LEFT: (pygame.K_LEFT, pygame.K_a),
        RIGHT: (pygame.K_RIGHT, pygame.K_d),
    }
    mapping: dict[tuple[int, ...], int] = {
        (key,): action for action, keys in moves.items() for key in keys
    }
    if allow_stay:
        mapping[(pygame.K_SPACE,)] = STAY
    return mapping


def action_for_keys(
    pressed: Iterable[int], mapping: dict[tuple[int, ...], int], default: int
) -> int:
    """The action of the ``pressed`` keys in ``mapping``: the whole combination if mapped, else
    the first held key (in key-code order) mapped on its own, else ``default``."""
    held = tuple(sorted(set(pressed)))
    if held in mapping:
        return mapping[held]
    return next((mapping[(key,)] for key in held if (key,) in mapping), default)
