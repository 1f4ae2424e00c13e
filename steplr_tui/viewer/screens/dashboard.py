"""The dashboard: parameters and log on the left, live plots on the right, status below.

The screen composes and routes. The run controller owns the source of events (a
run in this app's thread, or a run folder); the view folds the events; the
steering draft says what the live fields mean; the widgets draw. A timer
redraws what changed at a bounded rate, so the UI's cost does not grow with the
number of batches.
"""

from __future__ import annotations

import time
from pathlib import Path

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Static

from steplr_tui.runfolder import (
    EDIT_FIELDS,
    Decision,
    EpochEnd,
    RunEnded,
    RunOpened,
    RunStarted,
)
from steplr_tui.runfolder.params import FIELD_SPECS, TrainConfig
from steplr_tui.runfolder.paths import resolve_data_dir
from steplr_tui.runfolder.text import short_path
from steplr_tui.viewer.controller import RunController
from steplr_tui.viewer.draft import SteeringDraft, describe_request
from steplr_tui.viewer.fields import FieldsModel, Shown
from steplr_tui.viewer.heap import SETTLE_AFTER_S, settle, settle_when_done
from steplr_tui.viewer.preview import fields_note, lr_pane_data, preview_steps
from steplr_tui.viewer.run_view import RunView
from steplr_tui.viewer.screens.actions import KEYS, DashboardActions
from steplr_tui.viewer.screens.cadence import TICK_S, Cadence
from steplr_tui.viewer.screens.layout import size_classes, too_small_text
from steplr_tui.viewer.screens.sweep_actions import SweepActions
from steplr_tui.viewer.sources import SourceEvents
from steplr_tui.viewer.starter import Starter, TrainFn, no_trainer
from steplr_tui.viewer.widgets.footer import KeyFooter
from steplr_tui.viewer.widgets.params import ParamPanel
from steplr_tui.viewer.widgets.plot_stack import PlotStack
from steplr_tui.viewer.widgets.plots import PlotContext
from steplr_tui.viewer.widgets.restyle import restyled_once
from steplr_tui.viewer.widgets.run_log import RunLog, event_lines
from steplr_tui.viewer.widgets.status_line import StatusLine

__all__ = ["DashboardScreen", "TrainFn"]

PLAN_FIELDS = ("lr", "step_size", "gamma", "epochs", "scheduler", "milestones", "warmup")
WARM_UP_AFTER_S = 0.3  # after the first frame is written, before torch is imported
# How long a viewer started on a run waits for its record before its first frame: a
# 1,000-epoch run's takes about 0.05 s; a longer one shows "loading" first.
HISTORY_WAIT_S = 0.25


