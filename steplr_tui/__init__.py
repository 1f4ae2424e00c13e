"""steplr-tui: set, preview, watch and steer PyTorch's StepLR schedule, in the terminal.

`steplr_tui.track(optimizer, scheduler, ...)` gives your own training loop the
dashboard and live edits (see docs/your-script.md). Importing this package imports
neither torch nor Textual; `track` brings torch in when it is first used.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"
__all__ = ["Run", "RunStopped", "TrackingError", "__version__", "join_sweep", "track"]


def track(*args: Any, **kwargs: Any) -> Any:
    """Record and steer your own loop; see `steplr_tui.run.script_run.track`."""
    from steplr_tui.run.script_run import track as _track

    return _track(*args, **kwargs)


def join_sweep(*args: Any, **kwargs: Any) -> Any:
    """This script's trial of a sweep; see `steplr_tui.run.sweep_trial.join_sweep`."""
    from steplr_tui.run.sweep_trial import join_sweep as _join

    return _join(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "Run":
        from steplr_tui.run.script_run import Run

        return Run
    if name in ("RunStopped", "TrackingError"):
        from steplr_tui.run import tracker

        return getattr(tracker, name)
    raise AttributeError(f"module 'steplr_tui' has no attribute {name!r}")
