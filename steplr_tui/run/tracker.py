"""Recording and steering a training loop: the one path every run takes.

`Tracker` is what a run does between its batches: `log_batch(loss)` after each
step, `should_stop()` before each batch, `end_epoch(**metrics)` after each
epoch's `scheduler.step()`, `finish()` at the end. It reports events (progress at
most every `progress_interval`, each epoch, each control decision) and applies
live edits at epoch boundaries. The built-in MNIST trainer uses it, and so does
a user's own loop through `steplr_tui.track(...)`, which adds the run folder,
SIGTERM handling and the context manager.

Under torch.distributed every rank runs the same calls; rank 0 alone writes the
folder and reads control.jsonl, and its decisions (a stop, the edit for a
boundary) reach every rank through collectives taken on step counts, which are
the same on every rank.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

from steplr_tui.run import schedulers
from steplr_tui.run.control import Steering
from steplr_tui.run.distributed import DistContext
from steplr_tui.run.schedulers import name_of
from steplr_tui.runfolder import (
    BatchProgress,
    EpochEnd,
    Event,
    LrPlan,
    Notice,
    RunEnded,
    Status,
    as_float32,
)
from steplr_tui.runfolder.schedule import ScheduleEdit

PROGRESS_INTERVAL_S = 0.1
# A plan is computed for at most this many scheduler steps (a per-batch scheduler over
# a long run): beyond it, the plan ends early.
MAX_PLAN_STEPS = 200_000
# Under torch.distributed, every rank takes part in a stop check once per this many
# should_stop() calls: a tenth of a millisecond of gloo each time, on the CPU.
STOP_CHECK_STEPS = 16
RESERVED_METRICS = frozenset({"epoch", "lr", "train_loss", "seconds", "edit", "steps"})

# Stop codes shared by all ranks (the largest wins).
_GO, _LOCAL, _REQUEST, _SIGNAL = 0, 1, 2, 100  # _SIGNAL + the signal's number


def _signal_code(reason: bool | str) -> int:
    """A rank's stop code for the job: the signal itself where one stopped it (torchrun
    signals every rank, not all at once: rank 0 says what the first one got)."""
    name = reason.rsplit(" ", 1)[-1] if isinstance(reason, str) else ""
    try:
        return _SIGNAL + int(signal.Signals[name])
    except KeyError:
        return _LOCAL


def _shared_reason(code: int) -> str:
    if code > _SIGNAL:
        with contextlib.suppress(ValueError):
            return f"stopped by {signal.Signals(code - _SIGNAL).name}"
    return "stopped: another rank of the job was told to stop"


StopCheck = Callable[[], "bool | str"]
Emit = Callable[[Event], None]


class TrackingError(RuntimeError):
    """A misuse of the tracking API; the message says what to do instead."""


class RunStopped(Exception):
    """Raised by `end_epoch()` once the run was told to stop; the `with` block ends
    quietly and the run is recorded as STOPPED (the partial epoch is not recorded)."""


class RunFailure(RuntimeError):
    """A failure whose message already tells the user what to do."""


def apply_edit(optimizer: torch.optim.Optimizer, scheduler: Any, edit: ScheduleEdit) -> None:
    """Change the scheduler's attributes and every param group's lr in place, as PyTorch
    allows; `scheduler.get_last_lr()` then returns the lr in use."""
    schedulers.apply_edit(optimizer, scheduler, edit)


def _lr_of(optimizer: torch.optim.Optimizer) -> float:
    lr = optimizer.param_groups[0]["lr"]
    return float(lr.item() if isinstance(lr, torch.Tensor) else lr)


class Tracker:
    """One run's batches and epochs, reported and steered (see the module docstring).

    `emit` receives the events (None on ranks other than 0); `steering` decides
    control requests (None where nothing can be requested, and on other ranks);
    `external_stop` is polled with them (signals, an app that quits).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        *,
        emit: Emit | None,
        steering: Steering | None = None,
        dist: DistContext | None = None,
        external_stop: StopCheck | None = None,
        epochs: int | None = None,
        steps_per_epoch: int = 0,
        batch_size: int = 0,
        progress_interval: float = PROGRESS_INTERVAL_S,
        fail_on_nonfinite: str | None = None,
        trial: Any = None,
        plans: bool = False,
    ) -> None:
        self.optimizer = optimizer
        # A sweep's trial (study.engine.TrialLink, on rank 0): each epoch's objective is
        # reported to its study, whose pruner may stop the run there, PRUNED.
        self.trial = trial
        self.pruned = False
        self.last_metrics: dict[str, float] = {}
        self.scheduler = scheduler
        self.emit = emit
        self.steering = steering
        self.dist = dist
        self.external_stop = external_stop
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.global_batch = batch_size * (dist.world_size if dist else 1)
        self.progress_interval = progress_interval
        # Advice for a loss that is not finite (the built-in trainer fails the run).
        self.fail_on_nonfinite = fail_on_nonfinite
        last = scheduler.last_epoch if scheduler is not None else 0
        # Scheduler steps an epoch: 1 (stepped per epoch), or the epoch's batches; None
        # until the first epoch shows it (OneCycleLR and CyclicLR are built per batch).
        self.stride: int | None = 1 if scheduler is None else None
        self.first_epoch = last + 1
        if isinstance(scheduler, schedulers.PER_BATCH) and steps_per_epoch:
            self.first_epoch = last // steps_per_epoch + 1
        self.epoch = self.first_epoch
        self.epochs_done = self.first_epoch - 1
        self._last_seen = last  # the scheduler's last_epoch at the last boundary
        self._replan = False  # the first boundary showed how the scheduler steps
        self._at_boundary = False
        self._plan_failed = False
        # The run writes torch's own plan of its lrs (a user's script: any scheduler).
        self.plans = plans
        if steering is not None:
            steering.check_edit = self._edit_problem
            steering.on_queued = self._plan_pending
        # The lr each optimizer.step() used, read just before it (a script may call
        # scheduler.step() before log_batch(), which would then read the next lr).
        self._step_hook = optimizer.register_step_pre_hook(self._on_step) if plans else None
        self.stop_reason: str | None = None
        self.stop_batch = 0
        self._calls = 0
        self._t0 = time.perf_counter()
        self._epoch_start = self._last_report = self._t0
        self._reset_epoch()
        self._warned_nonfinite = False

    @property
    def is_main(self) -> bool:
        return self.dist is None or self.dist.is_main

    def _reset_epoch(self) -> None:
        self._step = 0
        self._reported_step = 0
        self._pending: list[Any] = []
        self._sum = 0.0
        self._count = 0
        self._lr_used: float | None = None
        self._lrs_used: list[float] = []
        self._step_lrs: list[float] = []

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def restart_clock(self) -> None:
        """Time counts from the first batch, not from loading."""
        self._t0 = self._epoch_start = self._last_report = time.perf_counter()

    def send(self, event: Event) -> None:
        if self.emit is not None:
            self.emit(event)

    # ---- per batch ----------------------------------------------------------------

    def log_batch(self, loss: Any) -> None:
        """Record one batch's loss: a float, or a one-element tensor, which stays on its
        device until the next progress report reads the batch losses back together."""
        if self._step_hook is None or self._lr_used is None:
            self._on_step()
        if isinstance(loss, torch.Tensor):
            if loss.numel() != 1:
                raise TrackingError(
                    f"log_batch() takes the batch's loss as one number (got a tensor of shape "
                    f"{list(loss.shape)}): pass loss.mean() or loss.item()"
                )
            if loss.device.type == "cpu":
                loss = loss.item()  # no device to wait for: a float now is cheapest
            elif loss.requires_grad:
                loss = loss.detach()  # stays on its device until the next report
        elif isinstance(loss, bool) or not isinstance(loss, (int, float)):
            raise TrackingError(
                "log_batch() takes the batch's loss as a number or a tensor "
                f"(got {type(loss).__name__})"
            )
        self._step += 1
        self._pending.append(loss)
        now = time.perf_counter()
        if now - self._last_report >= self.progress_interval:
            self._report(now)

    def _on_step(self, *_args: Any) -> None:
        if self._lr_used is None:
            self._lrs_used = schedulers.lrs_of(self.optimizer)
            self._lr_used = self._lrs_used[0]
        if self.stride != 1:
            self._step_lrs.append(_lr_of(self.optimizer))

    def _report(self, now: float) -> None:
        pending, self._pending = self._pending, []
        self._last_report = now
        if not pending:
            return
        values = list(as_float32(_floats(pending)))
        first = self._reported_step + 1
        self._reported_step = self._step
        self._sum += math.fsum(values)
        self._count += len(values)
        if any(not math.isfinite(v) for v in values):
            self._nonfinite(values, first)
        if self.emit is None:
            return
        rate = self._step / max(now - self._epoch_start, 1e-9)
        self.emit(
            BatchProgress(
                epoch=self.epoch,
                step=self._step,
                steps=self.steps_per_epoch,
                losses=tuple(values),
                samples_per_s=rate * self.global_batch,
                elapsed=now - self._t0,
            )
        )

    def _nonfinite(self, values: list[float], first: int) -> None:
        offset, value = next((i, v) for i, v in enumerate(values) if not math.isfinite(v))
        where = f"epoch {self.epoch}, batch {first + offset}"
        if self.fail_on_nonfinite is not None:
            raise RunFailure(f"loss became {value} at {where}: {self.fail_on_nonfinite}")
        if not self._warned_nonfinite:
            self._warned_nonfinite = True
            self.send(Notice(f"loss became {value} at {where}", level="warning"))

    def should_stop(self) -> bool:
        """True once the run must stop: a stop request, a signal, or the caller's own check.

        In one process every call looks (control.jsonl at most every 50 ms); under
        torch.distributed, every rank looks together once per STOP_CHECK_STEPS calls.
        """
        if self.stop_reason is not None:
            return True
        if self.dist is None:
            reason = self.external_stop() if self.external_stop is not None else False
            if not reason and self.steering is not None:
                reason = self.steering.check()
            if reason:
                self._stopping(reason)
            return self.stop_reason is not None
        self._calls += 1
        if self._calls % STOP_CHECK_STEPS:
            return False
        code, own = _GO, None
        if self.external_stop is not None and (own := self.external_stop()):
            code = _signal_code(own)
        if self.steering is not None and (requested := self.steering.check(force=True)):
            code, own = _REQUEST, requested
        shared = self.dist.max(code)
        if shared:
            self._stopping(own or _shared_reason(shared))
        return self.stop_reason is not None

    def _stopping(self, reason: bool | str) -> None:
        self.stop_reason = reason if isinstance(reason, str) else "stopped by the user"
        self.stop_batch = self._step + 1

    # ---- per epoch ----------------------------------------------------------------

    def end_epoch(self, metrics: Mapping[str, Any], eval_seconds: float = 0.0) -> EpochEnd:
        """Record the epoch, then apply the edits queued for this boundary (after the
        epoch's scheduler.step()). Raises RunStopped once the run was told to stop."""
        if self.stop_reason is not None:
            raise RunStopped(self.stop_reason)
        epoch = self.epoch
        if self._step == 0:
            raise TrackingError(
                f"end_epoch() for epoch {epoch} came with no log_batch() since the last one: "
                "call run.log_batch(loss) for each batch and run.end_epoch() once per epoch"
            )
        self._check_stride(epoch)
        values = _metric_values(metrics)
        self.last_metrics = dict(values)  # what a sweep tells its study at the end
        now = time.perf_counter()
        self._report(now)
        total, count = self._sum, self._count
        if self.dist is not None:
            total, count = self.dist.sum([total, float(count)])
        train_loss = total / count if count else math.nan
        edit = None
        last = self.epochs is not None and epoch >= self.epochs
        prune = self._report_trial(epoch, values)
        if not last:
            if self.steering is not None:
                self._at_boundary = True  # scheduler.step() is done: requests read now
                try:  # apply after no further step
                    edit = self.steering.boundary(epoch)
                finally:
                    self._at_boundary = False
            if self.dist is not None:
                # Rank 0's decisions for this boundary, on every rank at the same point.
                shared = self.dist.broadcast(
                    {"edit": edit.as_dict() if edit else None, "prune": prune}
                )
                edit = ScheduleEdit.from_dict(shared["edit"]) if shared["edit"] else None
                prune = shared["prune"]
            if edit:
                apply_edit(self.optimizer, self.scheduler, edit)
        lr_used = self._lr_used if self._lr_used is not None else _lr_of(self.optimizer)
        step_lrs = self._step_lrs if self.stride != 1 and len(set(self._step_lrs)) > 1 else []
        test_acc = values.pop("test_acc", math.nan)
        event = EpochEnd(
            epoch=epoch,
            lr=lr_used,
            train_loss=train_loss,
            test_acc=test_acc,
            seconds=now - self._epoch_start,
            elapsed=now - self._t0,
            eval_seconds=eval_seconds,
            edit=edit or None,
            metrics=values,
            steps=self._step,
            lrs=tuple(self._lrs_used) if len(self._lrs_used) > 1 else (),
            step_lrs=tuple(step_lrs),
        )
        self.send(event)
        if self.steering is not None:
            self.steering.record_applied()  # after the epoch's line, as a log reads
        if prune and not last:
            self._stopping(prune)  # before the next batch, on every rank
            # A trial taken over by another worker stops (STOPPED), it was not pruned.
            self.pruned = not getattr(self.trial, "taken_over", False)
        if not self.steps_per_epoch:
            self.steps_per_epoch = self._step  # a script's later epochs are placed by this
        self.epochs_done = epoch
        self.epoch = epoch + 1
        replan, self._replan = self._replan, False
        self._last_seen = self.scheduler.last_epoch if self.scheduler is not None else 0
        self._epoch_start = self._last_report = time.perf_counter()
        self._reset_epoch()
        if edit or replan:
            self.send_plan()  # the plan from here: torch's, with the edit applied
        return event

    # ---- the scheduler ------------------------------------------------------------

    def _check_stride(self, epoch: int) -> None:
        """scheduler.step() was called once since the last epoch, or once per batch."""
        if self.scheduler is None:
            return
        moved = self.scheduler.last_epoch - self._last_seen
        per_batch = self._step > 1 and moved == self._step
        if self.stride is None and (moved == 1 or per_batch):
            self.stride = moved
            per_batch_class = isinstance(self.scheduler, schedulers.PER_BATCH)
            guessed = (self.steps_per_epoch or 0) if per_batch_class else 1
            self._replan = moved != guessed  # the plan written at the start assumed otherwise
            return
        if moved == self.stride or (self.stride and self.stride > 1 and moved > 0):
            return
        batches = f", or {self._step} when it steps per batch" if self.stride is None else ""
        raise TrackingError(
            f"end_epoch() for epoch {epoch} expects scheduler.step() to have been called "
            f"once since the last epoch{' (or once per batch)' if self.stride is None else ''} "
            f"({name_of(self.scheduler)}'s last_epoch is {self.scheduler.last_epoch}, "
            f"expected {self._last_seen + (self.stride or 1)}{batches}): call "
            "scheduler.step(), then end_epoch()"
        )

    def _edit_problem(self, edit: ScheduleEdit, boundary: int) -> str | None:
        problem = schedulers.edit_problem(self.scheduler, edit, boundary, self.epochs)
        if problem is None and self.stride not in (None, 1) and set(edit.as_dict()) - {"lr"}:
            return (
                f"this run's {name_of(self.scheduler)} steps once a batch: its settings count "
                "batches, and only lr takes live edits"
            )
        return problem

    def plan(self, edit: ScheduleEdit | None = None, pending: str = "") -> LrPlan | None:
        """torch's plan of the lrs from the epoch in progress (see schedulers.plan)."""
        stride = self.stride or (
            self.steps_per_epoch if isinstance(self.scheduler, schedulers.PER_BATCH) else 1
        )
        if not stride:
            return None  # a per-batch scheduler before its first epoch: steps unknown
        if edit and stride != 1:
            return None  # mid-epoch, a per-batch scheduler's boundary is not a step away
        epochs = self.epochs if self.epochs is not None else self.epoch
        first = self.epoch + (1 if edit else 0)
        left = max(epochs - first, 0)
        steps = min(left * stride + (stride - 1), MAX_PLAN_STEPS)
        scheduler_info = schedulers.describe(self.scheduler)
        note = schedulers.note(self.scheduler)
        after = 1 if edit and not self._at_boundary else 0
        rows = schedulers.plan(self.optimizer, self.scheduler, steps, edit, after)
        by_epoch = tuple(tuple(r) for r in rows[::stride])[: max(epochs - first + 1, 0)]
        step_lrs = tuple(r[0] for r in rows) if stride > 1 else ()
        return LrPlan(
            first_epoch=first,
            lrs=by_epoch,
            scheduler=scheduler_info,
            steps_per_epoch=stride,
            step_lrs=step_lrs,
            editable=schedulers.editable(self.scheduler) if self.stride in (None, 1) else ("lr",),
            pending=pending,
            note=note,
        )

    def send_plan(self, edit: ScheduleEdit | None = None, pending: str = "") -> None:
        """Write the plan; a scheduler that cannot be copied (a custom one holding a lock,
        a file) costs the run its plan, never the run."""
        if not self.plans or self.emit is None:
            return
        try:
            event = self.plan(edit, pending)
        except Exception as exc:
            if not self._plan_failed:
                self._plan_failed = True
                self.send(
                    Notice(
                        f"no plan of the lrs ahead: {name_of(self.scheduler)} could not be "
                        f"copied to simulate it ({type(exc).__name__}: {str(exc)[:100]}); "
                        "the lrs used are recorded as always",
                        level="warning",
                    )
                )
            return
        if event is not None:
            self.send(event)

    def _plan_pending(self, queued: ScheduleEdit | None) -> None:
        """What the queued edits make of the schedule, by the same simulation."""
        if queued:
            self.send_plan(queued, pending="queued")

    def _report_trial(self, epoch: int, values: Mapping[str, float]) -> str | None:
        """The epoch's objective to the sweep's study; why the pruner stops the run, if it
        does. A study that cannot be reached costs the run its pruning, not the run."""
        if self.trial is None:
            return None
        try:
            return self.trial.report(epoch, values)
        except Exception as exc:
            self.trial = None
            self.send(
                Notice(
                    f"the sweep's study could not be reached ({type(exc).__name__}: "
                    f"{str(exc)[:120]}); this trial goes on without pruning",
                    level="warning",
                )
            )
            return None

    def finish(self, status: Status, message: str = "") -> RunEnded:
        """Record how the run ended (what was queued and never applied is withdrawn first).
        A run its pruner stopped ends PRUNED."""
        if self._step_hook is not None:
            self._step_hook.remove()
            self._step_hook = None
        if self.pruned and status is Status.STOPPED:
            status = Status.PRUNED
        if self.steering is not None:
            why = {
                Status.COMPLETED: "the run completed before its boundary",
                Status.STOPPED: "the run stopped before its boundary",
                Status.PRUNED: "the run was pruned before its boundary",
            }.get(status, "the run failed before its boundary")
            self.steering.end(why)
        end = RunEnded(
            status,
            message,
            self.epochs_done,
            self.elapsed(),
            batch=self.stop_batch if status is Status.STOPPED else 0,
        )
        self.send(end)
        return end


def _floats(values: list[Any]) -> list[float]:
    """Batch losses as floats: tensors are read back together (one device sync)."""
    if all(not isinstance(v, torch.Tensor) for v in values):
        return [float(v) for v in values]
    tensors = [v.reshape(()) if isinstance(v, torch.Tensor) else None for v in values]
    device_values = [t for t in tensors if t is not None]
    first = device_values[0].device
    stacked = torch.stack([t if t.device == first else t.to(first) for t in device_values])
    read = iter(stacked.double().tolist())
    return [next(read) if t is not None else float(v) for t, v in zip(tensors, values, strict=True)]


def _metric_values(metrics: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if name in RESERVED_METRICS:
            raise TrackingError(
                f"metric name {name!r} is reserved (the run records {name} itself): "
                "give it another name"
            )
        if value is None:
            continue
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TrackingError(
                f"metric {name}={value!r:.40} is not a number: end_epoch() takes numbers "
                "(or one-element tensors)"
            )
        out[name] = float(value)
    return out
