"""What the dashboard knows about the current run, folded from trainer events.

Plain Python, no Textual: the screen feeds events in, reads the state out at its
own redraw rate, and tests can check the folding without a terminal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from steplr_tui.config import TrainConfig
from steplr_tui.events import (
    BatchProgress,
    EpochEnd,
    Event,
    Notice,
    RecordOpened,
    RunEnded,
    RunStarted,
)
from steplr_tui.schedule import ScheduleEdit, format_lr, lrs_with_edits
from steplr_tui.series import MinMaxSeries

Phase = Literal["idle", "starting", "running", "stopping", "completed", "stopped", "failed"]
ACTIVE_PHASES = ("starting", "running", "stopping")


@dataclass
class RunView:
    """The state of one run as the panes and status line show it."""

    phase: Phase = "idle"
    config: TrainConfig | None = None
    started: RunStarted | None = None
    epochs: list[EpochEnd] = field(default_factory=list)
    losses: MinMaxSeries = field(default_factory=MinMaxSeries)
    progress: BatchProgress | None = None
    end: RunEnded | None = None
    notice: Notice | None = None
    elapsed: float = 0.0
    edits: dict[int, ScheduleEdit] = field(default_factory=dict)  # applied, by epoch
    mismatches: list[str] = field(default_factory=list)  # lr used vs plan, in words
    record: str | None = None  # the run's folder, once the job has opened it

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES

    def begin(self, config: TrainConfig) -> None:
        """Forget the previous run; a new one is starting with `config`."""
        self.phase = "starting"
        self.config = config
        self.started = None
        self.epochs = []
        self.losses.clear()
        self.progress = None
        self.end = None
        self.notice = None
        self.elapsed = 0.0
        self.edits = {}
        self.mismatches = []
        self.record = None

    def apply(self, event: Event) -> set[str]:
        """Fold one event in; return the parts of the screen it changed."""
        if isinstance(event, BatchProgress):
            first = event.step - len(event.losses) + 1
            xs = [(event.epoch - 1) + (first + i) / event.steps for i in range(len(event.losses))]
            self.losses.extend(xs, list(event.losses))
            self.progress = event
            self.elapsed = event.elapsed
            return {"loss", "status"}
        if isinstance(event, EpochEnd):
            self._check_lr(event)
            self.epochs.append(event)
            if event.edit:
                self.edits[event.epoch] = event.edit
            self.elapsed = event.elapsed
            return {"lr", "loss", "acc", "log", "status", "phases"}
        if isinstance(event, RunStarted):
            self.started = event
            if self.phase == "starting":
                self.phase = "running"
            return {"status"}
        if isinstance(event, RecordOpened):
            self.record = event.path
            return set()
        if isinstance(event, Notice):
            if event.persistent:
                self.notice = event
                return {"notice", "log", "status"}
            return {"log"}
        if isinstance(event, RunEnded):
            self.end = event
            self.phase = event.status
            self.elapsed = event.elapsed or self.elapsed
            return {"status", "log", "lr"}
        return set()

    def planned_lrs(self, pending: ScheduleEdit | None = None) -> list[float]:
        """The run's schedule: its config, the edits applied so far, and `pending` if any."""
        if self.config is None:
            return []
        c = self.config
        edits = dict(self.edits)
        if pending:
            edits[self.current_epoch] = pending
        return lrs_with_edits(c.lr, c.step_size, c.gamma, c.epochs, edits)

    def live_values(self) -> dict[str, float | int]:
        """lr, step_size and gamma as the run holds them now: config, then each applied edit."""
        if self.config is None:
            return {}
        values: dict[str, float | int] = {
            "lr": self.config.lr,
            "step_size": self.config.step_size,
            "gamma": self.config.gamma,
        }
        for epoch in sorted(self.edits):
            values.update(self.edits[epoch].as_dict())
        return values

    @property
    def current_epoch(self) -> int:
        """The epoch in progress (1-based): a pending edit applies when it ends."""
        if self.epochs:
            return self.epochs[-1].epoch + 1
        return self.started.first_epoch if self.started is not None else 1

    def _check_lr(self, event: EpochEnd) -> None:
        # The plan is what the record promises: config plus the edits applied before
        # this epoch. A difference means the run is not following its own record.
        planned = self.planned_lrs()
        if not 1 <= event.epoch <= len(planned):
            return
        expected = planned[event.epoch - 1]
        if not math.isclose(event.lr, expected, rel_tol=1e-9, abs_tol=0.0):
            self.mismatches.append(
                f"epoch {event.epoch} used lr {format_lr(event.lr)}, "
                f"the plan says {format_lr(expected)}"
            )

    @property
    def fraction_done(self) -> float:
        """Share of the run's batches done, 0..1."""
        if self.started is None or self.config is None:
            return 0.0
        total = self.started.epochs * self.started.steps_per_epoch
        if self.progress is None:
            done = len(self.epochs) * self.started.steps_per_epoch
        else:
            done = (self.progress.epoch - 1) * self.started.steps_per_epoch + self.progress.step
        return min(max(done / total, 0.0), 1.0) if total else 0.0

    def eta(self) -> float | None:
        """Seconds left, extrapolated from this session's pace; None until there is a pace."""
        if self.phase != "running" or self.started is None or self.elapsed <= 0.0:
            return None
        # A resumed run's earlier epochs took no time in this session: leave them out.
        before = (self.started.first_epoch - 1) / self.started.epochs
        frac = (self.fraction_done - before) / (1.0 - before) if before < 1.0 else 1.0
        if frac <= 0.0:
            return None
        return self.elapsed * (1.0 - frac) / frac

    def epoch_label(self) -> str:
        if self.started is None:
            return ""
        total = self.started.epochs
        if self.progress is None:
            return f"epoch {min(len(self.epochs) + 1, total)}/{total}"
        return f"epoch {self.progress.epoch}/{total}"

    def epoch_fraction(self) -> float:
        if self.progress is None:
            return 0.0
        return self.progress.step / self.progress.steps


