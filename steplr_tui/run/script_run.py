"""`steplr_tui.track`: a user's own loop recorded and steered, the public API.

`track(optimizer, scheduler, ...)` opens a run folder (on rank 0 under
torch.distributed), and returns a `Run`, a context manager around the `Tracker`
that the built-in trainer uses too: `log_batch`, `should_stop`, `end_epoch`, and
SIGTERM or SIGHUP turned into a clean stop. The block records COMPLETED, STOPPED
or FAILED however it ends.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from steplr_tui.run.control import ControlReader, Steering
from steplr_tui.run.distributed import DistContext
from steplr_tui.run.facts import distributed_facts, versions
from steplr_tui.run.tracker import (
    PROGRESS_INTERVAL_S,
    RunStopped,
    Tracker,
    TrackingError,
)
from steplr_tui.runfolder import Event, RunOpened, RunStarted, Status
from steplr_tui.runfolder.reader import control_offset
from steplr_tui.runfolder.schedule import ScheduleEdit
from steplr_tui.study.engine import TrialLink

SUPPORTED = "torch.optim.lr_scheduler.StepLR"


class Run:
    """A tracked run of a user's own loop; see `track`. Use it as a context manager."""

    def __init__(self, tracker: Tracker, record: Any, path: Path | None) -> None:
        self._tracker = tracker
        self._record = record
        self.path = path  # the run folder (None on ranks other than 0)
        self._signal = threading.Event()
        self._signal_name = ""
        self._previous: dict[int, Any] = {}
        self._closed = False
        self._trial: Any = None  # a sweep's trial, told how the run ended
        self._ended: tuple[Status, str] | None = None

    @property
    def rank(self) -> int:
        return self._tracker.dist.rank if self._tracker.dist else 0

    @property
    def epoch(self) -> int:
        """The epoch in progress (1-based)."""
        return self._tracker.epoch

    @property
    def stopped(self) -> bool:
        return self._tracker.stop_reason is not None

    def log_batch(self, loss: Any) -> None:
        """Record a batch's loss (a float or a one-element tensor; no GPU sync per batch)."""
        self._tracker.log_batch(loss)

    def should_stop(self) -> bool:
        """True when the run was told to stop (ctrl+s in a dashboard, `steplr-tui stop`,
        SIGTERM); then leave the batch loop. Call it at the same points on every rank."""
        return self._tracker.should_stop()

    def end_epoch(self, **metrics: Any) -> ScheduleEdit | None:
        """Record the epoch (with these metrics) after scheduler.step(), and apply the live
        edits queued for this boundary; returns the edit applied, if any. After a stop,
        it ends the `with` block instead (raises RunStopped, which the block swallows)."""
        event = self._tracker.end_epoch(metrics)
        return event.edit

    def __enter__(self) -> Run:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
                if sig is not None:
                    self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._signal_name = signal.Signals(signum).name
        self._signal.set()

    def _external(self) -> bool | str:
        return f"stopped by {self._signal_name}" if self._signal.is_set() else False

    def __exit__(self, exc_type: Any, exc: BaseException | None, _tb: Any) -> bool:
        swallow = self._exit(exc_type, exc)
        trial = self._trial
        if trial is not None and self._ended is not None:
            status, reason = self._ended
            metrics = [self._tracker.last_metrics] if self._tracker.last_metrics else []
            try:
                trial.finish(status, metrics, reason)
            except Exception as exc2:  # the study is gone: the record is complete anyway
                print(f"steplr-tui: could not tell the sweep's study: {exc2}", file=sys.stderr)
            from steplr_tui.run.sweep_trial import OptunaTrial

            if status is Status.PRUNED and isinstance(trial, OptunaTrial):
                _raise_pruned(reason)  # Optuna's optimize() records it PRUNED
        return swallow

    def _exit(self, exc_type: Any, exc: BaseException | None) -> bool:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        tracker = self._tracker
        if exc_type is None:
            if tracker.stop_reason is not None:
                self._close(Status.STOPPED, tracker.stop_reason)
            else:
                self._close(Status.COMPLETED, "")
            return False
        if issubclass(exc_type, RunStopped):
            self._close(Status.STOPPED, tracker.stop_reason or "stopped")
            return True
        if issubclass(exc_type, KeyboardInterrupt):
            self._close(Status.STOPPED, "stopped by Ctrl+C")
            return False
        text = str(exc).splitlines()[0] if exc is not None and str(exc) else ""
        self._close(Status.FAILED, f"{exc_type.__name__}: {text}" if text else exc_type.__name__)
        return False

    def _close(self, status: Status, message: str) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            end = self._tracker.finish(status, message)
            self._ended = (end.status, end.message)
        finally:
            if self._record is not None:
                self._record.close()


