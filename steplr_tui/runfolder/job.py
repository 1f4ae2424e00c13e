"""A job: what a run is asked to do (its parameters, where its record goes, a run to
resume), as whoever starts it (the command line, the dashboard) hands it to the run
side. Plain data: the viewer builds one without importing the run side."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from steplr_tui.runfolder.checkpoints import KeepPolicy
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.requests import Inbox


@dataclass(frozen=True)
class Job:
    """What to run: a config, where to keep its record, and optionally a run to resume.

    `folder` is a run folder a launcher already created (a detached run);
    `inbox` carries requests from the dashboard that runs the job in its thread.
    """

    config: TrainConfig
    runs_dir: Path | None = None  # None: no record (tests, throwaway runs)
    resume: Path | None = None
    folder: Path | None = None
    control_offset: int | None = None  # where a launched run starts reading control.jsonl
    inbox: Inbox | None = field(default=None, compare=False)
    keep: KeepPolicy | None = None  # a new run's kept checkpoints (--keep-checkpoints)
