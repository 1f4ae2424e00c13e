"""The three plot panes: LR staircase, training loss, test accuracy.

Each pane rebuilds its figure from plain lists when the screen asks it to
(`redraw`), never on its own; the screen decides how often. The LR is plotted as
log10 values with decade labels because plotext's own log scale breaks when a
figure is built repeatedly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from textual_plotext import PlotextPlot

from steplr_tui.compare import Overlay
from steplr_tui.events import EpochEnd
from steplr_tui.schedule import format_lr, safe_log10
from steplr_tui.series import MinMaxSeries, line_points, step_points

PLAN_COLOR = "gray"
ACTUAL_COLOR = "orange"
BAND_COLOR = (70, 130, 180)  # steel blue: readable on dark and light themes
MEAN_COLOR = "cyan"
EPOCH_COLOR = "orange"
ACC_COLOR = "green"
PENDING_COLOR = (255, 215, 0)
EDIT_COLOR = (215, 95, 215)
# Faint, distinct from the current run's colours; the legend uses the same ones.
OVERLAY_COLORS = ((135, 135, 175), (175, 135, 175), (135, 175, 150), (180, 165, 125))


def overlay_color(index: int) -> tuple[int, int, int]:
    return OVERLAY_COLORS[index % len(OVERLAY_COLORS)]


def markup_color(rgb: tuple[int, int, int]) -> str:
    """A plot colour as Rich markup names it, for the keys in the titles and legend."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)


@dataclass
class PlotContext:
    """What every pane draws besides its own data: axis choices, edits and overlays."""

    x_iterations: bool = False  # x in iterations (batches) instead of epochs
    lr_log: bool = True
    loss_per_batch: bool = True
    steps_per_epoch: int = 0  # of the current run; 0 until known
    edit_epochs: list[int] = field(default_factory=list)  # boundaries where edits applied
    overlays: list[Overlay] = field(default_factory=list)

    def overlay_x(self, overlay: Overlay, epoch: int) -> float:
        """Where an overlay's epoch lands on this axis (iterations differ with batch size)."""
        if self.x_iterations and self.steps_per_epoch and overlay.steps_per_epoch:
            return epoch * overlay.steps_per_epoch / self.steps_per_epoch
        return float(epoch)


# The keys go in the border titles, in the plot colours: plotext's own legend is
# drawn over the top-left of the data, where a schedule starts.
EDIT_KEY = f" [{markup_color(EDIT_COLOR)}]│ edit[/]"


def lr_title(log: bool = True, pending: bool = False, edits: bool = False) -> str:
    scale = "log scale" if log else "linear"
    keys = "[gray]━ plan[/] [#ff8700]━ used[/]"
    if pending:
        keys += f" [{markup_color(PENDING_COLOR)}]━ pending[/]"
    return f"LR schedule ({scale}) {keys}" + (EDIT_KEY if edits else "")


def loss_title(per_batch: bool = True, edits: bool = False) -> str:
    if per_batch:
        title = "Training loss [#4682b4]┃ min-max[/] [cyan]━ mean[/] [#ff8700]● epoch[/]"
    else:
        title = "Training loss per epoch [#ff8700]●━ mean[/]"
    return title + (EDIT_KEY if edits else "")


def acc_title(edits: bool = False) -> str:
    return "Test accuracy (%) [green]●[/]" + (EDIT_KEY if edits else "")


