"""What a viewer knows about the run on screen, folded from its events.

Plain Python, no Textual and no torch. Every source (the dashboard's own thread,
a run folder written by another process, a finished run replayed) feeds the same
events in, so the panes cannot tell where they came from. The screen reads the
state out at its own redraw rate, and tests check the folding without a terminal.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from steplr_tui.runfolder import (
    BatchProgress,
    Decision,
    EpochEnd,
    Event,
    LrPlan,
    Notice,
    RunEnded,
    RunOpened,
    RunStarted,
    Status,
)
from steplr_tui.runfolder.losses import LossFold, MinMaxSeries
from steplr_tui.runfolder.schedule import ScheduleEdit, format_lr, lrs_with_edits
from steplr_tui.runfolder.summary import Summary
from steplr_tui.runfolder.text import format_duration, format_rate, progress_bar

__all__ = ["PendingEdit", "PlanParams", "RunView", "format_duration", "progress_bar"]

# The decisions kept by request id, for a viewer to find the answer to what it sent.
KEPT_DECISIONS = 256


@dataclass(frozen=True)
class PlanParams:
    """What a schedule's preview needs; `epochs` is None when a script did not say."""

    lr: float
    step_size: int
    gamma: float
    epochs: int | None

    @classmethod
    def from_config(cls, config: Any) -> PlanParams | None:
        if config.get("scheduler", "step") != "step":
            return None  # the built-in trainer's other schedulers: the run writes torch's plan
        try:
            lr, step, gamma = float(config["lr"]), int(config["step_size"]), float(config["gamma"])
        except (KeyError, TypeError, ValueError):
            return None
        epochs = config.get("epochs")
        ok = isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0
        return cls(lr, step, gamma, epochs if ok else None)


@dataclass(frozen=True)
class PendingEdit:
    """An edit the run has queued: it applies after epoch `epoch`."""

    edit: ScheduleEdit
    epoch: int
    sender: str