class DashboardScreen(DashboardActions, SweepActions, Screen):
    """Set parameters, preview the schedule, run or attach, watch and steer."""

    BINDINGS = KEYS

    def __init__(
        self,
        config: TrainConfig,
        train_fn: TrainFn | None = None,
        start: bool = False,
        warm_up: bool = True,
        cursor_blink: bool = True,
        runs_dir: Path | None = None,
        resume: Path | None = None,
        attach: Path | None = None,
        notes: tuple[str, ...] = (),
        sweep: Path | None = None,
        starter: Starter | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.runs_dir = runs_dir
        self.starter = starter  # the run side, handed in by the command line
        self.train_fn = train_fn or (starter.train if starter else no_trainer)
        what = "resume" if resume else "attach" if attach else "start" if start else None
        what = "sweep" if sweep else what
        self.at_launch = (what, sweep or resume or attach)
        self.warm_up = warm_up
        self.cursor_blink = cursor_blink
        self.notes = notes
        self.view = RunView()
        if attach is not None:
            # Asked for from the start: until its record is read nothing may start a run
            # (a ctrl+r typed as the app opens is handled before the screen is mounted).
            self.view.loading = attach.name
        self.fields = FieldsModel()  # what the fields show, and which of them the user typed in
        self.draft = SteeringDraft(fields=self.fields)
        detach = starter.detach if starter else None
        self.controller = RunController(self.post_message, self.run_worker, self.train_fn, detach)
        self.draft.sender = self.controller.sender
        self._replay: SourceEvents | None = None  # a run attached to at launch, read ahead
        self._dirty: set[str] = set()
        self._cadence = Cadence()
        # (a run in progress, the fields it takes edits of); None: loading a run.
        self._locked: tuple[bool, frozenset[str]] | None = (False, frozenset())
        self._focus_after_loading: str | None = None
        self._lr_soon = False  # an LR pane redraw is due after the next frame
        self._typed_at = -1e9  # when a field last changed during a run
        self._plan_values = {name: getattr(config, name) for name in PLAN_FIELDS}
        self._plan_note = ""
        self._resumed = False  # the first ScreenResume has been posted
        self._data_dir = short_path(str(resolve_data_dir(config.data_dir)))
        self.context = PlotContext(steps_per_epoch=preview_steps({}, config))
        self.sweep_cursors: dict[str, int] = {}  # sweep folder: the trial last attached to

    @property
    def log_lines(self) -> list[str]:
        return list(self.query_one(RunLog).kept)

    def compose(self) -> ComposeResult:
        what, path = self.at_launch
        if what == "attach":
            # The first frame shows the run, not "loading" and then the run, when its
            # record is read in time; its fields are made locked and empty when not.
            self._replay = self.controller.attach(path, wait_s=HISTORY_WAIT_S)
        # The size classes before the first style pass: set on mount, they restyled
        # every widget once more before the first frame.
        for name, wanted in size_classes(self.app.size.width, self.app.size.height).items():
            self.set_class(wanted, name, update=False)
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield ParamPanel(
                    self.config,
                    cursor_blink=self.cursor_blink,
                    loading=what == "attach" and self._replay is None,
                    id="params",
                )
                yield RunLog(id="log")
                # The phase table (f5) is mounted when first shown: hidden until then,
                # it cost the first frame 20 ms.
            yield PlotStack(self.context, id="plots")
        yield Static("", id="too-small", markup=False)
        yield Static("", id="notice", markup=False)
        device = "device auto" if self.config.device == "auto" else self.config.device
        yield StatusLine(device, id="status")
        yield KeyFooter()

    def post_message(self, message: Message) -> bool:
        if isinstance(message, events.ScreenResume) and not self._resumed:
            # The first resume comes as the app starts, just after every widget was
            # styled as it mounted, by the same stylesheet: styling all of them again
            # took 35 ms of the first frame.
            self._resumed = True
            message.refresh_styles = False
        return super().post_message(message)

    def on_mount(self) -> None:
        self._check_size(self.app.size.width, self.app.size.height)
        self.note(*(f"note: {n}" for n in self.notes))
        self._dirty = {"lr", "loss", "acc", "status", "notice", "legend"}
        what, path = self.at_launch
        if what == "attach":
            replay, self._replay = self._replay, None
            if replay is not None and any(
                isinstance(e, (RunOpened, RunEnded)) for e in replay.events
            ):
                self._show_replay(path, replay)  # redraws, with the run's record
            else:
                # Not read yet (it comes as a message), or a record that does not yet
                # say what the run is (its first line cut): loading, locked, until it does.
                self.show_loading(path)
                if replay is not None:
                    self._on_source_events(replay)
            self.overlay_parent(path)
        else:
            self.redraw()
        self.set_interval(TICK_S, self._tick)
        if what not in (None, "attach"):
            act = {"resume": self.resume_run, "sweep": self.open_sweep_folder}
            self.call_after_refresh(*((act[what], path) if what in act else (self.action_start,)))
        probe = self.starter.warm_up if self.starter else None
        if self.warm_up and probe is not None and what != "attach":
            # torch, imported ahead for a run started here; a viewer of a run elsewhere
            # needs none (it took a second of CPU and 800 MB while following a run).
            # Once the first frame is on the terminal: a thread importing torch holds the
            # GIL for much of a second, and the frame waited for it.
            status = self.query_one(StatusLine)
            self.app.call_after_display(
                lambda: self.set_timer(WARM_UP_AFTER_S, lambda: status.warm_up(probe))
            )

    def on_unmount(self) -> None:
        # However the app ends (ctrl+q says so first), a run folder's watcher stops with
        # it and a run of this process is told to stop.
        self.controller.leave()

    # ---- layout ---------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size.width, event.size.height)

    def _check_size(self, width: int, height: int) -> None:
        classes = size_classes(width, height)
        narrow_changed = self.has_class("-narrow") != classes["-narrow"]
        for name, wanted in classes.items():
            self.set_class(wanted, name)
        if narrow_changed:
            self.refresh_bindings()  # the footer drops keys when narrow
        self._dirty.add("status")
        if classes["-too-small"]:
            self.query_one("#too-small", Static).update(too_small_text(width, height))

    # ---- fields ---------------------------------------------------------------------

    @on(ParamPanel.Changed)
    def _on_params_changed(self, event: ParamPanel.Changed) -> None:
        if self.view.active:
            self._typed_at = time.monotonic()
            self._redraw_lr_soon()  # the typed edit's future, once the key is on screen
            return
        if self.view.loading:
            return  # the fields say "loading the run…": nothing to plan from yet
        # The fields as they are now: the message may be older than the run's record.
        panel = self.query_one(ParamPanel)
        values, errors = panel.read()
        bad = [name for name in PLAN_FIELDS if name in errors]
        if bad == ["epochs"] and panel.notes.get("epochs") and panel.text_of("epochs") == "":
            # A script that gave no epoch count: its plan spans the epochs it ran.
            values["epochs"] = max(self.view.horizon(), 1)
            bad = []
        if bad:
            self._plan_note = f"fix {', '.join(bad)} to update the preview"
        else:
            self._plan_note = ""
            self._plan_values = {name: values[name] for name in PLAN_FIELDS}
        if self.view.started is None and "batch_size" in values:
            self.context.steps_per_epoch = preview_steps(values, self.config)
        self._dirty |= {"loss", "acc", "status"}  # the x span follows epochs
        # After the frame that draws the key; a burst of changes (every field's first
        # value, as the dashboard starts) redraws the plan once.
        self._redraw_lr_soon()

    @on(Input.Submitted)
    @on(Input.Blurred)
    def _on_field_done(self, event: Input.Submitted | Input.Blurred) -> None:
        # Enter, or leaving the field, commits a typed edit: a half-typed "0.1" on
        # the way to "0.15" never reaches the run.
        name = (event.input.id or "").removeprefix("field-")
        if not self.view.active or name not in EDIT_FIELDS:
            return
        if name in self.query_one(ParamPanel).read()[1]:
            # The panel's message says why (a warmup as long as the run, an empty
            # milestones list): nothing is sent.
            self._redraw_lr()
            return
        request = self.draft.commit(self.view, name, event.input.value)
        if request is not None:
            self.controller.send(request)
        self._sync_fields()
        self._redraw_lr()

    def _texts(self) -> dict[str, str]:
        return self.query_one(ParamPanel).field_texts()

    def _sync_fields(self, everything: bool = False) -> None:
        """Show the run's record in every field the user did not type in (focused or not:
        a field shows what the run holds until the user types there)."""
        if self.view.opened is None and not self.view.loading:
            return  # no run on screen: the fields are the user's form
        shown = self.fields.to_write(
            self.view, self._texts(), everything, keep=self.draft.in_flight()
        )
        if shown:
            self.query_one(ParamPanel).show(shown)

    def _show_form(self) -> None:
        """The fields as the form for the next run: this dashboard's own config."""
        shown = {
            name: Shown(spec.format(getattr(self.config, name)))
            for name, spec in FIELD_SPECS.items()
        }
        self.fields.reset({name: s.text for name, s in shown.items()})
        self.query_one(ParamPanel).show(shown)

    def show_loading(self, path: Path) -> None:
        """A run was asked for: until its record is read, the fields say so and are locked,
        and nothing starts (no built-in default is ever shown as the run's)."""
        focused = self.app.focused
        field = focused.id if focused is not None else None
        self._focus_after_loading = field if (field or "").startswith("field-") else "field-lr"
        self.view.reset()
        self.view.loading = path.name
        self.query_one(RunLog).reset()
        with restyled_once():  # emptied and locked: each field restyled once
            self._sync_fields(everything=True)
            self.query_one(ParamPanel).set_running(True, live=())
        self._locked = None
        self.refresh_bindings()
        self._dirty |= {"lr", "loss", "acc", "status", "notice", "legend", "phases"}
        self.redraw()

    def _show_replay(self, path: Path, replay: SourceEvents) -> None:
        """The record of the run attached to at launch, read before the first frame: the
        fields show it at once (the app's own defaults never reach the screen)."""
        self.view.loading = path.name
        self._locked = None
        self._focus_after_loading = "field-lr"
        self._on_source_events(replay)

    # ---- events from the run --------------------------------------------------------------

    @on(SourceEvents)
    def _on_source_events(self, message: SourceEvents) -> None:
        if message.source_id != self.controller.source_id:
            return  # a straggler from a run no longer on screen
        with restyled_once():  # a replay fills the fields, locks and unlocks them
            self._apply_events(message)

    def _apply_events(self, message: SourceEvents) -> None:
        log = self.query_one(RunLog)
        lines: list[str] = []
        events = message.events  # everything that arrived until now: the newest state
        for event in events:
            if isinstance(event, RunOpened) and event.first_epoch <= 1:
                log.reset()
                lines.clear()
            self._dirty |= self.view.apply(event)
            lines += event_lines(event, me=self.controller.sender)
            if isinstance(event, RunOpened):
                self._opened(event)
            elif isinstance(event, RunStarted) and event.steps_per_epoch:
                self.context.steps_per_epoch = event.steps_per_epoch
            elif isinstance(event, EpochEnd):
                for text in self.view.untold_mismatches():
                    lines.append(f"warning: {text}")
                    self.notify(
                        text, title="LR differs from the plan", severity="warning", markup=False
                    )
            elif isinstance(event, RunEnded):
                lines += self._ended()
        if "fields" in self._dirty:  # before the fields plan the next run, if it ended
            self._dirty.discard("fields")
            self._sync_fields()
        log.add(lines)
        self._dirty.add("log")
        # Once per batch of events: a replay opens and ends a run, and restyling costs.
        # What locks the fields: a run in progress, and the fields it takes edits of
        # (known once its scheduler is: a script's plan may come after it opened).
        live = frozenset(self.view.live_values()) if self.view.active else frozenset()
        if self._locked != (self.view.active, live) and not self.view.loading:
            self._locked = (self.view.active, live)
            if self.view.opened is None:  # a run that ended before saying what it was
                self._show_form()
            self.query_one(ParamPanel).set_running(self.view.active, live)
            self.refresh_bindings()  # Stop in the footer during a run, Start and Detach not
            if self._focus_after_loading is not None:
                now = self.app.focused  # locked fields passed focus on (to the phase table)
                if now is None or not (now.id or "").startswith("field-"):
                    # Back where it was (lr, on attach): typing lands in a field.
                    self.query_one(f"#{self._focus_after_loading}").focus()
                self._focus_after_loading = None
            if not self.view.active:  # the fields now preview the next run
                self._on_params_changed(ParamPanel.Changed(*self.query_one(ParamPanel).read()))
        self.draft.settle(self.view)
        if message.replay:
            # A history just read: once it is on screen (a collection of a long
            # history's objects would otherwise come before its frame).
            self.set_timer(SETTLE_AFTER_S, lambda: settle(self.app))
        elif any(isinstance(e, RunEnded) for e in events):
            settle_when_done(self.app, self.controller.training_done)
        if message.replay:
            self._dirty |= {"lr", "loss", "acc", "status", "phases", "legend"}
            self.redraw()
        elif any(isinstance(e, Decision) for e in events):
            self._redraw_lr()  # what the subtitle says of an edit is right at once

    def _opened(self, event: RunOpened) -> None:
        # The fields show this run's record, whoever started it: none of it was typed.
        self._sync_fields(everything=True)
        self.draft.reset()
        self.context.steps_per_epoch = 0

    def _ended(self) -> list[str]:
        end = self.view.end
        # What was typed or sent and will never apply is said, never dropped silently.
        unanswered = [
            describe_request(s.request)
            for rid, s in self.draft.sent.items()
            if rid not in self.view.decisions
        ]
        lost = self.fields.ended(self.view, self._texts(), unanswered)
        alerts = {"FAILED": ("Run failed", 10), "INTERRUPTED": ("Run INTERRUPTED", 15)}
        if end is not None and end.status.value in alerts:
            title, seconds = alerts[end.status.value]
            self.notify(end.message, title=title, severity="error", timeout=seconds, markup=False)
        note = fields_note(self.view)
        return lost + ([note] if note else [])

    # ---- drawing ----------------------------------------------------------------------

    def _tick(self) -> None:
        """The timer: redraw what changed, at the rate `Cadence` allows."""
        local = not (self.controller and self.controller.attached)
        held = self._cadence.held(self._dirty, self.view.active, local, typed_at=self._typed_at)
        self._dirty -= held
        self.redraw()
        self._dirty |= held

    def request_redraw(self, *panes: str) -> None:
        """Redraw `panes` ("lr", "loss", "acc", "status", "notice", "legend", "phases",
        "log") at the next tick, at the rate the cadence allows."""
        self._dirty.update(panes)

    def redraw(self, *panes: str) -> None:
        """Redraw `panes` and everything else that changed since the last call, now."""
        self._dirty.update(panes)
        dirty, self._dirty = self._dirty, set()
        dirty.discard("fields")
        if not dirty:
            return
        self._cadence.drew(dirty)
        self.context.edit_epochs = sorted(self.view.edits)  # marked on every pane
        if "lr" in dirty:
            self._redraw_lr()
        span = self.view.horizon() if self.view.active else self._span()
        self.query_one(PlotStack).draw(dirty, self.view, span)
        if "phases" in dirty and self.has_class("-phases"):
            self.query_one("#phases").show(self.view.epochs)  # type: ignore[attr-defined]
        if "log" in dirty and not self.query_one(RunLog).flush():
            self._dirty.add("log")  # laid out yet? then at the next redraw
        if "status" in dirty:
            self._redraw_status()
        if "notice" in dirty:
            notice = self.view.notice
            widget = self.query_one("#notice", Static)
            widget.update(f"⚠ {notice.text}" if notice else "")
            widget.display = notice is not None

    def _redraw_status(self) -> None:
        data = f"data {self.query_one(ParamPanel).text_of('dataset')} in {self._data_dir}"
        attached = self.controller.attached
        self.query_one(StatusLine).show(self.view, data, attached)

    def _redraw_lr_soon(self) -> None:
        """Redraw the LR pane after the next frame: a typed key is drawn first (a plot
        takes tens of ms on a loaded machine), and a burst of keys redraws it once."""
        if not self._lr_soon:
            self._lr_soon = True
            self.call_after_refresh(self._redraw_lr_now)

    def _redraw_lr_now(self) -> None:
        self._lr_soon = False
        self._redraw_lr()

    def _redraw_lr(self) -> None:
        panel = self.query_one(ParamPanel)
        _values, errors = panel.read()
        texts = panel.field_texts()
        note = self.fields.lost_subtitle(texts) or self._plan_note
        data = lr_pane_data(
            self.view,
            self.draft,
            texts,
            errors,
            self._plan_values,
            note,
            self.config,  # its --scheduler: the preview is that scheduler's plan
        )
        self.query_one(PlotStack).draw_lr(
            data.planned,
            data.actual,
            data.pending,
            data.pending_from,
            data.subtitle,
            data.fine,
            data.alternatives,
        )

    def _span(self) -> int:
        return max(int(self._plan_values["epochs"]), len(self.view.epochs), 1)

    def note(self, *lines: str) -> None:
        """A line of the dashboard's own in the log (an export, a pin)."""
        self.query_one(RunLog).add(list(lines))
        self._dirty.add("log")
