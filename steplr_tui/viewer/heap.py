"""The viewer's heap, kept out of the garbage collector's full collections.

A full collection walks every object that has lived long: Textual's and plotext's
(and torch's, once the warm-up or a run here imports it), and a long run's history.
Following a run, one came every 2 to 3 s and held the event loop about 50 ms (three
times that with the CPU shared), and a key typed meanwhile waited for it. Frozen
(`gc.freeze`), those objects are no longer walked; what is created later still is.

Freezing hides garbage too: the cycles not collected yet, and any frozen object that
dies in a cycle later. So each freeze comes after a collection, and only at the few
points where the heap has just grown (never on a timer): after the first frame,
after torch's warm-up, after a history is read, and after a run ends.

Before the first frame there is no collection at all (`hold_collections`, called by
the command line before it imports Textual): starting up creates almost only objects
that live as long as the app (modules, classes, widgets, a history just read), and
the 150 collections that walked them found a few hundred objects to free, for 30 ms
of a 0.47 s first frame. The first settle collects, freezes, and turns the
collector back on.
"""

from __future__ import annotations

import gc
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # this module is imported before Textual is
    from textual.app import App

# After a frame that needed the heap (the first, a history's): its collection never
# delays that frame, and comes after the keys typed at once.
SETTLE_AFTER_S = 1.0
RUN_END_POLL_S = 0.2


def hold_collections() -> None:
    """No garbage collection until the first settle (after the first frame)."""
    gc.disable()


def settle(app: App) -> None:
    """Collect, then freeze what is left (not under tests: they share one process), and
    collect as usual from now on."""
    if not app.is_headless:
        gc.collect()  # what is garbage now is freed, not frozen with the rest
        gc.freeze()
    gc.enable()


def settle_when_done(app: App, done: threading.Event) -> None:
    """Settle once `done` is set: a run in this process froze the heap while it
    trained and gives it all back as its thread ends (`run/trainer.py`), which may be
    after its last event reached the screen."""
    if done.is_set():
        settle(app)
    else:
        app.set_timer(RUN_END_POLL_S, lambda: settle_when_done(app, done))
