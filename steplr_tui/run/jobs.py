"""A job: one run of the built-in trainer with its run folder, however it was started
(the dashboard's thread, headless, a detached process, a torchrun rank).

`run_job` creates (or, to resume, reopens) the folder, marks it RUNNING, reads
control requests from it (and from the in-process inbox), records every event,
lets the trainer checkpoint into it, and writes the final status, whatever way
the run ends. Under torch.distributed only rank 0 touches the folder.
"""

from __future__ import annotations

import os
import platform
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from steplr_tui import __version__
from steplr_tui.run.control import ControlReader, Inbox
from steplr_tui.run.record import RecordError, RunRecord, torn_notice
from steplr_tui.runfolder import (
    CHECKPOINT_FILE,
    BatchProgress,
    Event,
    Notice,
    RunEnded,
    RunOpened,
    Status,
)
from steplr_tui.runfolder.checkpoints import KeepPolicy
from steplr_tui.runfolder.lock import lock_holder
from steplr_tui.runfolder.params import SPECS, FieldError, TrainConfig
from steplr_tui.runfolder.reader import (
    RunInfo,
    RunNotFound,
    read_metrics,
    read_metrics_counted,
    read_run,
    read_status,
)

StopCheck = Callable[[], "bool | str"]
Emit = Callable[[Event], None]

# Parameters a resumed run takes from its record; the rest (device, threads, data
# folder) belong to the machine it resumes on.
RECORDED = (
    *(name for name in SPECS if name not in ("device", "threads")),
    "scheduler",
    "milestones",
    "warmup",
)


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
    if not info.has_checkpoint and not _unstarted_branch(info):
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


def meta(config: TrainConfig, world_size: int = 1, backend: str = "") -> dict[str, Any]:
    """config.json's facts besides the parameters (no torch: versions come at run time)."""
    return {"kind": "builtin", "host": platform.node(), **_dist_meta(config, world_size, backend)}


def run_job(
    job: Job,
    emit: Emit,
    should_stop: StopCheck | None = None,
    *,
    data: Any = None,
    dist: Any = None,
    device: str | None = None,
) -> RunEnded:
    """Run `job` to its end; never raises for a failure, which ends as a FAILED record."""
    from steplr_tui.run.checkpoint import CheckpointError, load_checkpoint
    from steplr_tui.run.trainer import train

    config = job.config
    main = dist is None or dist.is_main
    record: RunRecord | None = None
    lost = ""  # what a resume found missing from metrics.jsonl, to say so
    state = None
    branch_edit = None
    opening = ""
    before: dict[str, Any] | None = None  # a resumed run's status, put back if it never starts
    world = dist.world_size if dist is not None else 1
    try:
        if job.resume is not None:
            if main:
                # The lock first: a run that is still live refuses a second trainer here.
                record = RunRecord(job.resume)
                record.lock()
            # This job holds the folder's lock (rank 0 took it above, or this rank's
            # torchrun agent did): a RUNNING status is a writer that is gone.
            info = _as_before_launch(read_run(job.resume, own_lock=True))
            problem = resume_problem(info)
            if problem:
                raise RecordError(problem)
            if main and record is not None:
                if info.has_checkpoint:
                    state = load_checkpoint(info.path / CHECKPOINT_FILE)
                else:  # a branch stopped in its first epoch starts over from its start
                    state, branch_edit, opening = _branch_state(info)
                before = {"status": info.status.value, "reason": info.reason, **_kept(info)}
                _, skipped = read_metrics_counted(info.path)
                restored = record.truncate_metrics(state["epoch"])
                kept = {m["epoch"] for m in read_metrics(info.path)}
                missing = [e for e in range(1, state["epoch"] + 1) if e not in kept]
                if skipped or missing or restored:
                    lost = torn_notice(skipped, restored, missing)
        elif job.folder is not None and main:
            record = RunRecord(job.folder)
            record.lock()
        elif job.runs_dir is not None and main:
            backend = dist.backend if dist is not None else ""
            extra = {"keep_checkpoints": job.keep.as_json()} if job.keep is not None else {}
            record = RunRecord.create(
                job.runs_dir, config.as_dict(), {**meta(config, world, backend), **extra}
            )
            record.lock()
        if record is not None:
            info = read_run(record.path)
            if job.resume is None and state is None and _unstarted_branch(info):
                state, branch_edit, opening = _branch_state(info)
            record.mark_running(control_offset=job.control_offset)
    except (RunNotFound, CheckpointError, RecordError, OSError) as exc:
        if record is not None:
            record.close()  # lets go of the lock, if it was taken
        end = RunEnded(Status.FAILED, str(exc) or type(exc).__name__, 0, 0.0)
        if main:
            emit(end)
        return end

    started = False

    def recording_emit(event: Event) -> None:
        nonlocal started
        if record is not None:
            try:
                if isinstance(event, RunEnded) and before is not None and not started:
                    event = _unchanged(event, before)
                record.write(event)
            except RecordError as exc:
                if not isinstance(event, RunEnded):
                    raise
                emit(Notice(f"could not record the run's end in {record.path}: {exc}", "error"))
        if isinstance(event, BatchProgress):
            started = True
        emit(event)

    def on_ready(facts: dict) -> None:
        if record is not None:
            backend = dist.backend if dist is not None else ""
            record.update_config(
                versions=_versions(), **facts, **_dist_meta(config, world, backend)
            )

    sink = recording_emit if main else None
    if main:
        opened = RunOpened(
            str(record.path) if record is not None else "",
            config.as_dict(),
            first_epoch=(state["epoch"] + 1) if state else 1,
            kind="builtin",
            pid=os.getpid(),
            host=socket.gethostname(),
        )
        recording_emit(opened)
        if opening:
            recording_emit(Notice(opening))
        elif state is not None:
            recording_emit(Notice(f"resuming {Path(job.resume).name} after epoch {state['epoch']}"))
        if lost:
            recording_emit(Notice(lost, level="warning", persistent=True))
    trial = _sweep_trial(record.path, recording_emit) if main and record is not None else None
    control = None
    if main and (record is not None or job.inbox is not None):
        offset = _control_offset(record.path) if record is not None else 0
        control = ControlReader(record.path if record else None, offset, job.inbox)
    end: RunEnded | None = None
    try:
        end = train(
            config,
            sink,
            should_stop=should_stop,
            control=control,
            data=data,
            checkpoint_path=record.path / CHECKPOINT_FILE if record else None,
            resume_state=state,
            dist=dist,
            device=device,
            on_ready=on_ready,
            trial=trial,
            keep=_keep_policy(record.path) if record is not None else None,
            branch_edit=branch_edit,
        )
        return end
    finally:
        if trial is not None:  # its heartbeat stops; told here only if its worker is gone
            try:
                if end is not None:
                    trial.finish(end.status, [], end.message)
                else:
                    trial.close()
            except Exception as exc:  # the study is away: the record is complete anyway
                emit(Notice(f"could not tell the sweep's study: {exc}", level="warning"))
        if record is not None:
            record.close()


