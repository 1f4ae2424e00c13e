"""The plot column: the LR, loss and metric panes sharing one x axis, and the legend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical

from steplr_tui.viewer.run_view import RunView
from steplr_tui.viewer.widgets.legend import Legend
from steplr_tui.viewer.widgets.plots import (
    LossPlot,
    LrPlot,
    MetricPlot,
    PlotContext,
    accuracy_summary,
    loss_summary,
    loss_title,
    lr_title,
    metric_title,
)


class PlotStack(Vertical):
    """Redraws the panes it is told changed, from the view and one shared context."""

    def __init__(self, context: PlotContext, **kwargs) -> None:
        super().__init__(**kwargs)
        self.context = context

    def compose(self) -> ComposeResult:
        for pane in (LrPlot(id="lr-plot"), LossPlot(id="loss-plot"), MetricPlot(id="acc-plot")):
            pane.context = self.context
            yield pane
        yield Legend(id="legend")

    def draw_lr(
        self,
        planned: Sequence[float],
        actual: Sequence[float],
        pending: Sequence[float],
        pending_from: int,
        subtitle: str,
        fine: Any = None,
        alternatives: Sequence[tuple[str, list[float]]] = (),
    ) -> None:
        pane = self.query_one(LrPlot)
        pane.border_title = lr_title(
            self.context.lr_log,
            bool(pending),
            bool(self.context.edit_epochs),
            [kind for kind, _ in alternatives],
        )
        pane.border_subtitle = subtitle
        pane.set_data(planned, actual, pending, pending_from, fine, alternatives)

    def draw(self, dirty: set[str], view: RunView, span: int) -> None:
        """The loss and metric panes and the legend, where `dirty` says they changed."""
        edited = bool(self.context.edit_epochs)
        if "loss" in dirty:
            loss = self.query_one(LossPlot)
            loss.border_title = loss_title(self.context, edited)
            loss.border_subtitle = loss_summary(view.epochs)
            loss.set_series(view.losses, view.epochs, span)
        if "acc" in dirty:
            metric = self.query_one(MetricPlot)
            names = view.metric_names or ["test_acc"]
            if self.context.metric not in names:
                self.context.metric = names[0]
            metric.border_title = metric_title(self.context.metric, edited, len(names) - 1)
            metric.border_subtitle = accuracy_summary(view.epochs, self.context.metric)
            metric.set_data(view.epochs, span)
        if "legend" in dirty:
            self.query_one(Legend).show(self.context.overlays)