@dataclass
class RunView:
    """The state of one run as the panes and the status line show it."""

    status: Status | None = None  # None: no run on screen yet
    loading: str | None = None  # a run asked for (its name) whose record is not read yet
    stopping: bool = False  # a stop was asked for and has not taken effect
    opened: RunOpened | None = None
    plan: PlanParams | None = None
    started: RunStarted | None = None
    epochs: list[EpochEnd] = field(default_factory=list)
    fold: LossFold = field(default_factory=LossFold)  # the batch losses
    progress: BatchProgress | None = None
    end: RunEnded | None = None
    notice: Notice | None = None
    elapsed: float = 0.0
    edits: dict[int, ScheduleEdit] = field(default_factory=dict)  # applied, by epoch
    pending: OrderedDict[str, PendingEdit] = field(default_factory=OrderedDict)
    decisions: OrderedDict[str, Decision] = field(default_factory=OrderedDict)  # by request id
    mismatches: list[str] = field(default_factory=list)  # lr used vs plan, in words
    mismatches_told: int = 0  # how many of them the user was told of
    metric_names: list[str] = field(default_factory=list)  # per-epoch figures seen, in order
    # torch's plan, as the run wrote it (any scheduler), and the one its queued edits give.
    lr_plan: LrPlan | None = None
    lr_plan_queued: LrPlan | None = None
    _plan_cache: tuple[Any, list[float]] = (None, [])

    @property
    def losses(self) -> MinMaxSeries:
        """Every batch loss, bounded (min, max and mean per bucket)."""
        return self.fold.series

    @property
    def active(self) -> bool:
        """A run is on screen and has not ended."""
        return self.status is Status.RUNNING

    @property
    def starting(self) -> bool:
        return self.active and self.started is None

    @property
    def record(self) -> str | None:
        return self.opened.path if self.opened is not None and self.opened.path else None

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.opened.config) if self.opened is not None else {}

    @property
    def total_epochs(self) -> int | None:
        if self.plan is not None and self.plan.epochs is not None:
            return self.plan.epochs
        if self.started is not None and self.started.epochs:
            return self.started.epochs
        return None

    def untold_mismatches(self) -> list[str]:
        """The mismatches the user was not told of yet; from now on, told."""
        untold = self.mismatches[self.mismatches_told :]
        self.mismatches_told = len(self.mismatches)
        return untold

    def reset(self) -> None:
        """Forget everything: the next events are another run."""
        self.__init__()  # type: ignore[misc]

    # ---- folding ------------------------------------------------------------------

    def apply(self, event: Event | Summary) -> set[str]:
        """Fold one event in (or a replay's summary of the losses before its place);
        return the parts of the screen it changed."""
        if isinstance(event, Summary):
            self.fold = event.losses
            return {"loss"}
        if isinstance(event, BatchProgress):
            self.fold.apply(event)
            self.progress = event
            self.elapsed = event.elapsed
            return {"loss", "status"}
        if isinstance(event, EpochEnd):
            return self._epoch(event)
        if isinstance(event, Decision):
            return self._decision(event)
        if isinstance(event, RunOpened):
            return self._opened(event)
        if isinstance(event, RunStarted):
            self.started = event
            return {"status"}
        if isinstance(event, Notice):
            if event.persistent:
                self.notice = event
                return {"notice", "log", "status"}
            return {"log"}
        if isinstance(event, LrPlan):
            if event.pending:
                self.lr_plan_queued = event
            else:
                self.lr_plan, self.lr_plan_queued = event, None
            return {"lr"}
        if isinstance(event, RunEnded):
            self.end = event
            self.loading = None  # ended before it wrote anything else: nothing more to read
            self.status = event.status
            self.stopping = False
            self.pending.clear()
            self.elapsed = event.elapsed or self.elapsed
            return {"status", "log", "lr", "fields"}
        return set()

    def apply_all(self, events: list[Event]) -> set[str]:
        dirty: set[str] = set()
        for event in events:
            dirty |= self.apply(event)
        return dirty

    def _opened(self, event: RunOpened) -> set[str]:
        fold = self.fold
        fold.apply(event)  # it starts over, or drops what the resumed session trains again
        same_run = self.opened is not None and self.opened.path == event.path and event.path
        if event.first_epoch <= 1 or not same_run:
            self.reset()
            self.fold = fold
        else:
            # A resumed session trains these epochs again: drop what we hold of them.
            keep = event.first_epoch - 1
            self.epochs = [e for e in self.epochs if e.epoch <= keep]
            self.edits = {k: v for k, v in self.edits.items() if k <= keep}
            self.progress = None
            self.end = None
            self.pending.clear()
            self.notice = None
        self.opened = event
        self.plan = PlanParams.from_config(event.config)
        self.status = Status.RUNNING
        self.stopping = False
        self.started = None
        return {"lr", "loss", "acc", "status", "notice", "log", "phases", "fields", "legend"}

    def _epoch(self, event: EpochEnd) -> set[str]:
        self.fold.apply(event)  # losses held for this epoch's length are placed
        self._check_lr(event)
        self.epochs.append(event)
        if event.edit:
            self.edits[event.epoch] = event.edit
        for name in ("test_acc", *event.metrics):
            if name not in self.metric_names and math.isfinite(event.metric(name)):
                self.metric_names.append(name)
        self.elapsed = event.elapsed
        return {"lr", "loss", "acc", "log", "status", "phases", "fields"}

    def _decision(self, event: Decision) -> set[str]:
        if event.request is not None:
            self.decisions[event.request] = event
            self.decisions.move_to_end(event.request)
            while len(self.decisions) > KEPT_DECISIONS:
                self.decisions.popitem(last=False)
        rid = event.request
        if event.action == "edit" and rid is not None and event.edit:
            if event.decision == "queued":
                self.pending[rid] = PendingEdit(event.edit, event.epoch, event.sender)
            elif event.decision == "applied":
                self.pending.pop(rid, None)
                if not self.pending:
                    self.lr_plan_queued = None
            elif event.decision == "withdrawn" and rid in self.pending:
                left = {
                    k: v
                    for k, v in self.pending[rid].edit.as_dict().items()
                    if k not in event.fields
                }
                if left:
                    old = self.pending[rid]
                    self.pending[rid] = PendingEdit(ScheduleEdit(**left), old.epoch, old.sender)
                else:
                    del self.pending[rid]
                if not self.pending:
                    self.lr_plan_queued = None
        elif event.action == "stop" and event.decision == "applied" and self.active:
            self.stopping = True
        return {"log", "lr", "status", "fields"}

    # ---- the schedule -------------------------------------------------------------------

    @property
    def pending_edit(self) -> ScheduleEdit | None:
        """Everything queued, merged in order: what the next boundary applies."""
        merged = ScheduleEdit()
        for p in self.pending.values():
            merged = merged.merged(p.edit)
        return merged or None

    @property
    def pending_epoch(self) -> int | None:
        """The boundary the queued edits apply at (the run said so when it queued them)."""
        return max((p.epoch for p in self.pending.values()), default=None)

    def horizon(self) -> int:
        """Epochs the schedule is drawn over (a script without `epochs`: one past the last)."""
        total = self.total_epochs
        return total if total is not None else max(self.current_epoch, 1)

    def planned_lrs(self, extra: ScheduleEdit | None = None) -> list[float]:
        """The run's schedule: its config, the edits applied so far, and `extra` (what is
        queued and typed) at the current boundary. A run whose scheduler is not a StepLR:
        the lrs used, then the plan torch computed (what is queued included, if `extra`)."""
        if self.plan is None:
            return self.torch_plan(queued=bool(extra))
        p = self.plan
        edits = dict(self.edits)
        if extra:
            boundary = self.current_epoch
            edits[boundary] = edits[boundary].merged(extra) if boundary in edits else extra
        return lrs_with_edits(p.lr, p.step_size, p.gamma, self.horizon(), edits)

    def torch_plan(self, queued: bool = False) -> list[float]:
        """Group 0's lr per epoch: the lrs used before the plan's first epoch, then the
        run's plan (or the plan of its queued edits). Empty without a plan."""
        plan = self.lr_plan_queued if queued and self.lr_plan_queued else self.lr_plan
        if plan is None:
            return []
        used = {e.epoch: e.lr for e in self.epochs}
        before = [used.get(epoch, math.nan) for epoch in range(1, plan.first_epoch)]
        ahead = [row[0] for row in plan.lrs if row]
        if not ahead:  # no plan (ReduceLROnPlateau): what happened is all there is
            return [e.lr for e in self.epochs]
        return before + ahead

    def live_values(self) -> dict[str, Any]:
        """The values the run takes edits of, as it holds them now: a StepLR's lr,
        step_size and gamma (config, then each applied edit); for any other steered
        scheduler, the fields its plan says it takes (`LrPlan.editable`: a MultiStepLR's
        milestones, a warmup's length...), as its latest plan describes them."""
        if self.plan is None:
            return self._torch_live()
        values: dict[str, Any] = {
            "lr": self.plan.lr,
            "step_size": self.plan.step_size,
            "gamma": self.plan.gamma,
        }
        for epoch in sorted(self.edits):
            values.update(_plain(self.edits[epoch]))
        return values

    def _torch_live(self) -> dict[str, Any]:
        plan = self.lr_plan
        if plan is None or not plan.editable:
            return {}
        settings = plan.scheduler
        decay: Any = settings
        values: dict[str, Any] = {}
        if settings.get("class") == "SequentialLR":
            parts = settings.get("schedulers") or [{}]
            decay = parts[-1] if isinstance(parts[-1], dict) else {}
            marks = settings.get("milestones") or []
            if marks and isinstance(marks[0], int) and self.current_epoch < marks[0]:
                values["warmup"] = marks[0]  # until it has ended: then nothing to edit
        for key, kind in (("step_size", int), ("gamma", float)):
            if isinstance(decay.get(key), (int, float)) and not isinstance(decay.get(key), bool):
                values[key] = kind(decay[key])
        marks = decay.get("milestones")
        if isinstance(marks, list) and all(isinstance(m, int) for m in marks):
            values["milestones"] = tuple(sorted(marks))  # a repeated one decays twice
        lr = self.config.get("lr")
        if isinstance(lr, (int, float)) and not isinstance(lr, bool):
            values["lr"] = float(lr)
        for epoch in sorted(self.edits):
            lr = self.edits[epoch].lr
            if lr is not None:
                values["lr"] = lr
        return {k: v for k, v in values.items() if k in plan.editable}

    def effective_values(self) -> dict[str, Any]:
        """What the run will hold after the next boundary: live values, then what is queued."""
        values = self.live_values()
        pending = self.pending_edit
        if pending:
            values.update({k: v for k, v in _plain(pending).items() if k in values})
        return values

    @property
    def current_epoch(self) -> int:
        """The epoch in progress (1-based): a queued edit applies when it ends."""
        if self.epochs:
            return self.epochs[-1].epoch + 1
        if self.started is not None:
            return self.started.first_epoch
        return self.opened.first_epoch if self.opened is not None else 1

    @property
    def last_epoch_running(self) -> bool:
        """The epoch in progress is the run's last: no boundary is left to edit at."""
        total = self.total_epochs
        return total is not None and self.current_epoch >= total

    def _check_lr(self, event: EpochEnd) -> None:
        # The plan is what the record promises: config plus the edits applied before
        # this epoch. A difference means the run is not following its own record.
        # (Computed once per plan and set of edits: a replay checks 1,000 epochs.)
        torch_plan = self.lr_plan if self.plan is None else None
        key = (self.plan, tuple(sorted(self.edits.items())), self.horizon(), torch_plan)
        if self._plan_cache[0] != key:
            self._plan_cache = (key, self.planned_lrs())
        planned = self._plan_cache[1]
        if not 1 <= event.epoch <= len(planned):
            return
        expected = planned[event.epoch - 1]
        if math.isnan(expected):
            return
        if not math.isclose(event.lr, expected, rel_tol=1e-9, abs_tol=0.0):
            self.mismatches.append(
                f"epoch {event.epoch} used lr {format_lr(event.lr)}, "
                f"the plan says {format_lr(expected)}"
            )

    # ---- progress -------------------------------------------------------------------

    @property
    def steps_per_epoch(self) -> int:
        if self.started is not None and self.started.steps_per_epoch:
            return self.started.steps_per_epoch
        return self.epochs[-1].steps if self.epochs else 0

    def run_fraction(self) -> float:
        """Share of the whole run's batches done, 0..1."""
        total = self.total_epochs
        if not total:
            return 0.0
        done = float(len(self.epochs) and self.epochs[-1].epoch)
        if self.progress is not None and self.progress.epoch > done:
            steps = self.progress.steps or self.steps_per_epoch
            done = self.progress.epoch - 1 + (self.progress.step / steps if steps else 0.0)
        return min(max(done / total, 0.0), 1.0)

    def epoch_fraction(self) -> float:
        """Share of the epoch in progress done, 0..1."""
        p = self.progress
        if p is None or (self.epochs and p.epoch <= self.epochs[-1].epoch):
            return 0.0
        steps = p.steps or self.steps_per_epoch
        return min(p.step / steps, 1.0) if steps else 0.0

    def eta(self) -> float | None:
        """Seconds left, extrapolated from this session's pace; None until there is a pace."""
        if not self.active or self.started is None or self.elapsed <= 0.0:
            return None
        total = self.total_epochs
        if not total:
            return None
        before = (self.started.first_epoch - 1) / total
        frac = self.run_fraction()
        session = (frac - before) / (1.0 - before) if before < 1.0 else 1.0
        if session <= 0.0:
            return None
        return self.elapsed * (1.0 - session) / session