def _unstarted_branch(info: RunInfo) -> bool:
    from steplr_tui.run.branch import branch_start

    return branch_start(info) is not None


def _branch_state(info: RunInfo) -> tuple[dict[str, Any], Any, str]:
    """A branch's start: its parent's checkpoint, the edit for that boundary, and the
    notice that says so."""
    from steplr_tui.run.branch import branch_start
    from steplr_tui.run.checkpoint import CheckpointError, load_checkpoint

    start = branch_start(info)
    assert start is not None
    path, edit, section = start
    source = section.get("checkpoint") or str(path)
    try:
        state = load_checkpoint(path, fix="branch from another epoch")
    except CheckpointError as exc:
        raise CheckpointError(f"the branch's checkpoint (from {source}): {exc}") from exc
    if state["epoch"] != section["epoch"]:
        raise CheckpointError(
            f"{source} holds the state after epoch {state['epoch']}, not {section['epoch']}: "
            "branch from another epoch"
        )
    what = f" with {edit.describe()}" if edit else ""
    return state, edit, f"branching from {section['parent']} after epoch {state['epoch']}{what}"


def _keep_policy(folder: Path) -> KeepPolicy:
    try:
        return KeepPolicy.from_json(read_run(folder).meta.get("keep_checkpoints"))
    except RunNotFound:
        return KeepPolicy()


def _sweep_trial(folder: Path, emit: Emit) -> Any:
    """The sweep trial this run is (its config.json says so), joined to its study; None
    for a run of no sweep, or one whose trial is over (a resume after the sweep told)."""
    try:
        meta = read_run(folder).meta
    except RunNotFound:
        return None
    sweep = meta.get("sweep")
    if not isinstance(sweep, dict):
        return None
    from steplr_tui.study.engine import StudyError, TrialLink

    try:
        return TrialLink.from_dict(sweep).open()
    except StudyError as exc:
        emit(Notice(f"this run trains on without its sweep: {exc}", level="warning"))
        return None


def _as_before_launch(info: RunInfo) -> RunInfo:
    """A run whose RUNNING status is this very process (or its torchrun agent), which
    its launcher wrote: read it with the status it had before the launch."""
    if info.status not in (Status.RUNNING, Status.INTERRUPTED) or info.pid not in (
        os.getpid(),
        os.getppid(),
    ):
        return info
    previous = info.extra.get("previous")
    previous = previous if isinstance(previous, dict) else {}
    try:
        status = Status(previous.get("status", "STOPPED"))
    except ValueError:
        status = Status.STOPPED
    return replace(info, status=status, reason=str(previous.get("reason", "")))


def _unchanged(end: RunEnded, before: dict[str, Any]) -> RunEnded:
    """A resume that failed before its first batch leaves the run as it was."""
    status = Status(before["status"]) if before["status"] != "INTERRUPTED" else Status.STOPPED
    return RunEnded(
        status,
        f"resume failed, the run is unchanged and can be resumed again: {end.message}",
        end.epochs_done,
        end.elapsed,
    )


def _kept(info: RunInfo) -> dict[str, Any]:
    return {k: v for k, v in info.extra.items() if k in ("finished",)}


def _control_offset(path: Path) -> int:
    _status, _reason, data = read_status(path)
    offset = data.get("control_offset", 0)
    return offset if isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0 else 0


def _versions() -> dict[str, str]:
    import torch

    return {
        "steplr_tui": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def _dist_meta(config: TrainConfig, world: int, backend: str) -> dict[str, Any]:
    return {
        "distributed": {
            "world_size": world,
            "backend": backend,
            "batch_size_per_rank": config.batch_size,
            "global_batch_size": config.batch_size * world,
        }
    }
