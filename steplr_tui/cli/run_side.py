"""The run side, as the command line hands it to the viewer (a `Starter`): a job trained
in the app's thread worker, a detached run, and torch imported ahead of a run.

The dashboard imports torch in the background after its first frame (so a run
started a few seconds later begins at once), and a run started sooner imports it
in its worker. Two threads importing the same modules at once can deadlock
Python's per-module import locks (each holds one the other needs), so both go
through `import_run_side`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from steplr_tui.runfolder.branch import BranchPlan
from steplr_tui.runfolder.job import Job
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.viewer.starter import Starter, StartError

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


def real_train(job: Job, emit: Callable, should_stop: Callable) -> Any:
    """The real trainer, imported in the worker thread so torch never loads on the UI thread."""
    import_run_side()  # never at the same time as the warm-up thread
    from steplr_tui.run.jobs import run_job

    return run_job(job, emit, should_stop)


def detach(config: TrainConfig, runs_dir: Path, resume: Path | None = None) -> Path:
    """A run in a background process of its own (ctrl+n); its folder."""
    from steplr_tui.run.launch import launch
    from steplr_tui.run.record import RecordError

    try:
        return launch(config, runs_dir, resume=resume, reap=True).path
    except RecordError as exc:
        raise StartError(str(exc)) from exc


def branch(plan: BranchPlan, runs_dir: Path) -> Path:
    """A checked branch's folder, started detached (b in the runs table, ctrl+b)."""
    from steplr_tui.run.branch import create_branch
    from steplr_tui.run.launch import launch
    from steplr_tui.run.record import RecordError

    try:
        folder = create_branch(plan, runs_dir)
        launch(plan.config, runs_dir, folder=folder, reap=True)
    except (RecordError, OSError) as exc:
        raise StartError(str(exc)) from exc
    return folder


def starter() -> Starter:
    """What the viewer starts runs with."""
    return Starter(train=real_train, detach=detach, warm_up=describe_auto_device, branch=branch)
