"""What the dashboard does with the run's events (a mixin of the screen, which routes
them here): the view folds them, the log says them, the fields show the run's record
and lock while it runs, and a run asked for shows as loading until its record is read
(no built-in default is ever shown as the run's)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from steplr_tui.runfolder import Decision, EpochEnd, RunEnded, RunOpened, RunStarted
from steplr_tui.runfolder.params import FIELD_SPECS
from steplr_tui.viewer.draft import describe_request
from steplr_tui.viewer.fields import Shown
from steplr_tui.viewer.heap import SETTLE_AFTER_S, settle, settle_when_done
from steplr_tui.viewer.preview import fields_note
from steplr_tui.viewer.sources import SourceEvents
from steplr_tui.viewer.widgets.params import ParamPanel
from steplr_tui.viewer.widgets.restyle import restyled_once
from steplr_tui.viewer.widgets.run_log import RunLog, event_lines

if TYPE_CHECKING:  # pragma: no cover
    from steplr_tui.viewer.screens.dashboard import DashboardScreen as _Base
else:
    _Base = object


class RunEvents(_Base):
    """The run's events on the dashboard: folded, logged, and shown in the fields."""

    def show_attached_at_launch(self, path: Path, replay: SourceEvents | None) -> None:
        """The run attached to at launch, its record read ahead (`replay`) or not yet."""
        if replay is not None and any(isinstance(e, (RunOpened, RunEnded)) for e in replay.events):
            self._show_replay(path, replay)  # redraws, with the run's record
        else:
            # Not read yet (it comes as a message), or a record that does not yet say
            # what the run is (its first line cut): loading, locked, until it does.
            self.show_loading(path)
            if replay is not None:
                self._on_source_events(replay)
        self.overlay_parent(path)

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
