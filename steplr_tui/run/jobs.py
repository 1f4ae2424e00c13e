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
from dataclasses import replace
from pathlib import Path
from typing import Any

from steplr_tui.run.control import ControlReader
from steplr_tui.run.facts import distributed_facts, versions
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
from steplr_tui.runfolder.job import Job
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.reader import (
    RunInfo,
    RunNotFound,
    control_offset,
    read_metrics,
    read_metrics_counted,
    read_run,
)
from steplr_tui.runfolder.resume import resume_problem

StopCheck = Callable[[], "bool | str"]
Emit = Callable[[Event], None]


def meta(config: TrainConfig, world_size: int = 1, backend: str = "") -> dict[str, Any]:
    """config.json's facts besides the parameters (no torch: versions come at run time)."""
    return {
        "kind": "builtin",
        "host": platform.node(),
        "distributed": distributed_facts(world_size, backend, config.batch_size),
    }


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
                versions=versions(),
                **facts,
                distributed=distributed_facts(world, backend, config.batch_size),
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
        offset = control_offset(record.path) if record is not None else 0
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
