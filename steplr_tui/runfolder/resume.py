"""What a run's record says about resuming it: whether it can be, and with which
parameters. Both sides ask: the dashboard before it offers a resume, the run side
when it resumes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from steplr_tui.runfolder.files import CHECKPOINT_FILE, CONFIG_FILE, read_json
from steplr_tui.runfolder.lock import lock_holder
from steplr_tui.runfolder.params import SPECS, FieldError, TrainConfig
from steplr_tui.runfolder.reader import RunInfo, RunNotFound
from steplr_tui.runfolder.status import Status

# Parameters a resumed run takes from its record; the rest (device, threads, data
# folder) belong to the machine it resumes on.
RECORDED = (
    *(name for name in SPECS if name not in ("device", "threads")),
    "scheduler",
    "milestones",
    "warmup",
)

# A branch's config.json names its parent in this section (run/branch.py writes it).
BRANCH_KEY = "branch"


def branch_of(info: RunInfo) -> dict[str, Any] | None:
    """The `branch` section of a run's config.json (parent, epoch, edit), if it is a branch."""
    return _branch_section(info.meta)


def read_branch(path: Path) -> dict[str, Any] | None:
    """`branch_of` the run in `path`, from its config.json alone (a viewer asks as it
    opens a run: reading the whole record read 1,000 lines of metrics for it)."""
    try:
        meta = read_json(path / CONFIG_FILE)
    except (OSError, ValueError):
        return None
    return _branch_section(meta) if isinstance(meta, dict) else None


def _branch_section(meta: dict[str, Any]) -> dict[str, Any] | None:
    section = meta.get(BRANCH_KEY)
    if (
        isinstance(section, dict)
        and isinstance(section.get("parent"), str)
        and isinstance(section.get("epoch"), int)
    ):
        return section
    return None


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
        holder = lock_holder(info.path) or (f"pid {info.pid}" if info.pid else "")
        who = f" ({holder} holds its folder's lock)" if holder else ""
        return (
            f"run {info.name} is still running{who}: one trainer per run folder; "
            f"steplr-tui attach {info.name}"
        )
    if info.config_damaged:
        return f"run {info.name} cannot be resumed: {'; '.join(info.damage)}"
    # A branch stopped in its first epoch starts over from its start.
    if not info.has_checkpoint and branch_of(info) is None:
        if info.epochs_done > 0:
            return (
                f"run {info.name} recorded {info.epochs_done} epochs but its "
                f"{CHECKPOINT_FILE} is missing (deleted or moved): put it back to resume, "
                "or start a new run"
            )
        return (
            f"run {info.name} has no checkpoint (it ended before its first epoch finished); "
            "start a new run"
        )
    return None
