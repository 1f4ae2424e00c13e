"""The dashboard: parameters and log on the left, live plots on the right, status below.

The screen composes and routes. The run controller owns the source of events (a
run in this app's thread, or a run folder); the view folds the events; the
steering draft says what the live fields mean; the widgets draw. Its mixins do
the rest: the run's events on screen (`run_events.py`), the redraws at a bounded
rate (`drawing.py`), the keys' actions (`actions.py`, `sweep_actions.py`).
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
)
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.paths import resolve_data_dir
from steplr_tui.runfolder.text import short_path
from steplr_tui.viewer.controller import RunController
from steplr_tui.viewer.draft import SteeringDraft
from steplr_tui.viewer.fields import FieldsModel
from steplr_tui.viewer.preview import preview_steps
from steplr_tui.viewer.run_view import RunView
from steplr_tui.viewer.screens.actions import KEYS, DashboardActions
from steplr_tui.viewer.screens.cadence import TICK_S, Cadence
from steplr_tui.viewer.screens.drawing import Drawing
from steplr_tui.viewer.screens.layout import size_classes, too_small_text
from steplr_tui.viewer.screens.run_events import RunEvents
from steplr_tui.viewer.screens.sweep_actions import SweepActions
from steplr_tui.viewer.sources import SourceEvents
from steplr_tui.viewer.starter import Starter, TrainFn, no_trainer
from steplr_tui.viewer.widgets.footer import KeyFooter
from steplr_tui.viewer.widgets.params import ParamPanel
from steplr_tui.viewer.widgets.plot_stack import PlotStack
from steplr_tui.viewer.widgets.plots import PlotContext
from steplr_tui.viewer.widgets.restyle import restyled_once
from steplr_tui.viewer.widgets.run_log import RunLog
from steplr_tui.viewer.widgets.status_line import StatusLine

__all__ = ["DashboardScreen", "TrainFn"]

PLAN_FIELDS = ("lr", "step_size", "gamma", "epochs", "scheduler", "milestones", "warmup")
WARM_UP_AFTER_S = 0.3  # after the first frame is written, before torch is imported
# How long a viewer started on a run waits for its record before its first frame: a
# 1,000-epoch run's takes about 0.03 s; a longer one shows "loading" first.
HISTORY_WAIT_S = 0.25


class DashboardScreen(RunEvents, Drawing, DashboardActions, SweepActions, Screen):
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
            self.show_attached_at_launch(path, replay)
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

    # ---- events from the run --------------------------------------------------------------

    @on(SourceEvents)
    def _on_source_events(self, message: SourceEvents) -> None:
        if message.source_id != self.controller.source_id:
            return  # a straggler from a run no longer on screen
        with restyled_once():  # a replay fills the fields, locks and unlocks them
            self._apply_events(message)

    def note(self, *lines: str) -> None:
        """A line of the dashboard's own in the log (an export, a pin)."""
        self.query_one(RunLog).add(list(lines))
        self._dirty.add("log")
