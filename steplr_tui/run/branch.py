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
from pathlib import Path
from typing import Any

from steplr_tui.run import jobs
from steplr_tui.run.record import RecordError, RunRecord
from steplr_tui.runfolder import (
    EVENTS_FILE,
    METRICS_FILE,
    EpochEnd,
    Event,
    Notice,
    RunOpened,
    encode_event,
    write_atomic,
)
from steplr_tui.runfolder.branch import (
    START_FILE,
    BranchError,
    BranchPlan,
    branch_start,
    is_unstarted_branch,
    plan_branch,
)
from steplr_tui.runfolder.checkpoints import KeepPolicy
from steplr_tui.runfolder.resume import BRANCH_KEY, branch_of
from steplr_tui.runfolder.schedule import ScheduleEdit

__all__ = [
    "START_FILE",
    "BranchError",
    "BranchPlan",
    "branch_of",
    "branch_start",
    "create_branch",
    "is_unstarted_branch",
    "plan_branch",
]


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
