"""The one channel from the UI into a running trainer besides Stop: schedule edits.

The dashboard proposes an edit as soon as the user types one; the trainer takes
whatever is pending at its next epoch boundary. A lock is enough: one writer
(the UI thread), one reader (the worker), and a take happens once per epoch.
"""

from __future__ import annotations

import threading

from steplr_tui.schedule import ScheduleEdit


class EditBox:
    """Holds at most one pending schedule edit for a run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: ScheduleEdit | None = None

    def propose(self, edit: ScheduleEdit | None) -> None:
        """Replace what is pending; None or an empty edit withdraws it."""
        with self._lock:
            self._pending = edit if edit else None

    def take(self) -> ScheduleEdit | None:
        """The pending edit, which is then no longer pending (called by the trainer)."""
        with self._lock:
            edit, self._pending = self._pending, None
            return edit

    def peek(self) -> ScheduleEdit | None:
        with self._lock:
            return self._pending
