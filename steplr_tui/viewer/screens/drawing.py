"""How the dashboard redraws (a mixin of the screen): what changed is marked dirty, and
a timer redraws it at the rate `Cadence` allows, so the UI's cost does not grow with the
number of batches; the LR pane's plan is drawn after the frame that shows a typed key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Static

from steplr_tui.viewer.preview import lr_pane_data
from steplr_tui.viewer.widgets.params import ParamPanel
from steplr_tui.viewer.widgets.plot_stack import PlotStack
from steplr_tui.viewer.widgets.run_log import RunLog
from steplr_tui.viewer.widgets.status_line import StatusLine

if TYPE_CHECKING:  # pragma: no cover
    from steplr_tui.viewer.screens.dashboard import DashboardScreen as _Base
else:
    _Base = object


class Drawing(_Base):
    """The panes, the log, the status line and the notice, redrawn from the view."""

    def _tick(self) -> None:
        """The timer: redraw what changed, at the rate `Cadence` allows."""
        local = not self.controller.attached
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
