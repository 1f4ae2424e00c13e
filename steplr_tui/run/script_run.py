"""`steplr_tui.track`: a user's own loop recorded and steered, the public API.

`track(optimizer, scheduler, ...)` opens a run folder (on rank 0 under
torch.distributed), and returns a `Run` around the `Tracker` that the built-in
trainer uses too: `log_batch`, `should_stop`, `end_epoch`, and SIGTERM or SIGHUP
turned into a clean stop. As a context manager, the block records COMPLETED,
STOPPED or FAILED however it ends; without `with`, `run.finish()` does, and if the
script never calls it, the interpreter's exit does (COMPLETED, or FAILED with the
first line of an uncaught exception), as `wandb.init`/`finish` do.
"""

from __future__ import annotations

import atexit
import contextlib
import math
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
from steplr_tui.runfolder import Event, Notice, RunOpened, RunStarted, Status
from steplr_tui.runfolder.reader import control_offset
from steplr_tui.runfolder.schedule import ScheduleEdit
from steplr_tui.study.engine import TrialLink

ACC_UNITS = ("auto", "percent", "fraction")


class Run:
    """A tracked run of a user's own loop; see `track`. Use it as a context manager
    (`with track(...) as run:`), or keep it (`run = track(...)`, even as an attribute
    of a trainer class) and call `run.finish()` when the loop is done."""

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
        self._in_with = False
        self._hooked = False
        self._previous_hook: Any = None
        self.acc_unit = "auto"  # how test_acc is given; "auto" until the first one

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
        it ends the `with` block instead (raises RunStopped, which the block swallows);
        without `with`, it records nothing and returns None (then call `finish()`)."""
        if "test_acc" in metrics:
            given = metrics["test_acc"]
            metrics = {**metrics, "test_acc": self._percent(given)}
            if hasattr(self._trial, "given_acc"):  # the user's own Optuna study: its units
                value = given.item() if isinstance(given, torch.Tensor) else given
                self._trial.given_acc = float(value) if isinstance(value, (int, float)) else None
        if self._tracker.stop_reason is not None and not self._in_with:
            return None
        event = self._tracker.end_epoch(metrics)
        return event.edit

    def _percent(self, value: Any) -> Any:
        """test_acc in percent, the unit every view shows. The rule (see the README): a
        run whose first test_acc is at most 1 gives fractions (Optuna's 0.89), and each
        of its values is recorded times 100; `track(acc_unit=)` says it outright."""
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value  # end_epoch names the problem
        value = float(value)
        if not math.isfinite(value):
            return value
        if self.acc_unit == "auto":
            self.acc_unit = "fraction" if 0.0 <= value <= 1.0 else "percent"
            if self._record is not None:
                self._record.update_config(test_acc_unit=self.acc_unit)
        if self.acc_unit == "percent":
            return value
        if value > 1.0:
            raise TrackingError(
                f"test_acc {value:g} is over 1, but this run gives test_acc as a fraction "
                "(its first value was at most 1): give every test_acc as a fraction, or pass "
                "track(..., acc_unit='percent')"
            )
        return value * 100.0

    def finish(self) -> None:
        """End the record: COMPLETED, or STOPPED when the run was told to stop (or its
        pruner stopped it). Call it after the loop when `track()` is used without `with`;
        calling it again does nothing. A pruned trial of your own Optuna study raises
        optuna.TrialPruned here, as Optuna's `optimize` expects."""
        if self._closed:
            return
        self._after(self._exit(None, None))

    def __enter__(self) -> Run:
        self._in_with = True
        return self

    def _hook(self) -> None:
        """Signals become a clean stop; the interpreter's exit ends a record left open."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
                if sig is not None:
                    self._previous[sig] = signal.signal(sig, self._on_signal)
        atexit.register(self._at_exit)
        self._previous_hook = sys.excepthook
        sys.excepthook = self._excepthook
        self._hooked = True

    def _unhook(self) -> None:
        if not self._hooked:
            return
        self._hooked = False
        for sig, handler in self._previous.items():
            with contextlib.suppress(ValueError):  # not the main thread any more
                signal.signal(sig, handler)
        self._previous.clear()
        atexit.unregister(self._at_exit)
        if sys.excepthook == self._excepthook:
            sys.excepthook = self._previous_hook

    def _excepthook(self, exc_type: Any, exc: BaseException, tb: Any) -> None:
        """An uncaught exception in a script that never called finish(): FAILED, with
        the first line of the exception (Ctrl+C: STOPPED); then the usual traceback."""
        previous = self._previous_hook or sys.__excepthook__
        if not self._closed:
            with contextlib.suppress(Exception):
                self._after(self._exit(exc_type, exc), raise_pruned=False)
        if exc_type is RunStopped:
            return  # a stop, not a failure: no traceback
        previous(exc_type, exc, tb)

    def _at_exit(self) -> None:
        if not self._closed:
            with contextlib.suppress(Exception):
                self._after(self._exit(None, None), raise_pruned=False)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._signal_name = signal.Signals(signum).name
        self._signal.set()

    def _external(self) -> bool | str:
        return f"stopped by {self._signal_name}" if self._signal.is_set() else False

    def __exit__(self, exc_type: Any, exc: BaseException | None, _tb: Any) -> bool:
        swallow = self._exit(exc_type, exc)
        self._after(swallow)
        return swallow

    def _after(self, swallow: bool, raise_pruned: bool = True) -> None:
        """Tell a sweep's study how the run ended."""
        trial = self._trial
        if trial is not None and self._ended is not None:
            status, reason = self._ended
            metrics = [self._tracker.last_metrics] if self._tracker.last_metrics else []
            try:
                trial.finish(status, metrics, reason)
            except Exception as exc2:  # the study is gone: the record is complete anyway
                print(f"steplr-tui: could not tell the sweep's study: {exc2}", file=sys.stderr)
            from steplr_tui.run.sweep_trial import OptunaTrial

            if status is Status.PRUNED and isinstance(trial, OptunaTrial) and raise_pruned:
                _raise_pruned(reason)  # Optuna's optimize() records it PRUNED

    def _exit(self, exc_type: Any, exc: BaseException | None) -> bool:
        self._unhook()
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
    scheduler: Any = None,
    *,
    config: Mapping[str, Any] | None = None,
    runs_dir: str | os.PathLike[str] | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    batch_size: int | None = None,
    resume: str | os.PathLike[str] | None = None,
    progress_interval: float = PROGRESS_INTERVAL_S,
    trial: Any = None,
    acc_unit: str = "auto",
) -> Run:
    """Watch your own loop's schedule from steplr-tui, and steer it; see the README.

    `scheduler` is any `torch.optim.lr_scheduler` scheduler built on `optimizer`, or
    None. Every one is watched: the lr of each param group per epoch (per batch when it
    steps per batch), and torch's own plan of the lrs ahead. StepLR, MultiStepLR,
    ExponentialLR and a SequentialLR of a LinearLR/ConstantLR warmup then one of these
    also take live edits (`schedulers.STEERED`); a run without a scheduler takes lr edits.

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
    pruner, which may end the run PRUNED). `acc_unit` says how `end_epoch(test_acc=)`
    is given: "percent", "fraction" (recorded times 100), or "auto" (the first value
    decides: at most 1 is a fraction).

    Use the result as a context manager, or keep it and call `run.finish()`; a run
    left open is ended when the interpreter exits.
    """
    if acc_unit not in ACC_UNITS:
        raise TrackingError(
            f"acc_unit must be one of {', '.join(ACC_UNITS)} (got {acc_unit!r:.30})"
        )
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TrackingError(
            f"track() takes your torch.optim optimizer first (got {type(optimizer).__name__})"
        )
    _check_scheduler(optimizer, scheduler)
    if resume is not None and scheduler is None:
        raise TrackingError(
            "resume= continues from the restored scheduler's last_epoch: pass the scheduler "
            "(restored from your checkpoint), or start a new run without resume="
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

        check_params(trial, _base_lr(optimizer, scheduler), *_step_values(scheduler))
        link = as_link(trial)
    dist = DistContext.current()
    recorded = {
        **user,
        **learned(optimizer, scheduler, dist),
        "epochs": epochs,
        "batch_size": batch,
    }
    record = steering = emit = None
    path = None
    if dist is None or dist.is_main:
        sweep = link.as_dict() if isinstance(link, TrialLink) else None
        record, steering, emit, path = _open_record(
            recorded, runs_dir, resume, scheduler, dist, epochs, sweep, steps
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
        plans=True,
    )
    run = Run(tracker, record, path)
    run._trial = link if dist is None or dist.is_main else None
    if acc_unit != "auto":
        run.acc_unit = acc_unit
    elif record is not None and resume is not None:
        run.acc_unit = _recorded_unit(record.path)
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
    tracker.send_plan()
    run._hook()
    return run


def _check_scheduler(optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
    from torch.optim import lr_scheduler

    if scheduler is None:
        return
    kinds = (lr_scheduler.LRScheduler, lr_scheduler.ReduceLROnPlateau)
    if not isinstance(scheduler, kinds):
        raise TrackingError(
            f"track() takes a torch.optim.lr_scheduler scheduler, or None (got "
            f"{type(scheduler).__name__}): pass the scheduler your loop steps"
        )
    if getattr(scheduler, "optimizer", None) is not optimizer:
        raise TrackingError(
            f"the {type(scheduler).__name__} steers another optimizer than the one given to "
            "track(): pass the optimizer the scheduler was built with"
        )
    if isinstance(scheduler, lr_scheduler.SequentialLR):
        for part in scheduler._schedulers:
            if part.optimizer is not optimizer:
                raise TrackingError(
                    f"a part of the SequentialLR ({type(part).__name__}) steers another "
                    "optimizer than the one given to track(): build every part on it"
                )


def _base_lr(optimizer: torch.optim.Optimizer, scheduler: Any) -> float:
    base = getattr(scheduler, "base_lrs", None)
    if base:
        return float(base[0])
    group = optimizer.param_groups[0]
    return float(group.get("initial_lr", group["lr"]))


def _step_values(scheduler: Any) -> tuple[int | None, float | None]:
    from torch.optim.lr_scheduler import StepLR

    if isinstance(scheduler, StepLR):
        return int(scheduler.step_size), float(scheduler.gamma)
    return None, getattr(scheduler, "gamma", None)


def learned(optimizer: torch.optim.Optimizer, scheduler: Any, dist: Any) -> dict[str, Any]:
    """What the run learns by itself, for its record: the optimizer's class and each
    param group's hyperparameters, the scheduler's class and settings, the world size.
    Values a script's run does not have (momentum for Adadelta) are simply absent."""
    from steplr_tui.run import schedulers

    groups = []
    for group in optimizer.param_groups:
        values = {}
        for key, value in group.items():
            if key in ("params", "initial_lr", "max_lr", "min_lr") or key.startswith("_"):
                continue
            plain = schedulers._json(value)
            if plain is not None:
                values[key] = plain
        groups.append(values)
    out: dict[str, Any] = {
        "optimizer": type(optimizer).__name__.lower(),
        "optimizer_params": groups,
        "lr": _base_lr(optimizer, scheduler),
        "scheduler_params": schedulers.describe(scheduler),  # its "class" and settings
        "world_size": dist.world_size if dist else 1,
    }
    momentum = groups[0].get("momentum") if groups else None
    if isinstance(momentum, (int, float)) and not isinstance(momentum, bool):
        out["momentum"] = momentum
    step_size, gamma = _step_values(scheduler)
    if step_size is not None:
        out["step_size"] = step_size
    if isinstance(gamma, (int, float)):
        out["gamma"] = float(gamma)
    milestones = getattr(scheduler, "milestones", None)
    if milestones is not None and not isinstance(milestones, (int, float)):
        out["milestones"] = sorted(getattr(milestones, "elements", lambda: milestones)())
    return out


def _recorded_unit(folder: Path) -> str:
    import json

    try:
        unit = json.loads((folder / "config.json").read_text()).get("test_acc_unit")
    except (OSError, ValueError, AttributeError):
        return "auto"
    return unit if unit in ("percent", "fraction") else "auto"


def _raise_pruned(reason: str) -> None:
    """An Optuna trial of the user's own study: its objective expects TrialPruned."""
    import optuna

    raise optuna.TrialPruned(reason)


def first_epoch_of(scheduler: Any, steps_per_epoch: int | None) -> int:
    """The epoch to train next: the scheduler's last_epoch counts epochs, or batches for
    one built to step per batch (OneCycleLR, CyclicLR) when the epoch's steps are known."""
    from steplr_tui.run import schedulers

    last = scheduler.last_epoch if scheduler is not None else 0
    if isinstance(scheduler, schedulers.PER_BATCH) and steps_per_epoch:
        return last // steps_per_epoch + 1
    return last + 1


def _open_record(recorded, runs_dir, resume, scheduler, dist, epochs, sweep=None, steps=None):
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
    record = None
    lost = ""
    try:
        if resume is not None:
            try:
                path = find_run(str(resume), folder)
            except RunNotFound as exc:
                raise TrackingError(f"resume={str(resume)!r}: {exc}") from exc
            record = RunRecord(path)
            record.lock()  # one writer per folder: a live run refuses this one
            from steplr_tui.run.record import torn_notice
            from steplr_tui.runfolder.reader import read_metrics, read_metrics_counted

            last = first_epoch_of(scheduler, steps) - 1
            _, skipped = read_metrics_counted(path)
            restored = record.truncate_metrics(last)
            kept = {m["epoch"] for m in read_metrics(path)}
            missing = [e for e in range(1, last + 1) if e not in kept]
            if skipped or restored or missing:
                lost = torn_notice(skipped, restored, missing)
            record.update_config(**{k: v for k, v in meta.items() if k != "kind"})
        else:
            record = RunRecord.create(folder, recorded, meta)
            record.lock()
        record.mark_running()
    except (RecordError, OSError) as exc:
        if record is not None:
            record.close()
        raise TrackingError(str(exc)) from None
    steering_ref: list[Steering] = []

    def emit(event: Event) -> None:
        record.write(event)

    status_offset = control_offset(record.path)
    steering = Steering(
        ControlReader(record.path, status_offset),
        emit,
        epoch=first_epoch_of(scheduler, steps),
        epochs=epochs,
    )
    steering_ref.append(steering)
    emit(
        RunOpened(
            str(record.path),
            recorded,
            first_epoch=first_epoch_of(scheduler, steps),
            kind="script",
            pid=os.getpid(),
            host=socket.gethostname(),
        )
    )
    if lost:
        emit(Notice(lost, level="warning", persistent=True))
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