def _plain(edit: ScheduleEdit) -> dict[str, Any]:
    """An edit's values as the fields hold them (milestones a tuple)."""
    return {k: v for k, v in vars(edit).items() if v is not None}


def status_parts(view: RunView, device_hint: str, data_hint: str) -> list[tuple[int, str]]:
    """The status line's parts, (priority: lower is kept longer, text), in reading order."""
    parts: list[tuple[int, str]] = []
    if view.started is not None:
        s = view.started
        parts.append(
            (6, s.device + (f" x {s.world_size} ({s.backend})" if s.world_size > 1 else ""))
        )
        if s.dataset:
            sizes = f" {s.n_train:,}" if s.n_train else ""
            sizes += f"/{s.n_test:,}" if s.n_train and s.n_test else ""
            parts.append((7, f"{s.dataset}{sizes}"))
        if s.global_batch and s.world_size > 1:
            parts.append((5, f"global batch {s.global_batch}"))
    else:
        parts += [(6, device_hint), (7, data_hint)]
    if view.status is None and view.loading:
        return [(0, f"loading the run {view.loading}…")]
    if view.status is None:
        parts.insert(0, (0, "ready: ctrl+r starts here, ctrl+n starts detached"))
        return parts
    if view.starting:
        parts.insert(0, (0, "starting: loading torch and data…"))
        return parts
    total = view.total_epochs
    epoch = (
        view.progress.epoch
        if view.progress is not None and view.active
        else (view.epochs[-1].epoch if view.epochs else view.current_epoch)
    )
    label = f"epoch {epoch}/{total}" if total else f"epoch {epoch}"
    if view.active and view.epoch_fraction() > 0:
        label += f" ({view.epoch_fraction():.0%})"
    if total:
        head = f"{progress_bar(view.run_fraction(), 10)} {view.run_fraction():4.0%} · {label}"
    else:
        head = label
    parts.insert(0, (0, head))
    if view.progress is not None and view.active and view.progress.samples_per_s > 0:
        parts.append((3, format_rate(view.progress.samples_per_s)))
    parts.append((4, f"{format_duration(view.elapsed)} elapsed"))
    eta = view.eta()
    if eta is not None:
        parts.append((1, f"ETA {format_duration(eta)}"))
    if view.stopping:
        parts.append((0, "stopping…"))
    elif view.status is not None and view.status.final:
        parts.append(
            (
                0,
                {
                    Status.COMPLETED: "done",
                    Status.STOPPED: "stopped",
                    Status.PRUNED: "PRUNED",
                    Status.FAILED: "FAILED",
                    Status.INTERRUPTED: "INTERRUPTED",
                }[view.status],
            )
        )
    return parts


def fit_parts(parts: list[tuple[int, str]], width: int) -> str:
    """Join parts with ' · ' in reading order: the most important first take the room,
    and a part that does not fit leaves it to the less important ones after it."""
    if not parts:
        return ""
    order = sorted(range(len(parts)), key=lambda i: parts[i][0])  # stable: ties in order
    kept = {order[0]}
    used = len(parts[order[0]][1])
    for i in order[1:]:
        if used + 3 + len(parts[i][1]) <= width:
            kept.add(i)
            used += 3 + len(parts[i][1])
    return " · ".join(text for i, (_, text) in enumerate(parts) if i in kept)


def status_text(view: RunView, device_hint: str, data_hint: str, width: int = 200) -> str:
    """The status line: progress of the run and of the epoch, speed, elapsed, ETA."""
    return fit_parts(status_parts(view, device_hint, data_hint), width)
