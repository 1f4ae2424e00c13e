"""The three plot panes: LR staircase, training loss, test accuracy.

Each pane rebuilds its figure from plain lists when the screen asks it to
(`redraw`), never on its own; the screen decides how often. The LR is plotted as
log10 values with decade labels because plotext's own log scale breaks when a
figure is built repeatedly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from textual_plotext import PlotextPlot

from steplr_tui.events import EpochEnd
from steplr_tui.schedule import format_lr, safe_log10
from steplr_tui.series import MinMaxSeries

PLAN_COLOR = "gray"
ACTUAL_COLOR = "orange"
BAND_COLOR = (70, 130, 180)  # steel blue: readable on dark and light themes
MEAN_COLOR = "cyan"
EPOCH_COLOR = "orange"
ACC_COLOR = "green"

# The keys go in the border titles, in the plot colours: plotext's own legend is
# drawn over the top-left of the data, where a schedule starts.
LR_TITLE = "LR schedule (log scale) [gray]━ plan[/] [#ff8700]━ used[/]"
LOSS_TITLE = "Training loss [#4682b4]┃ min-max[/] [cyan]━ mean[/] [#ff8700]● epoch[/]"
ACC_TITLE = "Test accuracy (%) [green]●[/]"


class Pane(PlotextPlot):
    """A plot that is rebuilt from scratch on each redraw."""

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
        """x from 0 to `span` epochs, ticked at whole epochs."""
        self.plt.xlim(0, span)
        step = max(1, math.ceil(span / max(self.plot_width // 8, 1)))
        ticks = list(range(0, span + 1, step))
        self.plt.xticks(ticks, [str(t) for t in ticks])
        if self.roomy:
            self.plt.xlabel("epoch")

    @property
    def roomy(self) -> bool:
        """Tall enough for an axis label without squeezing the data."""
        return self.size.height >= 10

    @property
    def plot_width(self) -> int:
        """Columns left for data once the y-axis labels are drawn."""
        return max(self.size.width - 9, 8)


def staircase(values: Sequence[float], start: int = 0) -> tuple[list[float], list[float]]:
    """Points of a step line: epoch t (0-based) spans x from t to t+1."""
    xs: list[float] = []
    ys: list[float] = []
    for i, value in enumerate(values, start=start):
        xs += [i, i + 1]
        ys += [value, value]
    return xs, ys


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
    """Planned staircase for the current fields, with the lr actually used drawn over it."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.planned: list[float] = []
        self.actual: list[float] = []

    def set_data(self, planned: Sequence[float], actual: Sequence[float]) -> None:
        self.planned = list(planned)
        self.actual = list(actual)
        self.redraw()

    def draw(self) -> None:
        plt = self.plt
        if not self.planned:
            return
        levels = self.planned + self.actual
        logs = [safe_log10(v) for v in levels]
        lo, hi = min(logs), max(logs)
        xs, ys = staircase([safe_log10(v) for v in self.planned])
        plt.plot(xs, ys, marker="braille", color=PLAN_COLOR)
        if self.actual:
            xs, ys = staircase([safe_log10(v) for v in self.actual])
            plt.plot(xs, ys, marker="braille", color=ACTUAL_COLOR)
        pad = max((hi - lo) * 0.08, 0.25)
        plt.ylim(lo - pad, hi + pad)
        self.epoch_axis(max(len(self.planned), len(self.actual)))
        ticks, labels = decade_ticks(lo, hi, levels)
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
        d = self.series.downsample(self.plot_width)
        if not d.x and not self.epochs:
            plt.ylim(0, 1)
            plt.yticks([0, 1], ["", ""])
            return
        if d.x:
            # Zig-zag through each column's min and max: a band that keeps spikes visible.
            band_x = [x for x in d.x for _ in (0, 1)]
            band_y = [v for lo, hi in zip(d.lo, d.hi, strict=True) for v in (lo, hi)]
            plt.plot(band_x, band_y, marker="braille", color=BAND_COLOR)
            plt.plot(d.x, d.mean, marker="braille", color=MEAN_COLOR)
        if self.epochs:
            plt.scatter(
                [float(e.epoch) for e in self.epochs],
                [e.train_loss for e in self.epochs],
                marker="●",
                color=EPOCH_COLOR,
            )


class AccuracyPlot(EpochPane):
    """Test accuracy after each epoch, in percent."""

    def draw(self) -> None:
        plt = self.plt
        self.epoch_axis(self.span)
        if not self.epochs:
            plt.ylim(0, 100)
            return
        xs = [float(e.epoch) for e in self.epochs]
        ys = [e.test_acc for e in self.epochs]
        if len(xs) > 1:
            plt.plot(xs, ys, marker="braille", color=ACC_COLOR)
        plt.scatter(xs, ys, marker="●", color=ACC_COLOR)
        lo, hi = min(ys), max(ys)
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
