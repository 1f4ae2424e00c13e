"""The dashboard: parameters on the left, live plots on the right, status below.

The screen owns the one training worker. The worker reports only by posting
`TrainerEvent`s; the screen folds them into a `RunView` and marks panes dirty,
and a timer redraws the dirty ones at a bounded rate, so the UI's cost does not
grow with the number of batches.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, RichLog, Static
from textual.worker import Worker, WorkerState, get_current_worker

from steplr_tui.compare import MAX_OVERLAYS, Overlay
from steplr_tui.config import FieldError, TrainConfig
from steplr_tui.events import EpochEnd, Event, Notice, RunEnded, RunStarted, epoch_report
from steplr_tui.jobs import Job, config_from_record, resume_problem
from steplr_tui.messages import DeviceProbed, TrainerEvent
from steplr_tui.paths import resolve_data_dir
from steplr_tui.run_view import RunView, status_text
from steplr_tui.runs import RunNotFound, read_run, resolve_runs_dir, short_name
from steplr_tui.schedule import ScheduleEdit, format_lr, plan
from steplr_tui.screens.runs import RunsChoice, RunsScreen
from steplr_tui.steering import EditBox
from steplr_tui.widgets.params import LIVE_FIELDS, ParamPanel
from steplr_tui.widgets.phases import PhaseTable
from steplr_tui.widgets.plots import (
    AccuracyPlot,
    LossPlot,
    LrPlot,
    PlotContext,
    acc_title,
    accuracy_summary,
    loss_summary,
    loss_title,
    lr_title,
    markup_color,
    overlay_color,
)

TrainFn = Callable[[Job, Callable[[], "bool | str"], Callable[[Event], None]], Any]

# While training, the status line redraws twice a second and the plots every
# 1.5 s: each plot repaint is a few kB to the terminal and ~10 ms of the GIL that
# the training thread shares. At 1 s, with epochs 4x a second, the terminal got
# 22 KB/s (benchmarks/: bytes to the terminal, UI overhead).
REDRAW_INTERVAL_S = 0.5
PLOT_INTERVAL_S = 1.5
PLOTS = frozenset({"lr", "loss", "acc", "log", "phases"})
LOG_LINES = 2000
MIN_WIDTH, MIN_HEIGHT = 60, 18
NARROW_WIDTH = 100  # below this the parameter column slims down
PLAN_FIELDS = ("lr", "step_size", "gamma", "epochs")
# Training images per epoch for the iteration axis before a run has said how many.
PREVIEW_TRAIN_SIZE = {"sample": 10_000}
DEFAULT_TRAIN_SIZE = 60_000


def real_train(job: Job, should_stop: Callable[[], bool | str], emit: Callable[[Event], None]):
    """The real trainer, imported in the worker thread so torch never loads on the UI thread."""
    from steplr_tui.jobs import run_job

    return run_job(job, should_stop, emit, replay=True)


class DashboardScreen(Screen):
    """Set parameters, preview the schedule, run and watch training."""

    BINDINGS = [
        Binding("ctrl+r", "start", "Start", priority=True),
        Binding("ctrl+s", "stop", "Stop", priority=True),
        Binding("ctrl+o", "runs", "Runs", priority=True),
        Binding("f2", "toggle_x", "X axis", priority=True),
        Binding("f3", "toggle_lr_scale", "Log/lin", priority=True),
        Binding("f4", "toggle_loss", "Loss", priority=True),
        Binding("f5", "toggle_phases", "Phases", priority=True),
        Binding("f6", "export", "Export", priority=True),
        Binding("f7", "pin", "Pin", priority=True),
    ]

    def __init__(
        self,
        config: TrainConfig,
        train_fn: TrainFn = real_train,
        start: bool = False,
        warm_up: bool = True,
        cursor_blink: bool = True,
        runs_dir: Path | None = None,
        resume: Path | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.runs_dir = runs_dir
        self.resume_at_launch = resume
        self.train_fn = train_fn
        self.start_at_launch = start
        self.warm_up = warm_up
        self.cursor_blink = cursor_blink
        self.view = RunView()
        self.run_id = 0
        self.device_hint = "device auto" if config.device == "auto" else config.device
        self._stop = threading.Event()
        self._stop_reason: str | bool = True
        # Set by the worker thread itself when its training function returns, so a
        # thread can tell even while the event loop is stuck.
        self.training_done = threading.Event()
        self.training_done.set()
        self._worker: Worker | None = None
        self._dirty: set[str] = set()
        self._last_plot_draw = 0.0
        self._pending_log: list[str] = []
        self._plan_values = {name: getattr(config, name) for name in PLAN_FIELDS}
        self._plan_note = ""
        # Resolved once: the status line redraws twice a second.
        self._data_dir = _short_path(str(resolve_data_dir(config.data_dir)))
        self.log_lines: deque[str] = deque(maxlen=LOG_LINES)  # unwrapped, for reading back
        # One context shared by the three panes: axis modes, edit marks, overlays.
        self.context = PlotContext(steps_per_epoch=_preview_steps({}, config))
        self._edits: EditBox | None = None  # the running job's edit channel
        self._draft: ScheduleEdit | None = None  # typed, valid, not yet queued
        self._queued: ScheduleEdit | None = None  # handed to the trainer for the next boundary
        self._edit_note = ""
        self._mismatches_shown = 0

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            with Vertical(id="left"):
                panel = ParamPanel(self.config, cursor_blink=self.cursor_blink, id="params")
                panel.border_title = "Parameters"
                yield panel
                log = RichLog(id="log", max_lines=LOG_LINES, wrap=True, markup=False, min_width=20)
                log.border_title = "Log"
                yield log
                phases = PhaseTable(id="phases")
                phases.border_title = "Phases"
                yield phases
            with Vertical(id="plots"):
                for pane in (LrPlot(id="lr-plot"), LossPlot(id="loss-plot")):
                    pane.context = self.context
                    yield pane
                acc = AccuracyPlot(id="acc-plot")
                acc.context = self.context
                yield acc
                yield Static("", id="legend")
        yield Static("", id="too-small")
        yield Static("", id="notice")
        yield Static("", id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._check_size(self.app.size.width, self.app.size.height)
        self._dirty = {"lr", "loss", "acc", "status", "notice", "legend"}
        self.redraw()
        self.set_interval(REDRAW_INTERVAL_S, self._tick)
        if self.resume_at_launch is not None:
            self.call_after_refresh(self.resume_run, self.resume_at_launch)
        elif self.start_at_launch:
            self.call_after_refresh(self.action_start)
        if self.warm_up:
            self.call_after_refresh(self._start_warm_up)

    # ---- layout -------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size.width, event.size.height)

    def _check_size(self, width: int, height: int) -> None:
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        self.set_class(small, "-too-small")
        self.set_class(width < NARROW_WIDTH, "-narrow")
        self._dirty.add("status")
        if small:
            self.query_one("#too-small", Static).update(
                f"Terminal too small: {width}x{height}.\n"
                f"steplr-tui needs at least {MIN_WIDTH}x{MIN_HEIGHT}; enlarge the window.\n"
                "Training goes on meanwhile; ctrl+q quits."
            )

    # ---- parameters and preview ----------------------------------------------

    @on(ParamPanel.Changed)
    def _on_params_changed(self, event: ParamPanel.Changed) -> None:
        if self.view.active:
            self._track_edit(event.values, event.errors)
            return
        bad = [name for name in PLAN_FIELDS if name in event.errors]
        if bad:
            self._plan_note = f"fix {', '.join(bad)} to update the preview"
        else:
            self._plan_note = ""
            self._plan_values = {name: event.values[name] for name in PLAN_FIELDS}
        # After a run, the axis stays that run's; an invalid batch size keeps the last one.
        if self.view.started is None and "batch_size" in event.values:
            self.context.steps_per_epoch = _preview_steps(event.values, self.config)
        self._dirty |= {"loss", "acc", "status"}  # the x span follows epochs
        self._redraw_lr()  # the preview follows typing without waiting for the timer

    # ---- live edits ------------------------------------------------------------

    def _track_edit(self, values: dict[str, Any], errors: dict[str, str]) -> None:
        """Turn what the live fields say into a draft edit against the run's current values."""
        bad = [name for name in LIVE_FIELDS if name in errors]
        if bad:
            self._draft = None
            self._edit_note = f"fix {', '.join(bad)} to edit the schedule"
        else:
            now = self.view.live_values()
            changed = {n: values[n] for n in LIVE_FIELDS if n in now and values[n] != now[n]}
            draft = ScheduleEdit(**changed)
            self._edit_note = ""
            self._draft = draft if draft and draft != self._queued else None
            if not draft and self._queued is not None:
                self._queue(None)  # the fields are back to the run's values: withdraw
        self._redraw_lr()

    @on(Input.Submitted)
    @on(Input.Blurred)
    def _on_field_done(self, event: Input.Submitted | Input.Blurred) -> None:
        # Enter, or leaving the field, commits a typed edit: a half-typed "0.1" on
        # the way to "0.15" must never reach the trainer.
        field = (event.input.id or "").removeprefix("field-")
        draft = self._draft
        # Only the field that holds a change commits it: another field's blur can
        # arrive after the user has started typing here.
        if (
            self.view.active
            and field in LIVE_FIELDS
            and draft
            and getattr(draft, field) is not None
        ):
            self._queue(draft)

    def _queue(self, edit: ScheduleEdit | None) -> None:
        config = self.view.config
        if edit is not None and config is not None and self.view.current_epoch >= config.epochs:
            self._edit_note = "the run ends with this epoch: no boundary left to edit at"
            self._redraw_lr()
            return
        self._queued = edit
        self._draft = None
        if self._edits is not None:
            self._edits.propose(edit)
        if edit is not None:
            self._log(f"Edit queued: {edit.describe()}, from epoch {self.view.current_epoch + 1}")
        self._redraw_lr()

    def _edit_applied(self, event: EpochEnd) -> None:
        edit = event.edit
        assert edit is not None
        self._log(f"Edit applied after epoch {event.epoch}: {edit.describe()}")
        # A newer edit typed after the trainer took this one is still in the box.
        self._queued = self._edits.peek() if self._edits is not None else None
        # Show the values the run now holds, unless the fields hold a newer edit
        # (typed, or queued after the trainer took this one), which they must keep.
        if self._draft is None and self._queued is None:
            self.query_one(ParamPanel).set_live_values(self.view.live_values())

    def _pending_edit(self) -> ScheduleEdit | None:
        return self._draft or self._queued

    def _edit_subtitle(self) -> str:
        if self._edit_note:
            return self._edit_note
        boundary = self.view.current_epoch
        if self._draft is not None:
            return f"typed {self._draft.describe()} · enter queues it for after epoch {boundary}"
        if self._queued is not None:
            return f"queued {self._queued.describe()} · applies after epoch {boundary}"
        return ""

    # ---- views ----------------------------------------------------------------

    def action_toggle_x(self) -> None:
        self.context.x_iterations = not self.context.x_iterations
        self._redraw_all_panes()

    def action_toggle_lr_scale(self) -> None:
        self.context.lr_log = not self.context.lr_log
        self._redraw_all_panes()

    def action_toggle_loss(self) -> None:
        self.context.loss_per_batch = not self.context.loss_per_batch
        self._redraw_all_panes()

    def action_toggle_phases(self) -> None:
        self.toggle_class("-phases")
        self._dirty.add("phases")
        self.redraw()

    def _redraw_all_panes(self) -> None:
        self._dirty |= {"lr", "loss", "acc"}
        self.redraw()

    # ---- overlays and export ----------------------------------------------------

    def action_pin(self) -> None:
        """Overlay the current (or last) run, to compare the next ones against it."""
        view = self.view
        if not view.epochs or view.config is None:
            self.notify("Nothing to pin yet: a run needs a finished epoch.")
            return
        key = view.record or f"session-{self.run_id}"
        if any(o.key == key for o in self.context.overlays):
            self._set_overlays([o for o in self.context.overlays if o.key != key])
            self.notify(f"Run {self.run_id} unpinned.")
            return
        steps = view.started.steps_per_epoch if view.started else 0
        name = short_name(Path(view.record).name) if view.record else f"run {self.run_id}"
        overlay = Overlay.from_epochs(key, name, view.config.as_dict(), view.epochs, steps)
        self._set_overlays([*self.context.overlays, overlay])
        self.notify(f"Run {self.run_id} pinned: it stays drawn faintly behind the next runs.")

    def _set_overlays(self, overlays: list[Overlay]) -> None:
        if len(overlays) > MAX_OVERLAYS:
            self.notify(f"At most {MAX_OVERLAYS} overlays: the oldest was dropped.")
            overlays = overlays[-MAX_OVERLAYS:]
        self.context.overlays = overlays
        self._dirty |= {"lr", "loss", "acc", "legend"}
        self.redraw()

    def action_export(self) -> None:
        from steplr_tui.export import run_snippet, write_csv
        from steplr_tui.screens.export import ExportScreen

        if self.view.record is None:
            self.notify("Nothing to export yet: start or resume a run first.")
            return
        try:
            info = read_run(Path(self.view.record))
            csv_path = write_csv(info)
        except (RunNotFound, OSError) as exc:
            self.notify(f"Export failed: {exc}", title="Export", severity="error")
            return
        self._log(f"Exported {csv_path}")
        self.app.push_screen(ExportScreen(str(csv_path), run_snippet(info)))

    # ---- actions ---------------------------------------------------------------

    def action_start(self) -> None:
        if self.view.active:
            self.notify("A run is in progress: ctrl+s stops it.", severity="warning")
            return
        if self._worker is not None and not self._worker.is_finished:
            self.notify("The last run is still stopping; try again in a moment.")
            return
        panel = self.query_one(ParamPanel)
        values, errors = panel.read()
        if errors:
            name, message = next(iter(errors.items()))
            panel.focus_field(name)
            self.notify(f"Not started: {message}", title="Invalid parameter", severity="error")
            return
        try:
            config = self.config.with_values(**values).validated()
        except FieldError as exc:
            self.notify(f"Not started: {exc}", title="Invalid parameter", severity="error")
            return
        self._begin(Job(config, self.runs_dir))

    def _begin(self, job: Job) -> None:
        config = self.config = job.config
        self.view.begin(config)
        self._edits = EditBox()
        job = Job(job.config, job.runs_dir, job.resume, edits=self._edits)
        self._draft = self._queued = None
        self._edit_note = ""
        self._mismatches_shown = 0
        self.run_id += 1
        verb = "resumes" if job.resume else "starts"
        self._log(
            f"Run {self.run_id} {verb}: {config.optimizer} lr={config.lr:g} "
            f"step_size={config.step_size} gamma={config.gamma:g} epochs={config.epochs} "
            f"batch={config.batch_size} seed={config.seed}"
        )
        self.query_one(ParamPanel).set_running(True)
        self._dirty |= {"lr", "loss", "acc", "status", "notice"}
        self.redraw()
        self._launch(job, self.run_id)

    def action_runs(self) -> None:
        runs_dir = self.runs_dir or resolve_runs_dir(None)
        overlaid = {o.key for o in self.context.overlays}
        self.app.push_screen(RunsScreen(runs_dir, overlaid), callback=self._on_runs_closed)

    def _on_runs_closed(self, choice: RunsChoice | None) -> None:
        if choice is None:
            return
        # Pins of runs that have no record stay; recorded ones follow the table's marks.
        kept = [o for o in self.context.overlays if o.key.startswith("session-")]
        self._set_overlays(kept + [Overlay.from_run(run) for run in choice.overlays])
        if choice.resume is not None:
            self.resume_run(choice.resume)

    def resume_run(self, path: Path) -> None:
        """Continue a recorded run where its last checkpoint left it."""
        if self.view.active or (self._worker is not None and not self._worker.is_finished):
            self.notify("A run is in progress: ctrl+s stops it first.", severity="warning")
            return
        try:
            info = read_run(path)
            config = config_from_record(info, self.config)
        except RunNotFound as exc:
            self.notify(str(exc), title="Cannot resume", severity="error")
            return
        problem = resume_problem(info)
        if problem:
            self.notify(problem, title="Cannot resume", severity="warning")
            return
        self.query_one(ParamPanel).set_values(config)
        self._begin(Job(config, self.runs_dir, resume=path))

    def action_stop(self) -> None:
        if not self.view.active:
            self.notify("Nothing is running.")
            return
        self._stop_reason = True
        self._stop.set()
        if self.view.phase != "stopping":
            self.view.phase = "stopping"
            self._dirty.add("status")

    def _launch(self, job: Job, run_id: int) -> None:
        stop = self._stop = threading.Event()
        done = self.training_done = threading.Event()
        train_fn = self.train_fn
        post = self.post_message

        def work() -> None:
            worker = get_current_worker()

            def should_stop() -> bool | str:
                if stop.is_set():
                    return self._stop_reason
                return "stopped: the app quit" if worker.is_cancelled else False

            def emit(event: Event) -> None:
                post(TrainerEvent(run_id, event))

            try:
                train_fn(job, should_stop, emit)
            finally:
                done.set()

        self._worker = self.run_worker(
            work, name=f"train-{run_id}", group="training", thread=True, exit_on_error=False
        )

    def stop_training(self, reason: str | bool = True) -> None:
        """Ask the worker to stop at its next batch (also used when the app quits)."""
        self._stop_reason = reason
        self._stop.set()

    # ---- events from the worker --------------------------------------------------

    @on(TrainerEvent)
    def _on_trainer_event(self, message: TrainerEvent) -> None:
        if message.run_id != self.run_id:
            return  # a straggler from a run that was replaced
        event = message.event
        was_stopping = self.view.phase == "stopping"
        self._dirty |= self.view.apply(event)
        if was_stopping and self.view.phase == "running":
            self.view.phase = "stopping"
        if isinstance(event, EpochEnd):
            for line in epoch_report(event):
                self._log(line)
            if event.edit:
                self._edit_applied(event)
            self._report_mismatches()
        elif isinstance(event, RunStarted):
            self.context.steps_per_epoch = event.steps_per_epoch
            self._log(f"{event.device} · {event.dataset} {event.n_train:,}/{event.n_test:,}")
        elif isinstance(event, Notice):
            self._log(f"{event.level}: {event.text}")
        elif isinstance(event, RunEnded):
            self._finish(event)

    def _report_mismatches(self) -> None:
        for text in self.view.mismatches[self._mismatches_shown :]:
            self._log(f"warning: {text}")
            self.notify(text, title="LR differs from the plan", severity="warning", timeout=10)
        self._mismatches_shown = len(self.view.mismatches)

    def _finish(self, event: RunEnded) -> None:
        panel = self.query_one(ParamPanel)
        panel.set_running(False)
        # Edits typed during the run changed the live fields: preview the next run from them.
        self._on_params_changed(ParamPanel.Changed(*panel.read()))
        if self._pending_edit() is not None:
            self._log("The run ended before the typed edit could apply; it was dropped.")
        self._draft = self._queued = None
        self._edit_note = ""
        self._edits = None
        self._dirty.add("lr")
        if event.status == "completed":
            self._log(f"Run {self.run_id} completed in {event.elapsed:.1f}s.")
        elif event.status == "stopped":
            self._log(f"Run {self.run_id} stopped after {event.epochs_done} epoch(s).")
        else:
            self._log(f"Run {self.run_id} FAILED: {event.message}")
            self.notify(event.message, title="Run failed", severity="error", timeout=10)
        self.redraw()

    @on(Worker.StateChanged)
    def _on_worker_state(self, event: Worker.StateChanged) -> None:
        # A trainer that raised instead of reporting: keep the app usable all the same.
        if event.worker is self._worker and event.state == WorkerState.ERROR and self.view.active:
            error = event.worker.error
            self._on_trainer_event(
                TrainerEvent(
                    self.run_id,
                    RunEnded(
                        "failed", f"{type(error).__name__}: {error}", len(self.view.epochs), 0.0
                    ),
                )
            )

    # ---- warm-up -------------------------------------------------------------------

    def _start_warm_up(self) -> None:
        # A daemon thread, not a worker: quitting must not wait for torch's import.
        threading.Thread(target=self._probe_device, name="steplr-warm-up", daemon=True).start()

    def _probe_device(self) -> None:
        try:
            from steplr_tui.trainer import describe_device, resolve_device

            text = describe_device(resolve_device("auto"))
        except Exception:
            return  # the run itself will report any real problem
        self.post_message(DeviceProbed(text))

    @on(DeviceProbed)
    def _on_device_probed(self, message: DeviceProbed) -> None:
        self.device_hint = f"auto: {message.description}"
        self._dirty.add("status")

    # ---- drawing ------------------------------------------------------------------

    def _tick(self) -> None:
        """The timer: redraw what changed, holding plot repaints to PLOT_INTERVAL_S in a run."""
        if self.view.active and time.monotonic() - self._last_plot_draw < PLOT_INTERVAL_S:
            held = self._dirty & PLOTS
            self._dirty -= held
            self.redraw()
            self._dirty |= held
        else:
            self.redraw()

    def redraw(self) -> None:
        """Redraw everything that changed since the last call."""
        dirty, self._dirty = self._dirty, set()
        if not dirty:
            return
        if dirty & PLOTS:
            self._last_plot_draw = time.monotonic()
        self.context.edit_epochs = sorted(self.view.edits)  # marked on every pane
        span = self.view.config.epochs if self.view.active and self.view.config else self._span()
        if "lr" in dirty:
            self._redraw_lr()
        edited = bool(self.context.edit_epochs)
        if "loss" in dirty:
            loss = self.query_one(LossPlot)
            loss.border_title = loss_title(self.context.loss_per_batch, edited)
            loss.border_subtitle = loss_summary(self.view.epochs)
            loss.set_series(self.view.losses, self.view.epochs, span)
        if "acc" in dirty:
            acc = self.query_one(AccuracyPlot)
            acc.border_title = acc_title(edited)
            acc.border_subtitle = accuracy_summary(self.view.epochs)
            acc.set_data(self.view.epochs, span)
        if "phases" in dirty and self.has_class("-phases"):
            self.query_one(PhaseTable).show(self.view.epochs)
        if "legend" in dirty:
            self._redraw_legend()
        if "log" in dirty and self._pending_log:
            # One write for all of them: each write wraps, measures and lays out the
            # log again, and a redraw can carry a dozen lines.
            self.query_one("#log", RichLog).write("\n".join(self._pending_log))
            self._pending_log.clear()
        if "status" in dirty:
            # One line, fitted to the width: its size never changes, so no layout pass
            # (twice a second while training).
            self.query_one("#status", Static).update(
                status_text(self.view, self.device_hint, self._data_hint(), self.size.width - 2),
                layout=False,
            )
        if "notice" in dirty:
            notice = self.view.notice
            widget = self.query_one("#notice", Static)
            widget.update(f"⚠ {notice.text}" if notice else "")
            widget.display = notice is not None

    def _span(self) -> int:
        return max(int(self._plan_values["epochs"]), len(self.view.epochs), 1)

    def _redraw_lr(self) -> None:
        lr_plot = self.query_one(LrPlot)
        actual = [e.lr for e in self.view.epochs]
        pending_lrs: list[float] = []
        start = 0
        if self.view.active and self.view.config is not None:
            # The plan follows the run's state: its config and the edits applied so far.
            planned = self.view.planned_lrs()
            subtitle = self._mismatch_note() or self._edit_subtitle() or self._run_summary()
            pending = self._pending_edit()
            if pending is not None:
                start = self.view.current_epoch
                pending_lrs = self.view.planned_lrs(pending)[start:]
        else:
            v = self._plan_values
            schedule = plan(v["lr"], v["step_size"], v["gamma"], v["epochs"])
            planned = schedule.lrs
            subtitle = self._plan_note or schedule.summary()
            subtitle = self._mismatch_note() or subtitle
        lr_plot.border_title = lr_title(
            self.context.lr_log, bool(pending_lrs), bool(self.context.edit_epochs)
        )
        lr_plot.border_subtitle = subtitle
        lr_plot.set_data(planned, actual, pending_lrs, start)

    def _run_summary(self) -> str:
        now = self.view.live_values()
        if not now:
            return ""
        edited = f" · {len(self.view.edits)} edit(s)" if self.view.edits else ""
        return (
            f"now lr {format_lr(float(now['lr']))} · step_size {now['step_size']} "
            f"· gamma {float(now['gamma']):g}{edited}"
        )

    def _mismatch_note(self) -> str:
        if not self.view.mismatches:
            return ""
        return f"⚠ {self.view.mismatches[-1]}"

    def _redraw_legend(self) -> None:
        legend = self.query_one("#legend", Static)
        overlays = self.context.overlays
        legend.display = bool(overlays)
        parts = []
        for i, o in enumerate(overlays):
            parts.append(f"[{markup_color(overlay_color(i))}]━ {o.label}[/] [dim]{o.name}[/]")
        legend.update("overlays: " + " · ".join(parts) if parts else "")

    def _data_hint(self) -> str:
        fields = self.query("#field-dataset")
        dataset = str(fields.first().value) if fields else self.config.dataset
        return f"data {dataset} in {self._data_dir}"

    def _log(self, line: str) -> None:
        # Written with the next redraw: a write repaints the whole log pane, and
        # epochs can end several times a second.
        self.log_lines.append(line)
        self._pending_log.append(line)
        self._dirty.add("log")


def _preview_steps(values: dict[str, Any], config: TrainConfig) -> int:
    """Batches per epoch for the iteration axis, before a run has said how many."""
    n = PREVIEW_TRAIN_SIZE.get(values.get("dataset", config.dataset), DEFAULT_TRAIN_SIZE)
    return -(-n // int(values.get("batch_size", config.batch_size)))


def _short_path(path: str, limit: int = 40) -> str:
    home = str(Path.home())
    if path.startswith(home):
        path = "~" + path[len(home) :]
    return path if len(path) <= limit else "…" + path[-(limit - 1) :]
