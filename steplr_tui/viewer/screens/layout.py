"""The dashboard's size classes: which layout a terminal of a given size gets."""

from __future__ import annotations

MIN_WIDTH, MIN_HEIGHT = 60, 18
NARROW_WIDTH, WIDE_WIDTH, HUGE_WIDTH = 100, 120, 180


def size_classes(width: int, height: int) -> dict[str, bool]:
    """CSS classes for the screen: too small to use, narrow (the footer drops keys),
    wide and huge (the sidebar widens)."""
    return {
        "-too-small": width < MIN_WIDTH or height < MIN_HEIGHT,
        "-narrow": width < NARROW_WIDTH,
        "-wide": width >= WIDE_WIDTH,
        "-huge": width >= HUGE_WIDTH,
    }


def too_small_text(width: int, height: int) -> str:
    return (
        f"Terminal too small: {width}x{height}.\n"
        f"steplr-tui needs at least {MIN_WIDTH}x{MIN_HEIGHT}; enlarge the window.\n"
        "Training goes on meanwhile; ctrl+q quits."
    )