def format_duration(seconds: float) -> str:
    """'0:07', '12:34', '1:02:03'."""
    seconds = max(round(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def progress_bar(fraction: float, width: int = 10) -> str:
    """A text bar with eighth-block resolution."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if full < width else ""
    return ("█" * full + partial).ljust(width)


def format_rate(samples_per_s: float) -> str:
    if samples_per_s >= 1e6:
        return f"{samples_per_s / 1e6:.1f}M samples/s"
    if samples_per_s >= 1e4:
        return f"{samples_per_s / 1e3:.0f}k samples/s"
    return f"{samples_per_s:,.0f} samples/s"


def status_text(view: RunView, device_hint: str, data_hint: str, width: int = 200) -> str:
    """The status line: device, dataset, epoch k/N and progress, speed, elapsed, ETA.

    Parts that do not fit in `width` are dropped, least important first (the
    device and dataset before the progress), keeping the order they are read in.
    """
    parts: list[tuple[int, str]] = []  # (priority: lower is kept longer, text)
    if view.started is not None:
        s = view.started
        parts += [(5, s.device), (6, f"{s.dataset} {s.n_train:,}/{s.n_test:,}")]
    else:
        parts += [(5, device_hint), (6, data_hint)]
    if view.phase == "idle":
        parts.append((0, "ready: ctrl+r starts"))
    elif view.phase == "starting":
        parts.append((0, "starting: loading torch and data…"))
    else:
        if view.started is not None:
            parts.append((0, f"{view.epoch_label()} {progress_bar(view.epoch_fraction(), 8)}"))
        if view.progress is not None and view.phase == "running":
            parts.append((3, format_rate(view.progress.samples_per_s)))
        parts.append((2, f"{format_duration(view.elapsed)} elapsed"))
        eta = view.eta()
        if eta is not None:
            parts.append((1, f"ETA {format_duration(eta)}"))
        if view.phase == "stopping":
            parts.append((0, "stopping…"))
        elif view.phase in ("completed", "stopped", "failed") and view.end is not None:
            parts.append(
                (0, {"completed": "done", "stopped": "stopped", "failed": "FAILED"}[view.phase])
            )
    return _fit(parts, width)


def _fit(parts: list[tuple[int, str]], width: int) -> str:
    kept = list(parts)
    while len(kept) > 1 and len(" · ".join(t for _, t in kept)) > width:
        kept.remove(max(kept, key=lambda p: p[0]))
    return " · ".join(t for _, t in kept)
