"""A job: one training run with its run record, as both the TUI and headless mode start it.

`run_job` creates (or, to resume, reopens) the run's folder, writes each epoch to
`metrics.jsonl` as the trainer reports it, lets the trainer checkpoint into the
same folder, and writes the final status, whatever way the run ends.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steplr_tui import __version__
from steplr_tui.config import SPECS, FieldError, TrainConfig
from steplr_tui.events import EpochEnd, Event, Notice, RecordOpened, RunEnded, RunStarted
from steplr_tui.runs import (
    CHECKPOINT_FILE,
    COMPLETED,
    STATUS_OF_END,
    RunInfo,
    RunNotFound,
    RunRecord,
    read_run,
    recorded_edit,
)
from steplr_tui.steering import EditBox

StopCheck = Callable[[], "bool | str"]
Emit = Callable[[Event], None]

# Parameters a resumed run takes from its record; the rest (device, data folder)
# belong to the machine it resumes on.
RECORDED = tuple(name for name in SPECS if name not in ("device",))


@dataclass(frozen=True)
class Job:
    """What to run: a config, where to keep its record, and optionally a run to resume."""

    config: TrainConfig
    runs_dir: Path | None = None  # None: no record (tests, throwaway runs)
    resume: Path | None = None
    # Where the dashboard leaves live schedule edits; None: the schedule is fixed.
    edits: EditBox | None = field(default=None, compare=False)


def config_from_record(info: RunInfo, base: TrainConfig) -> TrainConfig:
    """The recorded run's parameters over `base` (which brings device and data folder)."""
    values: dict[str, Any] = {name: info.config[name] for name in RECORDED if name in info.config}
    resolved = info.meta.get("dataset_used")
    # Resume on the data the run started on, not whatever 'auto' would find today.
    if values.get("dataset") == "auto" and resolved in ("mnist", "sample"):
        values["dataset"] = resolved
    try:
        return base.with_values(**values).validated()
    except (FieldError, TypeError) as exc:
        raise RunNotFound(f"{info.path} has a config.json that is not valid ({exc})") from exc


def resume_problem(info: RunInfo) -> str | None:
    """Why this run cannot be resumed, or None if it can."""
    if info.status == COMPLETED:
        return f"run {info.name} already completed all {info.config.get('epochs')} epochs"
    if info.status == "RUNNING":
        return f"run {info.name} is still running (pid {info.extra.get('pid')})"
    if not info.has_checkpoint:
        return (
            f"run {info.name} has no checkpoint (it ended before its first epoch finished); "
            "start a new run"
        )
    return None


def run_job(
    job: Job,
    should_stop: StopCheck,
    emit: Emit,
    *,
    replay: bool = False,
    data: Any = None,
) -> RunEnded:
    """Run `job` to its end; never raises for a failure, which ends as a FAILED record."""
    from steplr_tui.checkpoint import CheckpointError, load_checkpoint
    from steplr_tui.trainer import RunFailure, train

    config = job.config
    record: RunRecord | None = None
    state = None
    try:
        if job.resume is not None:
            info = read_run(job.resume)
            problem = resume_problem(info)
            if problem:
                raise RunFailure(problem)
            state = load_checkpoint(info.path / CHECKPOINT_FILE)
            record = RunRecord(info.path)
            record.truncate_metrics(state["epoch"])
            record.mark_running()
            emit(Notice(f"resuming {info.name} after epoch {state['epoch']}", level="info"))
            emit(RecordOpened(str(record.path)))
            if replay:
                for m in info.metrics:
                    if m["epoch"] <= state["epoch"]:
                        emit(_epoch_event(m))
        elif job.runs_dir is not None:
            record = RunRecord.create(job.runs_dir, config.as_dict(), _meta())
            emit(RecordOpened(str(record.path)))
    except (RunNotFound, RunFailure, CheckpointError, OSError) as exc:
        end = RunEnded("failed", _message(exc), 0, 0.0)
        emit(end)
        return end

    def recording_emit(event: Event) -> None:
        if record is not None:
            _record(record, event, emit)
        emit(event)

    return train(
        config,
        should_stop,
        recording_emit,
        data=data,
        checkpoint_path=record.path / CHECKPOINT_FILE if record else None,
        resume_state=state,
        take_edit=job.edits.take if job.edits is not None else None,
    )


def _record(record: RunRecord, event: Event, emit: Emit) -> None:
    from steplr_tui.trainer import RunFailure

    try:
        if isinstance(event, EpochEnd):
            line = {
                "epoch": event.epoch,
                "lr": event.lr,
                "train_loss": event.train_loss,
                "test_acc": event.test_acc,
                "seconds": event.seconds,
            }
            if event.edit:
                # In the epoch's own line, so the edit and its epoch reach the disk together.
                line["edit"] = event.edit.as_dict()
            record.append_epoch(line)
        elif isinstance(event, RunStarted):
            record.note_started(event)
        elif isinstance(event, RunEnded):
            record.finish(STATUS_OF_END[event.status], event.message)
    except OSError as exc:
        if isinstance(event, RunEnded):
            emit(Notice(f"could not write the final status to {record.path}: {exc}", "error"))
            return
        # Training on without a record would lose what the record promises to keep.
        raise RunFailure(
            f"cannot write the run record in {record.path} ({exc}); "
            "free some disk space or choose another --runs-dir"
        ) from exc


def _epoch_event(m: dict[str, Any]) -> EpochEnd:
    return EpochEnd(
        epoch=int(m["epoch"]),
        lr=float(m.get("lr", 0.0)),
        train_loss=float(m.get("train_loss", float("nan"))),
        test_acc=float(m.get("test_acc", float("nan"))),
        seconds=float(m.get("seconds", 0.0)),
        elapsed=0.0,
        edit=recorded_edit(m),
    )


def _meta() -> dict[str, Any]:
    import torch

    return {
        "versions": {
            "steplr_tui": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "host": platform.node(),
    }


def _message(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
