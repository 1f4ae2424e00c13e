"""How often the dashboard redraws: plain code, no Textual.

While a run trains, each plot repaint is a few kB to the terminal and ~10 ms of the
GIL that a training thread in this process shares (benchmarks/: bytes to the
terminal, UI overhead). So plots repaint at most every PLOT_INTERVAL_S during a
run, and the status line twice a second for a run in this process, four times a
second for a run in another one (nothing here then competes with training).
"""

from __future__ import annotations

import time

TICK_S = 0.25  # the screen's timer
STATUS_LOCAL_S = 0.5
STATUS_ATTACHED_S = TICK_S
PLOT_INTERVAL_S = 1.5
TYPING_S = 0.6
# The log is not among them: a few lines written each tick, so it never trails the
# status line by epochs in a fast run (it did by four, under load).
PLOTS = frozenset({"lr", "loss", "acc", "phases"})


class Cadence:
    """Which of the changed parts may be redrawn now, and which wait for a later tick."""

    def __init__(self) -> None:
        self.last_plots = 0.0
        self.last_status = 0.0

    def held(
        self,
        dirty: set[str],
        active: bool,
        local: bool,
        now: float | None = None,
        typed_at: float = -1e9,
    ) -> set:
        """The parts of `dirty` to keep for a later tick; a 'status' let through counts.
        While the user types (a key in the last TYPING_S), the plots skip their frames:
        the keys are drawn first, and the plots then draw the newest state."""
        now = time.monotonic() if now is None else now
        held: set[str] = set()
        if now - typed_at < TYPING_S:
            held |= dirty & PLOTS
        interval = STATUS_LOCAL_S if active and local else STATUS_ATTACHED_S
        if now - self.last_status >= interval - 0.01:
            self.last_status = now
            dirty.add("status")
        else:
            held |= dirty & {"status"}
        if active and now - self.last_plots < PLOT_INTERVAL_S:
            held |= dirty & PLOTS
        return held

    def drew(self, parts: set[str], now: float | None = None) -> None:
        if parts & PLOTS:
            self.last_plots = time.monotonic() if now is None else now
