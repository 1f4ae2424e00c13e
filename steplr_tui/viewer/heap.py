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
"""

from __future__ import annotations

import gc
import threading

from textual.app import App

# After a frame that needed the heap (the first, a history's): its collection never
# delays that frame, and comes after the keys typed at once.
SETTLE_AFTER_S = 1.0
RUN_END_POLL_S = 0.2


def settle(app: App) -> None:
    """Collect, then freeze what is left (not under tests: they share one process)."""
    if app.is_headless:
        return
    gc.collect()  # what is garbage now is freed, not frozen with the rest
    gc.freeze()


def settle_when_done(app: App, done: threading.Event) -> None:
    """Settle once `done` is set: a run in this process froze the heap while it
    trained and gives it all back as its thread ends (`run/trainer.py`), which may be
    after its last event reached the screen."""
    if done.is_set():
        settle(app)
    else:
        app.set_timer(RUN_END_POLL_S, lambda: settle_when_done(app, done))
