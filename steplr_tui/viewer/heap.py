"""The viewer's heap, kept out of the garbage collector's full collections.

A full collection walks every object that has lived long: Textual's and plotext's
(and torch's, once the warm-up or a run here imports it), and a long run's history.
Following a run, one came every 2 to 3 s and held the event loop about 50 ms (three
times that with the CPU shared), and a key typed meanwhile waited for it. Frozen
(`gc.freeze`), those objects are no longer walked; what is created later still is.
Objects are still freed when nothing refers to them; only a reference cycle among
frozen objects outlives its use, so the heap is frozen at a few points where it has
just grown, never on a timer.
"""

from __future__ import annotations

import gc

from textual.app import App


def settle(app: App) -> None:
    """Freeze what the heap holds now (not under tests: they share one process)."""
    if not app.is_headless:
        gc.freeze()