class Pane(PlotextPlot):
    """A plot that is rebuilt from scratch on each redraw."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.context = PlotContext()

    def redraw(self) -> None:
        plt = self.plt
        plt.clear_figure()
        plt.frame(False)
        self.draw()
        self.refresh()

    def draw(self) -> None:  # pragma: no cover - each pane overrides it
        raise NotImplementedError

    def on_resize(self) -> None:
        # Tick spacing and the axis label depend on the pane's size, which is not
        # known until layout (the first redraw comes before it) and changes with
        # the terminal.
        self.redraw()

    def epoch_axis(self, span: int) -> None:
        """x from 0 to `span` epochs, ticked at whole epochs or at round iteration counts."""
        self.plt.xlim(0, span)
        steps = self.context.steps_per_epoch
        count = max(self.plot_width // 8, 1)
        if self.context.x_iterations and steps:
            ticks, labels = round_ticks(span * steps, count)
            self.plt.xticks([t / steps for t in ticks], labels)
            label = "iteration"
        else:
            ticks, labels = round_ticks(span, count)
            self.plt.xticks(ticks, labels)
            label = "epoch"
        if self.roomy:
            self.plt.xlabel(label)

    def draw_edit_marks(self, span: int) -> None:
        """A vertical line at each boundary where a live edit took effect."""
        for epoch in self.context.edit_epochs:
            if 0 < epoch < span:
                self.plt.vertical_line(epoch, color=EDIT_COLOR)

    def draw_overlays(
        self, values_of, span: float, log: bool = False, steps: bool = False
    ) -> list[float]:
        """Each overlay's per-epoch values as a faint line (a staircase with `steps`: an
        lr holds for a whole epoch); returns the y values drawn."""
        drawn: list[float] = []
        for i, overlay in enumerate(self.context.overlays):
            values = values_of(overlay)
            # Its epochs that fit on this axis: with x in iterations, a run with a
            # smaller batch size has more of them per epoch of the current run.
            fit = [
                v
                for epoch, v in enumerate(values, start=1)
                if self.context.overlay_x(overlay, epoch) <= span
            ]
            ys = [safe_log10(v) if log else v for v in fit]
            if steps:
                # A step line can't skip an epoch: it ends where the record has a hole.
                good = next((n for n, y in enumerate(ys) if not math.isfinite(y)), len(ys))
                xs, ys = step_points(ys[:good], self.plot_width)
                xs = [self.context.overlay_x(overlay, x) for x in xs]
            else:
                finite = [(e, y) for e, y in enumerate(ys, start=1) if math.isfinite(y)]
                xs, ys = line_points(
                    [self.context.overlay_x(overlay, e) for e, _ in finite],
                    [y for _, y in finite],
                    self.plot_width,
                )
            if xs:
                self.plt.plot(xs, ys, marker="braille", color=overlay_color(i))
                drawn += ys
        return drawn

    @property
    def roomy(self) -> bool:
        """Tall enough for an axis label without squeezing the data."""
        return self.size.height >= 10

    @property
    def plot_width(self) -> int:
        """Columns left for data once the y-axis labels are drawn."""
        return max(self.size.width - 9, 8)


def round_ticks(total: int, count: int) -> tuple[list[int], list[str]]:
    """About `count` round ticks (1, 2 or 5 times a power of ten) from 0 to `total`."""
    raw = max(total / max(count, 1), 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    ticks = list(range(0, total + 1, int(step)))
    return ticks, [_short_count(t) for t in ticks]


def _short_count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:g}M"
    if n >= 1000:
        return f"{n / 1e3:g}k"
    return str(n)


def decade_ticks(lo: float, hi: float, levels: Sequence[float]) -> tuple[list[float], list[str]]:
    """Tick positions (log10 units) and labels for an lr axis spanning lo..hi."""
    if hi - lo < 1.0:
        distinct = sorted(set(levels))
        chosen = distinct if len(distinct) <= 4 else [distinct[0], distinct[-1]]
        return [safe_log10(v) for v in chosen], [format_lr(v) for v in chosen]
    first, last = math.floor(lo), math.ceil(hi)
    step = max(1, math.ceil((last - first) / 5))
    ticks = list(range(last, first - 1, -step))[::-1]
    return [float(t) for t in ticks], [f"1e{t}" for t in ticks]


class LrPlot(Pane):
    """The planned staircase, the lr actually used over it, and a pending edit's future."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.planned: list[float] = []
        self.actual: list[float] = []
        self.pending: list[float] = []
        self.pending_from = 0  # 0-based epoch where the pending future starts

    def set_data(
        self,
        planned: Sequence[float],
        actual: Sequence[float],
        pending: Sequence[float] = (),
        pending_from: int = 0,
    ) -> None:
        self.planned = list(planned)
        self.actual = list(actual)
        self.pending = list(pending)
        self.pending_from = pending_from
        self.redraw()

    def draw(self) -> None:
        plt = self.plt
        if not self.planned:
            return
        log = self.context.lr_log
        span = max(len(self.planned), len(self.actual))
        y = safe_log10 if log else float
        shown = self.draw_overlays(lambda o: o.lrs, span, log=log, steps=True)
        levels = self.planned + self.actual + self.pending
        values = [y(v) for v in levels] + shown
        lo, hi = min(values), max(values)
        self.draw_edit_marks(span)
        # The lr used is drawn over the plan; where the two agree the plan can't be
        # seen, so only its future is drawn (half the points of a long run), from
        # the last epoch used on, so the drop after it is still drawn.
        done = len(self.actual)
        covered = max(done - 1, 0) if self.planned[:done] == self.actual else 0
        for series, start, color in (
            (self.planned[covered:], covered, PLAN_COLOR),
            (self.pending, self.pending_from, PENDING_COLOR),
            (self.actual, 0, ACTUAL_COLOR),
        ):
            if series:
                xs, ys = step_points([y(v) for v in series], self.plot_width, start)
                plt.plot(xs, ys, marker="braille", color=color)
        self.epoch_axis(span)
        if log:
            pad = max((hi - lo) * 0.08, 0.25)
            plt.ylim(lo - pad, hi + pad)
            ticks, labels = decade_ticks(lo, hi, levels)
            # A decade beyond the limits would be printed under the plot, over the
            # x axis ("1e-50  100" at 80x24).
            kept = [
                (t, label)
                for t, label in zip(ticks, labels, strict=True)
                if lo - pad <= t <= hi + pad
            ]
            ticks, labels = [t for t, _ in kept], [label for _, label in kept]
        else:
            plt.ylim(0, hi * 1.08 if hi > 0 else 1)
            ticks = [0.0, hi / 2, hi] if hi > 0 else [0.0]
            labels = ["0", *(format_lr(t) for t in ticks[1:])]
        plt.yticks(ticks, labels)