def track(
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    *,
    config: Mapping[str, Any] | None = None,
    runs_dir: str | os.PathLike[str] | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    batch_size: int | None = None,
    resume: str | os.PathLike[str] | None = None,
    progress_interval: float = PROGRESS_INTERVAL_S,
    trial: Any = None,
) -> Run:
    """Watch and steer your own loop's StepLR from steplr-tui; see the README.

    Writes a normal run folder under `runs_dir` (else $STEPLR_TUI_RUNS, else the
    per-user default), which `steplr-tui attach`, `stop`, `edit`, `--list-runs`
    and the runs table read. `config` is recorded with the run (JSON values);
    `epochs`, `steps_per_epoch` and `batch_size` (or the same keys in `config`)
    let the dashboard plan the schedule and place batches from the first epoch.
    `resume` continues a run folder your script recorded before: restore your
    scheduler's state first, and epochs after its `last_epoch` are recorded again.
    Under torch.distributed, call it on every rank: rank 0 records, the others don't.
    `trial` makes the run a trial of a sweep: what `steplr_tui.join_sweep()` returns, or
    an `optuna.trial.Trial` of your own study (each epoch's test_acc is reported to its
    pruner, which may end the run PRUNED).
    """
    from torch.optim.lr_scheduler import StepLR

    if not isinstance(scheduler, StepLR):
        raise TrackingError(
            f"steplr_tui.track() steers {SUPPORTED} only (got {type(scheduler).__name__}): "
            "use StepLR(optimizer, step_size, gamma), or train without live edits"
        )
    if getattr(scheduler, "optimizer", None) is not optimizer:
        raise TrackingError(
            "the scheduler steers another optimizer than the one given: pass the optimizer "
            "the StepLR was built with"
        )
    user = dict(config or {})
    epochs = epochs if epochs is not None else _int_or_none(user.get("epochs"))
    batch = batch_size if batch_size is not None else _int_or_none(user.get("batch_size"))
    steps = (
        steps_per_epoch
        if steps_per_epoch is not None
        else _int_or_none(user.get("steps_per_epoch"))
    )
    link = None
    if trial is not None:
        from steplr_tui.run.sweep_trial import as_link, check_params

        check_params(
            trial, float(scheduler.base_lrs[0]), int(scheduler.step_size), float(scheduler.gamma)
        )
        link = as_link(trial)
    dist = DistContext.current()
    recorded = {
        **user,
        "optimizer": type(optimizer).__name__.lower(),
        "lr": float(scheduler.base_lrs[0]),
        "step_size": int(scheduler.step_size),
        "gamma": float(scheduler.gamma),
        "epochs": epochs,
        "batch_size": batch,
    }
    record = steering = emit = None
    path = None
    if dist is None or dist.is_main:
        sweep = link.as_dict() if isinstance(link, TrialLink) else None
        record, steering, emit, path = _open_record(
            recorded, runs_dir, resume, scheduler, dist, epochs, sweep
        )
        if link is not None:
            link.where(path)
    tracker = Tracker(
        optimizer,
        scheduler,
        emit=emit,
        steering=steering,
        dist=dist,
        epochs=epochs,
        steps_per_epoch=steps or 0,
        batch_size=batch or 0,
        progress_interval=progress_interval,
        trial=link if dist is None or dist.is_main else None,
    )
    run = Run(tracker, record, path)
    run._trial = link if dist is None or dist.is_main else None
    tracker.external_stop = run._external
    device = _device_of(optimizer)
    tracker.send(
        RunStarted(
            device=device,
            dataset=str(user.get("dataset", "")),
            data_dir="",
            n_train=_int_or_none(user.get("n_train")) or 0,
            n_test=_int_or_none(user.get("n_test")) or 0,
            epochs=epochs or 0,
            steps_per_epoch=steps or 0,
            batch_size=batch or 0,
            first_epoch=tracker.first_epoch,
            world_size=dist.world_size if dist else 1,
            backend=dist.backend if dist else "",
            global_batch=(batch or 0) * (dist.world_size if dist else 1),
            model=str(user.get("model", "")),
        )
    )
    return run


def _raise_pruned(reason: str) -> None:
    """An Optuna trial of the user's own study: its objective expects TrialPruned."""
    import optuna

    raise optuna.TrialPruned(reason)


def _open_record(recorded, runs_dir, resume, scheduler, dist, epochs, sweep=None):
    import json

    from steplr_tui.run.record import RecordError, RunRecord
    from steplr_tui.runfolder.paths import resolve_runs_dir
    from steplr_tui.runfolder.reader import RunNotFound, find_run

    try:
        json.dumps(recorded)
    except (TypeError, ValueError) as exc:
        raise TrackingError(f"config must hold JSON values (numbers, text, lists): {exc}") from exc
    folder = resolve_runs_dir(str(runs_dir) if runs_dir is not None else None)
    meta = {
        "kind": "script",
        "script": os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else "",
        "host": socket.gethostname(),
        "versions": versions(),
        "distributed": distributed_facts(
            dist.world_size if dist else 1, dist.backend if dist else "", recorded.get("batch_size")
        ),
    }
    if sweep is not None:
        meta["sweep"] = sweep
    try:
        if resume is not None:
            try:
                path = find_run(str(resume), folder)
            except RunNotFound as exc:
                raise TrackingError(f"resume={str(resume)!r}: {exc}") from exc
            record = RunRecord(path)
            record.truncate_metrics(scheduler.last_epoch)
            record.update_config(**{k: v for k, v in meta.items() if k != "kind"})
        else:
            record = RunRecord.create(folder, recorded, meta)
        record.mark_running()
    except RecordError as exc:
        raise TrackingError(str(exc)) from exc
    steering_ref: list[Steering] = []

    def emit(event: Event) -> None:
        record.write(event)

    status_offset = control_offset(record.path)
    steering = Steering(
        ControlReader(record.path, status_offset),
        emit,
        epoch=scheduler.last_epoch + 1,
        epochs=epochs,
    )
    steering_ref.append(steering)
    emit(
        RunOpened(
            str(record.path),
            recorded,
            first_epoch=scheduler.last_epoch + 1,
            kind="script",
            pid=os.getpid(),
            host=socket.gethostname(),
        )
    )
    return record, steering, emit, record.path


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _device_of(optimizer: torch.optim.Optimizer) -> str:
    for group in optimizer.param_groups:
        for p in group["params"]:
            device = p.device
            if device.type == "cuda":
                index = device.index if device.index is not None else torch.cuda.current_device()
                return f"cuda:{index} {torch.cuda.get_device_name(index)}"
            return str(device)
    return "unknown device"
