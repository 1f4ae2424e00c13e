"""What a run's record says about resuming it: whether it can be, and with which
parameters. Both sides ask: the dashboard before it offers a resume, the run side
when it resumes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from steplr_tui.runfolder.params import SPECS, FieldError, TrainConfig
from steplr_tui.runfolder.reader import RunInfo, RunNotFound
from steplr_tui.runfolder.status import Status

# Parameters a resumed run takes from its record; the rest (device, threads, data
# folder) belong to the machine it resumes on.
RECORDED = tuple(name for name in SPECS if name not in ("device", "threads"))


def config_from_record(info: RunInfo, base: TrainConfig) -> TrainConfig:
    """The recorded run's parameters over `base` (which brings device, threads and data
    folder). With no data folder given (flag or STEPLR_TUI_DATA), the recorded one."""
    if info.kind == "script":
        raise RunNotFound(
            f"run {info.name} was recorded by your own script ({info.meta.get('script', '?')}): "
            "resume it from that script (steplr_tui.track(..., resume=...))"
        )
    values: dict[str, Any] = {name: info.config[name] for name in RECORDED if name in info.config}
    resolved = info.meta.get("dataset_used")
    # Resume on the data the run started on, not whatever 'auto' would find today.
    if values.get("dataset") == "auto" and resolved in ("mnist", "sample"):
        values["dataset"] = resolved
    recorded_dir = info.meta.get("data_dir_used") or info.config.get("data_dir")
    if (
        base.data_dir is None
        and not os.environ.get("STEPLR_TUI_DATA")
        and isinstance(recorded_dir, str)
        and values.get("dataset") != "sample"
        and Path(recorded_dir).is_dir()
    ):
        values["data_dir"] = recorded_dir
    try:
        return base.with_values(**values).validated()
    except (FieldError, TypeError) as exc:
        raise RunNotFound(f"{info.path} has a config.json that is not valid ({exc})") from exc


def resume_problem(info: RunInfo) -> str | None:
    """Why this run cannot be resumed, or None if it can."""
    if info.kind == "script":
        return f"run {info.name} was recorded by your own script: resume it from that script"
    if info.status is Status.COMPLETED:
        return f"run {info.name} already completed all {info.config.get('epochs')} epochs"
    if info.status is Status.RUNNING:
        return f"run {info.name} is still running (pid {info.pid}): steplr-tui attach {info.name}"
    if not info.has_checkpoint:
        return (
            f"run {info.name} has no checkpoint (it ended before its first epoch finished); "
            "start a new run"
        )
    return None