class EpochPane(Pane):
    """A pane of per-epoch results over an x axis of `span` epochs."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.epochs: list[EpochEnd] = []
        self.span = 1

    def set_data(self, epochs: Sequence[EpochEnd], span: int) -> None:
        self.epochs = list(epochs)
        self.span = max(span, 1)
        self.redraw()

    def draw_epoch_points(
        self, xs: list[float], ys: list[float], color: str, line: bool = True
    ) -> None:
        """A marker per epoch, joined by a line. With more epochs than columns the
        markers would merge into a bar, so the line alone is drawn, through each
        column's min and max, and markers without a line are left out."""
        if not xs:
            return
        if len(xs) > self.plot_width:
            if line:
                points = line_points(xs, ys, self.plot_width)
                self.plt.plot(*points, marker="braille", color=color)
            return
        if line and len(xs) > 1:
            self.plt.plot(xs, ys, marker="braille", color=color)
        self.plt.scatter(xs, ys, marker="●", color=color)


class LossPlot(EpochPane):
    """Per-batch training loss (min-max band and mean per column) and each epoch's mean."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.series = MinMaxSeries()

    def set_series(self, series: MinMaxSeries, epochs: Sequence[EpochEnd], span: int) -> None:
        self.series = series
        self.set_data(epochs, span)

    def draw(self) -> None:
        plt = self.plt
        self.epoch_axis(self.span)
        shown = self.draw_overlays(lambda o: o.losses, self.span)
        per_batch = self.context.loss_per_batch
        d = self.series.downsample(self.plot_width) if per_batch else None
        if not (d and d.x) and not self.epochs and not shown:
            plt.ylim(0, 1)
            plt.yticks([0, 1], ["", ""])
            return
        self.draw_edit_marks(self.span)
        if d and d.x:
            # Zig-zag through each column's min and max: a band that keeps spikes visible.
            band_x = [x for x in d.x for _ in (0, 1)]
            band_y = [v for lo, hi in zip(d.lo, d.hi, strict=True) for v in (lo, hi)]
            plt.plot(band_x, band_y, marker="braille", color=BAND_COLOR)
            plt.plot(d.x, d.mean, marker="braille", color=MEAN_COLOR)
        if self.epochs:
            xs = [float(e.epoch) for e in self.epochs]
            ys = [e.train_loss for e in self.epochs]
            self.draw_epoch_points(xs, ys, EPOCH_COLOR, line=not per_batch)


class AccuracyPlot(EpochPane):
    """Test accuracy after each epoch, in percent."""

    def draw(self) -> None:
        plt = self.plt
        self.epoch_axis(self.span)
        shown = self.draw_overlays(lambda o: o.accs, self.span)
        if not self.epochs and not shown:
            plt.ylim(0, 100)
            return
        self.draw_edit_marks(self.span)
        xs = [float(e.epoch) for e in self.epochs]
        ys = [e.test_acc for e in self.epochs]
        self.draw_epoch_points(xs, ys, ACC_COLOR)
        lo, hi = min(ys + shown), max(ys + shown)
        pad = max((hi - lo) * 0.15, 0.5)
        plt.ylim(max(lo - pad, 0.0), min(hi + pad, 100.0))


def accuracy_summary(epochs: Sequence[EpochEnd]) -> str:
    if not epochs:
        return "measured on the test set after each epoch"
    best = max(epochs, key=lambda e: e.test_acc)
    return f"last {epochs[-1].test_acc:.2f}% · best {best.test_acc:.2f}% (epoch {best.epoch})"


def loss_summary(epochs: Sequence[EpochEnd]) -> str:
    if not epochs:
        return "appears once training starts"
    return f"epoch {epochs[-1].epoch} mean {epochs[-1].train_loss:.4f}"
