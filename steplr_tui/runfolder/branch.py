"""A branch's plan, read from its parent's record: which checkpoint it starts from and
with which parameters, checked against the parent's folder with no torch (the command
line and the dashboard both ask); and what a branch's own record says about its start.
`steplr_tui.run.branch` makes the folder; the run that opens it starts from
`branch_start`."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steplr_tui.runfolder.checkpoints import kept_checkpoints
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.reader import RunInfo, RunNotFound, read_run
from steplr_tui.runfolder.resume import branch_of, config_from_record
from steplr_tui.runfolder.schedule import ScheduleEdit
from steplr_tui.runfolder.status import Status

START_FILE = "branch-start.pt"


class BranchError(ValueError):
    """A branch that cannot be made; the message says why and what to do instead."""


@dataclass(frozen=True)
class BranchPlan:
    """A checked request: the parent, its checkpoint, and the branch's config."""

    parent: RunInfo
    epoch: int
    edit: ScheduleEdit
    checkpoint: Path
    config: TrainConfig


def plan_branch(
    parent: Path, epoch: int, edit: ScheduleEdit, base: TrainConfig, epochs: int | None = None
) -> BranchPlan:
    """Check a branch of `parent` after `epoch`; raise BranchError with the fix."""
    try:
        info = read_run(parent)
    except RunNotFound as exc:
        raise BranchError(
            f"the parent run {parent} cannot be read ({exc}): it was deleted or is damaged; "
            "branch from another run (steplr-tui --list-runs shows them)"
        ) from exc
    if info.config_damaged:
        raise BranchError(
            f"the parent run {parent} cannot be read ({'; '.join(info.damage)}): it was "
            "deleted or is damaged; branch from another run (steplr-tui --list-runs shows them)"
        )
    if info.kind == "script":
        raise BranchError(
            f"run {info.name} was recorded by your own script: branch it there "
            "(load the checkpoint your script saved, then train with the new schedule)"
        )
    kept = kept_checkpoints(info.path)
    if epoch not in kept:
        raise BranchError(f"run {info.name} {_no_checkpoint(epoch, list(kept))}")
    lines = [m for m in info.metrics if m["epoch"] <= epoch]
    if [m["epoch"] for m in lines] != list(range(1, epoch + 1)):
        raise BranchError(
            f"run {info.name}'s metrics.jsonl lacks some of epochs 1-{epoch} (it is damaged): "
            "branch from another run"
        )
    checkpoint = kept[epoch]
    if not zipfile.is_zipfile(checkpoint):
        raise BranchError(
            f"the checkpoint {checkpoint} is truncated or corrupt: branch from another epoch "
            f"({_epochs_text([e for e in kept if e != epoch])})"
        )
    try:
        config = config_from_record(info, base)
    except RunNotFound as exc:
        raise BranchError(str(exc)) from exc
    if epochs is not None:
        config = config.with_values(epochs=epochs)
    if config.epochs <= epoch:
        raise BranchError(
            f"run {info.name} trains {config.epochs} epochs, so a branch after epoch {epoch} "
            f"has none left: give --epochs more than {epoch}"
        )
    return BranchPlan(info, epoch, edit, checkpoint, config)


def _epochs_text(epochs: list[int]) -> str:
    if not epochs:
        return "it has no other kept checkpoint"
    return "it can be branched after epoch " + ", ".join(str(e) for e in epochs)


def _no_checkpoint(epoch: int, kept: list[int]) -> str:
    if not kept:
        return (
            f"has no kept checkpoint to branch from after epoch {epoch} (it ended before its "
            "first epoch, or was recorded before checkpoints were kept): start a new run, or "
            "resume it"
        )
    listed = ", ".join(str(e) for e in kept)
    return (
        f"has no checkpoint after epoch {epoch}: it can be branched after epoch {listed} "
        "(start runs with --keep-checkpoints all, or 2,5, to keep more)"
    )


def branch_start(info: RunInfo) -> tuple[Path, ScheduleEdit, dict[str, Any]] | None:
    """For a branch that has not trained an epoch of its own yet: its start checkpoint,
    the edit to apply over it, and its `branch` section. None for any other run."""
    section = branch_of(info)
    if section is None or info.has_checkpoint:
        return None
    raw = section.get("edit")
    edit = ScheduleEdit.from_dict(raw if isinstance(raw, dict) else {})
    return info.path / START_FILE, edit, section


def is_unstarted_branch(info: RunInfo) -> bool:
    return branch_start(info) is not None and info.status is not Status.COMPLETED
