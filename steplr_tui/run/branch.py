"""Branches: a new run from a recorded run's state after an epoch, with a schedule edit
applied at that boundary exactly as a live edit would be.

`create_branch` checks the request against the parent's folder (no torch: the
command line and the dashboard call it), then creates an ordinary run folder:
config.json names the parent and the epoch (`branch`), `branch-start.pt` is the
parent's kept checkpoint (a hard link: no copy, and the branch no longer needs
the parent once created), and metrics.jsonl starts with the parent's epochs up
to the branch point, the last of them carrying the branch's edit as a live edit
is recorded. The run that opens the folder (`jobs.run_job`, the path every new
run and resume takes) then starts from `branch_start`: the checkpoint and the edit.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steplr_tui.run import jobs
from steplr_tui.run.jobs import config_from_record
from steplr_tui.run.record import RecordError, RunRecord
from steplr_tui.runfolder import (
    EVENTS_FILE,
    METRICS_FILE,
    EpochEnd,
    Event,
    Notice,
    RunOpened,
    Status,
    encode_event,
    write_atomic,
)
from steplr_tui.runfolder.checkpoints import KeepPolicy, kept_checkpoints
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.reader import RunInfo, RunNotFound, read_run
from steplr_tui.runfolder.schedule import ScheduleEdit

BRANCH_KEY = "branch"
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


def branch_of(info: RunInfo) -> dict[str, Any] | None:
    """The `branch` section of a run's config.json (parent, epoch, edit), if it is a branch."""
    section = info.meta.get(BRANCH_KEY)
    if (
        isinstance(section, dict)
        and isinstance(section.get("parent"), str)
        and isinstance(section.get("epoch"), int)
    ):
        return section
    return None


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


def create_branch(
    plan: BranchPlan,
    runs_dir: Path,
    keep: KeepPolicy | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """The branch's run folder, ready for a run to open (a launcher or `run_job`); `meta`
    is added to its config.json (a sweep's trial names its study there)."""
    parent = plan.parent
    section = {
        "parent": parent.name,
        "parent_path": str(parent.path.resolve()),
        "epoch": plan.epoch,
        "edit": plan.edit.as_dict(),
        "checkpoint": str(plan.checkpoint.resolve()),
    }
    extra: dict[str, Any] = {**(meta or {}), BRANCH_KEY: section}
    if keep is not None:
        extra["keep_checkpoints"] = keep.as_json()
    label = "-".join(
        [f"branch-e{plan.epoch}"] + [f"{_short(k)}{v:g}" for k, v in plan.edit.as_dict().items()]
    )
    config = plan.config.as_dict()
    record = RunRecord.create(runs_dir, config, {**jobs.meta(plan.config), **extra}, label)
    try:
        _link_or_copy(plan.checkpoint, record.path / START_FILE)
        prefix = [dict(m) for m in parent.metrics if m["epoch"] <= plan.epoch]
        last = prefix[-1]
        recorded = ScheduleEdit.from_dict(last.get("edit") or {})
        merged = recorded.merged(plan.edit)
        if merged:
            last["edit"] = merged.as_dict()
        data = "".join(json.dumps(m, sort_keys=True) + "\n" for m in prefix).encode()
        write_atomic(record.path / METRICS_FILE, data)
        write_atomic(record.path / EVENTS_FILE, _prefix_events(plan, record.path, prefix))
    except OSError as exc:
        shutil.rmtree(record.path, ignore_errors=True)
        raise RecordError(
            f"cannot create the branch in {runs_dir} ({exc.strerror or exc}): "
            "free some disk space or choose another --runs-dir"
        ) from exc
    return record.path


STANDARD = frozenset({"epoch", "lr", "train_loss", "test_acc", "seconds", "edit", "steps"})


def _prefix_events(plan: BranchPlan, path: Path, prefix: list[dict[str, Any]]) -> bytes:
    """The parent's epochs up to the branch point as the branch's own first session of
    events (epochs only, no batch losses), so every viewer replays the branch as the
    record of one run: its lrs, edits and phases from epoch 1, then the branch's session."""
    parent = plan.parent
    batch, n_train = parent.config.get("batch_size"), parent.meta.get("n_train")
    ints = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (batch, n_train))
    steps = math.ceil(n_train / batch) if ints else 0
    events: list[Event] = [RunOpened(str(path), plan.config.as_dict(), first_epoch=1)]
    elapsed = 0.0
    for line in prefix:
        seconds = _float(line.get("seconds"), 0.0)
        elapsed += seconds
        raw = line.get("edit")
        edit = ScheduleEdit.from_dict(raw) if isinstance(raw, dict) else None
        events.append(
            EpochEnd(
                epoch=line["epoch"],
                lr=_float(line.get("lr"), math.nan),
                train_loss=_float(line.get("train_loss"), math.nan),
                test_acc=_float(line.get("test_acc"), math.nan),
                seconds=seconds,
                elapsed=elapsed,
                edit=edit or None,
                metrics={
                    k: float(v)
                    for k, v in line.items()
                    if k not in STANDARD and isinstance(v, (int, float)) and not isinstance(v, bool)
                },
                steps=steps,
            )
        )
    what = f" with {plan.edit.describe()}" if plan.edit else ""
    events.append(
        Notice(f"epochs 1-{plan.epoch} are {parent.name}'s; the branch{what} starts after them")
    )
    now = time.time()
    return "".join(
        encode_event(event, seq, now) + "\n" for seq, event in enumerate(events, 1)
    ).encode()


def _float(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return float(value)


def _short(name: str) -> str:
    return {"step_size": "s", "gamma": "g"}.get(name, name)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


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
