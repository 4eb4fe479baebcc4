"""Keyboard controls of the collision game, shared by ``gymnasium.utils.play`` and ``scripts/play.py``.

Arrow keys or W/A/S/D move; space stays (and so does no key in ``scripts/play.py``, and in
``play`` given ``noop=4``). Key codes are pygame's (``ord("w")``
for letters), the form ``gymnasium.utils.play.play`` accepts.
"""

from __future__ import annotations

from collections.abc import Iterable

from neg_envs.collision_core import DOWN, LEFT, RIGHT, STAY, UP


def keys_to_action(allow_stay: bool = True) -> dict[tuple[int, ...], int]:
    """Sorted key-code tuples to actions, the mapping ``gymnasium.utils.play.play`` expects.

    Without stay (``allow_stay=False``) only the moves are mapped. ``play`` takes its ``noop``
    action when no mapped key is held, 0 (up) unless told otherwise, and refuses an empty key
    combination in the mapping, so pass ``noop=4`` to stay when no key is pressed.

    :param allow_stay: the env has the stay action.
    """
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
    """The action of the held keys: the whole combination if it is mapped, else the first held
    key (in key-code order) that is mapped on its own, else ``default``.

    :param pressed: codes of the keys held now.
    :param mapping: from :func:`keys_to_action`.
    :param default: the action when no held key is mapped.
    """
    held = tuple(sorted(set(pressed)))
    if held in mapping:
        return mapping[held]
    return next((mapping[(key,)] for key in held if (key,) in mapping), default)
