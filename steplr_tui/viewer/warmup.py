"""The run side's import, done once and by one thread at a time.

The dashboard imports torch in the background after its first frame (so a run
started a few seconds later begins at once), and a run started sooner imports it
in its worker. Two threads importing the same modules at once can deadlock
Python's per-module import locks (each holds one the other needs), so both go
through `import_run_side`.
"""

from __future__ import annotations

import threading

_LOCK = threading.Lock()


def import_run_side() -> None:
    """Import the trainer and what it needs (torch); at once if already imported."""
    with _LOCK:
        import steplr_tui.run.jobs
        import steplr_tui.run.trainer  # noqa: F401


def describe_auto_device() -> str:
    """The device 'auto' picks, in words (imports torch)."""
    import_run_side()
    from steplr_tui.run.trainer import describe_device, resolve_device

    return describe_device(resolve_device("auto"))
