"""The three plot panes: LR schedule, training loss, and a per-epoch metric (test accuracy).

Each pane rebuilds its figure from plain lists when the screen asks it to
(`redraw`), never on its own; the screen decides how often. The three share one
x alignment: every y axis is labelled in the same width, so an epoch lands in
the same column in each pane. Lines are drawn in braille sub-cells and the
per-epoch markers in whole cells, so each marker (and each LR level's label) is
placed on the cell row its line is drawn in. Log scales are drawn as log10
values with labels in the data's units, because plotext's own log scale breaks
when a figure is built repeatedly.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from textual.app import RenderResult
from textual.geometry import Size
from textual_plotext import PlotextPlot

from steplr_tui.runfolder import EpochEnd
from steplr_tui.runfolder.losses import MinMaxSeries
from steplr_tui.runfolder.schedule import format_lr, safe_log10
from steplr_tui.viewer.compare import Overlay
from steplr_tui.viewer.series import line_points, step_points

# Colours that read the same on a 16-colour terminal: none of them becomes red there
# (an orange "used" line turned bright red and read as an error).
PLAN_COLOR = (135, 135, 135)
ACTUAL_COLOR = (255, 175, 0)  # amber; bright yellow on 16 colours
BAND_COLOR = (70, 130, 180)  # steel blue: readable on dark and light themes
MEAN_COLOR = (0, 255, 255)
SMOOTH_COLOR = (255, 255, 255)
EPOCH_COLOR = (255, 175, 0)
ACC_COLOR = (0, 215, 95)
PENDING_COLOR = (95, 215, 255)  # sky blue; bright cyan on 16 colours
EDIT_COLOR = (215, 95, 215)
# StepLR's alternatives in the preview: dim, apart from the plan's grey and each other.
ALTERNATIVE_COLORS = ((95, 95, 135), (95, 135, 95), (135, 95, 95))
# Faint, distinct from the current run's colours; the legend uses the same ones.
OVERLAY_COLORS = ((135, 135, 175), (175, 135, 175), (135, 175, 150), (180, 165, 125))
# Every pane's y labels take this many columns, so the x axes line up.
Y_LABEL_WIDTH = 8
SMOOTHING = (0.0, 0.6, 0.9, 0.99)  # f9 cycles through these (TensorBoard's EMA weight)


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
    loss_log: bool = False
    smoothing: float = 0.0
    metric: str = "test_acc"
    steps_per_epoch: int = 0  # of the current run; 0 until known
    edit_epochs: list[int] = field(default_factory=list)  # boundaries where edits applied
    overlays: list[Overlay] = field(default_factory=list)

    def overlay_x(self, overlay: Overlay, epoch: int) -> float:
        """Where an overlay's epoch lands on this axis (iterations differ with batch size)."""
        if self.x_iterations and self.steps_per_epoch and overlay.steps_per_epoch:
            return epoch * overlay.steps_per_epoch / self.steps_per_epoch
        return float(epoch)


def _key(color: tuple[int, int, int], text: str) -> str:
    return f"[{markup_color(color)}]{text}[/]"


# The keys go in the border titles, in the plot colours: plotext's own legend is
# drawn over the top-left of the data, where a schedule starts.
EDIT_KEY = " " + _key(EDIT_COLOR, "│ edit")


def lr_title(
    log: bool = True, pending: bool = False, edits: bool = False, alternatives: Sequence[str] = ()
) -> str:
    scale = "log scale" if log else "linear"
    keys = f"{_key(PLAN_COLOR, '━ plan')} {_key(ACTUAL_COLOR, '━ used')}"
    if pending:
        keys += " " + _key(PENDING_COLOR, "━ pending")
    for i, kind in enumerate(alternatives):
        keys += " " + _key(ALTERNATIVE_COLORS[i % 3], f"━ {kind}")
    return f"LR schedule ({scale}) {keys}" + (EDIT_KEY if edits else "")


def loss_title(context: PlotContext, edits: bool = False) -> str:
    scale = " (log)" if context.loss_log else ""
    if context.loss_per_batch:
        title = f"Training loss{scale} {_key(BAND_COLOR, '┃ min-max')} {_key(MEAN_COLOR, '━ mean')}"
        if context.smoothing:
            title += " " + _key(SMOOTH_COLOR, f"━ EMA {context.smoothing:g}")
        title += " " + _key(EPOCH_COLOR, "● epoch")
    else:
        title = f"Training loss per epoch{scale} {_key(EPOCH_COLOR, '●━ mean')}"
    return title + (EDIT_KEY if edits else "")


METRIC_TITLES = {"test_acc": "Test accuracy (%)"}


def metric_title(name: str, edits: bool = False, others: int = 0) -> str:
    # A script names its metrics: "acc[top1]" is a name, not markup.
    title = METRIC_TITLES.get(name, name.replace("_", " ").replace("[", "\\["))
    more = f" [dim](ctrl+t: {others} more)[/]" if others else ""
    return f"{title} {_key(ACC_COLOR, '●')}{more}" + (EDIT_KEY if edits else "")


def nice_step(span: float, count: int) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) for about `count` ticks."""
    raw = max(span / max(count, 1), 1e-300)
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))


def nice_ticks(lo: float, hi: float, count: int) -> tuple[float, float, list[float], list[str]]:
    """Round limits and ticks covering lo..hi: (lower, upper, ticks, labels)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0, [0.0, 1.0], ["0", "1"]
    if hi <= lo:
        pad = abs(lo) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad
    step = nice_step(hi - lo, count)

    def whole(q: float, down: bool) -> int:
        near = round(q)
        if abs(q - near) < 1e-9:
            return near
        return math.floor(q) if down else math.ceil(q)

    first = whole(lo / step, True) * step
    last = whole(hi / step, False) * step
    n = round((last - first) / step)
    ticks = [first + i * step for i in range(n + 1)]
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) + (1 if _has_half(step) else 0)
    labels = [_fit_label(f"{t:.{decimals}f}") for t in ticks]
    return first, last, ticks, labels


def _has_half(step: float) -> bool:
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    return abs(mantissa - 2.5) < 1e-6


def _fit_label(text: str) -> str:
    """A y label in exactly Y_LABEL_WIDTH columns, right-aligned (so axes line up)."""
    if len(text) > Y_LABEL_WIDTH:
        with contextlib.suppress(ValueError):
            text = f"{float(text):.3g}".replace("e+0", "e").replace("e-0", "e-")
        text = text[:Y_LABEL_WIDTH]
    return text.rjust(Y_LABEL_WIDTH)


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


def log_ticks(lo: float, hi: float, rows: int) -> list[float]:
    """Round values for a log axis over log10 lo..hi, at most one every two rows: 1, 2
    and 5 times powers of ten, else fewer of them, else every k-th decade (k round)."""
    limit = max(rows // 2, 2)
    # An lr that decayed below the smallest float is 0: the axis starts where floats do.
    lo, hi = max(lo, -323.0), min(max(hi, -323.0), 308.0)
    for mults in ((1, 2, 5), (1, 3), (1,)):
        out = [
            value
            for exp in range(math.floor(lo) - 1, math.ceil(hi) + 1)
            for m in mults
            if (value := m * 10.0**exp) > 0 and lo <= math.log10(value) <= hi
        ]
        if 2 <= len(out) <= limit:
            return out
    first, last = math.ceil(lo), math.floor(hi)
    if last > first:
        raw = max((last - first) / max(limit - 1, 1), 1.0)
        power = 10 ** math.floor(math.log10(raw))
        step = int(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))
        exps = [e for e in range(first, last + 1) if e % step == 0]
        if len(exps) >= 2:
            return [10.0**e for e in exps]
        return [10.0**first, 10.0**last]
    bottom, top = 10**lo, 10**hi
    _a, _b, ticks, _labels = nice_ticks(bottom, top, max(rows // 3, 2))
    return [t for t in ticks if t > 0 and lo <= math.log10(t) <= hi] or [bottom, top]


class Pane(PlotextPlot):
    """A plot that is rebuilt from scratch on each redraw."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.context = PlotContext()
        self._built_for: Size | None = None  # the size the figure was last built at

    def redraw(self) -> None:
        """Rebuild the figure from the pane's data: at once where the pane has its size,
        else as it is first drawn. Tick spacing and the axis label depend on the size,
        which is not known until layout: a figure built before would be drawn once
        wrong and built again just after (twice the work of a first frame)."""
        self._built_for = None
        if self.size.area:
            self._build()
        self.refresh()

    def _build(self) -> None:
        plt = self.plt
        plt.clear_figure()
        plt.frame(False)
        self.draw()
        self._built_for = self.size

    def render(self) -> RenderResult:
        if self._built_for != self.size:  # the first frame, or the terminal resized
            self._build()
        return super().render()

    def draw(self) -> None:  # pragma: no cover - each pane overrides it
        raise NotImplementedError

    @property
    def roomy(self) -> bool:
        """Tall enough for an axis label without squeezing the data."""
        return self.size.height >= 10

    @property
    def plot_width(self) -> int:
        """Columns of data: the pane less its y labels (the same in every pane)."""
        return max(self.size.width - Y_LABEL_WIDTH, 8)

    @property
    def canvas_height(self) -> int:
        """Rows of data: the pane less the x tick labels and the x axis label."""
        return max(self.size.height - 1 - (1 if self.roomy else 0), 1)

    def snap(self, y: float, lo: float, hi: float) -> float:
        """The y whose whole-cell row is the row a braille line through `y` is drawn in."""
        rows = self.canvas_height
        if rows < 2 or not hi > lo or not math.isfinite(y):
            return y
        u = (y - lo) / (hi - lo)
        sub = math.floor(round(0.5 + (4 * rows - 1) * u, 8))
        row = min(max(sub // 4, 0), rows - 1)
        if row == rows - 1:
            return hi  # exactly: lo + (hi - lo) can land a hair above hi, off the axis
        return lo + (hi - lo) * row / (rows - 1)

    def y_axis(self, lo: float, hi: float, ticks: list[float], labels: list[str]) -> None:
        self.plt.ylim(lo, hi)
        kept = [(t, lab) for t, lab in zip(ticks, labels, strict=True) if lo <= t <= hi]
        if not kept:
            kept = [(lo, ""), (hi, "")]
        self.plt.yticks([t for t, _ in kept], [_fit_label(lab.strip()) for _, lab in kept])

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
        self, values_of, span: float, transform=None, steps: bool = False
    ) -> list[float]:
        """Each overlay's per-epoch values as a faint line (a staircase with `steps`: an
        lr holds for a whole epoch), clipped to the current run's span; returns the y
        values drawn."""
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
            ys = [transform(v) if transform else v for v in fit]
            if steps:
                # A step line can't skip an epoch: it ends where the record has a hole
                # (and a branch's starts at its branch point).
                lead = next((n for n, y in enumerate(ys) if math.isfinite(y)), len(ys))
                good = next(
                    (n for n, y in enumerate(ys) if n >= lead and not math.isfinite(y)), len(ys)
                )
                xs, ys = step_points(ys[lead:good], self.plot_width, start=lead)
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


def lr_ticks(
    pane: Pane, lo: float, hi: float, levels: Sequence[float], log: bool
) -> tuple[list[float], list[str]]:
    """Labels at the lr levels drawn, each on the row its line is drawn in, one level a
    row (the highest and the lowest first); round values where a long run has more
    levels than can be told apart."""
    transform = safe_log10 if log else float
    distinct = sorted({v for v in levels if v > 0 or not log}, reverse=True)
    rows = pane.canvas_height
    if distinct and len(distinct) <= 3 * rows:
        span = (hi - lo) / max(rows - 1, 1)
        placed = [(pane.snap(transform(v), lo, hi), v) for v in distinct]
        chosen = [placed[0]]
        if len(placed) > 1 and abs(placed[-1][0] - placed[0][0]) >= span - 1e-12:
            chosen.append(placed[-1])
        for y, v in placed[1:-1]:
            if all(abs(y - other) >= span - 1e-12 for other, _ in chosen):
                chosen.append((y, v))
        chosen.sort(reverse=True)
        ticks = [y for y, _ in chosen]
        labels = [format_lr(v) if v > 0 else "0" for _, v in chosen]
        if not log and 0.0 not in ticks:
            ticks.append(0.0)
            labels.append("0")
        return ticks, labels
    if log:
        values = log_ticks(lo, hi, rows)
        ticks, labels = [math.log10(t) for t in values], [format_lr(t) for t in values]
        if distinct:  # the highest lr drawn is labelled, rather than the padding above it
            top = pane.snap(transform(distinct[0]), lo, hi)
            row = (hi - lo) / max(rows - 1, 1) - 1e-12
            kept = [(t, lab) for t, lab in zip(ticks, labels, strict=True) if t < top - row]
            if all(abs(top - t) >= row for t, _ in kept):
                ticks, labels = [top] + [t for t, _ in kept], [format_lr(distinct[0])]
                labels += [lab for _, lab in kept]
        return ticks, labels
    _a, _b, ticks, labels = nice_ticks(lo, hi, max(rows // 3, 2))
    return ticks, [format_lr(t) if t > 0 else "0" for t in ticks]


class LrPlot(Pane):
    """The planned staircase, the lr actually used over it, and a pending edit's future."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.planned: list[float] = []
        self.actual: list[float] = []
        self.pending: list[float] = []
        self.pending_from = 0  # 0-based epoch where the pending future starts
        # Per-step lrs (preview.FineLrs) of a scheduler stepped once a batch, or None.
        self.fine: Any = None
        # Faint (kind, lrs) curves of StepLR's alternatives, while the user types.
        self.alternatives: list[tuple[str, list[float]]] = []

    def set_data(
        self,
        planned: Sequence[float],
        actual: Sequence[float],
        pending: Sequence[float] = (),
        pending_from: int = 0,
        fine: Any = None,
        alternatives: Sequence[tuple[str, list[float]]] = (),
    ) -> None:
        self.planned = list(planned)
        self.actual = list(actual)
        self.pending = list(pending)
        self.pending_from = pending_from
        self.fine = fine
        self.alternatives = list(alternatives)
        self.redraw()

    def draw(self) -> None:
        plt = self.plt
        if not self.planned and not self.actual:
            return
        log = self.context.lr_log
        span = max(len(self.planned), len(self.actual), 1)
        y = safe_log10 if log else float
        shown = self.draw_overlays(lambda o: o.lrs, span, y if log else None, steps=True)
        levels = self.planned + self.actual + self.pending
        values = [y(v) for v in levels] + shown
        if self.fine is not None:  # per-step lrs: their extremes set the scale too
            values += [y(v) for v in self.fine.planned + self.fine.actual]
        for _kind, lrs in self.alternatives:
            values += [y(v) for v in lrs]
        lo, hi = min(values), max(values)
        if log:
            pad = min(max((hi - lo) * 0.08, 0.25), 1.0)  # at most a decade
            lo, hi = lo - pad, hi + pad
        else:
            lo, hi = 0.0, (hi * 1.08 if hi > 0 else 1.0)
        self.draw_edit_marks(span)
        # The lr used is drawn over the plan; where the two agree the plan can't be
        # seen, so only its future is drawn (half the points of a long run), from
        # the last epoch used on, so the drop after it is still drawn.
        if self.fine is not None:
            self._draw_fine(y)
            self.epoch_axis(span)
            ticks, labels = lr_ticks(self, lo, hi, levels, log)
            self.y_axis(lo, hi, ticks, labels)
            return
        for i, (_kind, lrs) in enumerate(self.alternatives):  # under the plan, faintly
            xs, ys = step_points([y(v) for v in lrs], self.plot_width, 0)
            plt.plot(xs, ys, marker="braille", color=ALTERNATIVE_COLORS[i % 3])
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
        ticks, labels = lr_ticks(self, lo, hi, levels, log)
        self.y_axis(lo, hi, ticks, labels)

    def _draw_fine(self, y) -> None:
        """The lr at every step as a curve: the plan from where it starts, the lrs used
        over it (x in epochs, `steps` steps to an epoch)."""
        fine = self.fine
        for series, start, color in (
            (fine.planned, fine.start, PLAN_COLOR),
            (fine.actual, 0, ACTUAL_COLOR),
        ):
            if series:
                xs = [start + i / fine.steps for i in range(len(series))]
                xs, ys = line_points(xs, [y(v) for v in series], self.plot_width * 2)
                self.plt.plot(xs, ys, marker="braille", color=color)


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
        self, xs: list[float], ys: list[float], color, lo: float, hi: float, line: bool = True
    ) -> None:
        """A marker per epoch, on its line's row, joined by the line. With more epochs
        than columns the markers would merge into a bar, so the line alone is drawn,
        through each column's min and max."""
        if not xs:
            return
        if len(xs) > self.plot_width:
            if line:
                points = line_points(xs, ys, self.plot_width)
                self.plt.plot(*points, marker="braille", color=color)
            return
        if line and len(xs) > 1:
            self.plt.plot(xs, ys, marker="braille", color=color)
        self.plt.scatter(xs, [self.snap(v, lo, hi) for v in ys], marker="●", color=color)

    def value_axis(
        self,
        values: list[float],
        log: bool = False,
        floor: float | None = None,
        ceiling: float | None = None,
    ) -> tuple[float, float]:
        """Round limits and ticks for these values; returns the limits (log10 if `log`)."""
        rows = self.canvas_height
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            self.y_axis(0.0, 1.0, [0.0, 1.0], ["", ""])
            return 0.0, 1.0
        lo, hi = min(finite), max(finite)
        if log:
            pad = max((hi - lo) * 0.05, 0.05)
            lo, hi = lo - pad, hi + pad
            ticks = log_ticks(lo, hi, rows)
            self.y_axis(lo, hi, [math.log10(t) for t in ticks], [_short(t) for t in ticks])
            return lo, hi
        first, last, ticks, labels = nice_ticks(lo, hi, max(min(rows // 3, 5), 2))
        if floor is not None:
            first = max(first, floor)
        if ceiling is not None:
            last = min(last, ceiling)
        if last <= first:
            first, last = lo - 0.5, hi + 0.5
        self.y_axis(first, last, ticks, labels)
        return first, last


def _short(value: float) -> str:
    text = f"{value:g}"
    return text if len(text) <= Y_LABEL_WIDTH else f"{value:.1e}".replace("e-0", "e-")


class LossPlot(EpochPane):
    """Per-batch training loss (min-max band and mean per column, an optional EMA) and
    each epoch's mean; linear or log y."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.series = MinMaxSeries()

    def set_series(self, series: MinMaxSeries, epochs: Sequence[EpochEnd], span: int) -> None:
        self.series = series
        self.set_data(epochs, span)

    def draw(self) -> None:
        plt = self.plt
        ctx = self.context
        log = ctx.loss_log

        def y(v: float) -> float:
            return math.log10(max(v, 1e-12)) if log else v

        self.epoch_axis(self.span)
        shown = self.draw_overlays(lambda o: o.losses, self.span, y if log else None)
        per_batch = ctx.loss_per_batch
        d = self.series.downsample(self.plot_width) if per_batch else None
        if not (d and d.x) and not self.epochs and not shown:
            self.y_axis(0.0, 1.0, [0.0, 1.0], ["", ""])
            return
        values = list(shown)
        self.draw_edit_marks(self.span)
        if d and d.x:
            # Zig-zag through each column's min and max: a band that keeps spikes visible.
            band_x = [x for x in d.x for _ in (0, 1)]
            band_y = [y(v) for lo, hi in zip(d.lo, d.hi, strict=True) for v in (lo, hi)]
            plt.plot(band_x, band_y, marker="braille", color=BAND_COLOR)
            plt.plot(d.x, [y(v) for v in d.mean], marker="braille", color=MEAN_COLOR)
            values += band_y
            if ctx.smoothing:
                sx, sy = self.series.smoothed(ctx.smoothing, self.plot_width)
                plt.plot(sx, [y(v) for v in sy], marker="braille", color=SMOOTH_COLOR)
        ys = [y(e.train_loss) for e in self.epochs]
        values += ys
        lo, hi = self.value_axis(values, log=log)
        if self.epochs:
            xs = [float(e.epoch) for e in self.epochs]
            self.draw_epoch_points(xs, ys, EPOCH_COLOR, lo, hi, line=not per_batch)


class MetricPlot(EpochPane):
    """A per-epoch figure: test accuracy in percent, or another metric a script gave."""

    def draw(self) -> None:
        name = self.context.metric
        self.epoch_axis(self.span)
        getter = (lambda o: o.accs) if name == "test_acc" else (lambda o: ())
        shown = self.draw_overlays(getter, self.span)
        points = [(float(e.epoch), e.metric(name)) for e in self.epochs]
        points = [(x, v) for x, v in points if math.isfinite(v)]
        if not points and not shown:
            if name == "test_acc":
                self.y_axis(0.0, 100.0, [0.0, 50.0, 100.0], ["0", "50", "100"])
            else:
                self.y_axis(0.0, 1.0, [0.0, 1.0], ["", ""])
            return
        self.draw_edit_marks(self.span)
        ys = [v for _, v in points]
        bounds = (0.0, 100.0) if name == "test_acc" else (None, None)
        lo, hi = self.value_axis(ys + shown, floor=bounds[0], ceiling=bounds[1])
        self.draw_epoch_points([x for x, _ in points], ys, ACC_COLOR, lo, hi)


def accuracy_summary(epochs: Sequence[EpochEnd], name: str = "test_acc") -> str:
    finite = [e for e in epochs if math.isfinite(e.metric(name))]
    if not finite:
        return "measured on the test set after each epoch" if name == "test_acc" else ""
    if name == "test_acc":
        best = max(finite, key=lambda e: e.test_acc)
        return f"last {finite[-1].test_acc:.2f}% · best {best.test_acc:.2f}% (epoch {best.epoch})"
    lowest = "loss" in name or "err" in name
    best = (min if lowest else max)(finite, key=lambda e: e.metric(name))
    return (
        f"last {finite[-1].metric(name):.4g} · {'lowest' if lowest else 'best'} "
        f"{best.metric(name):.4g} (epoch {best.epoch})"
    )


def loss_summary(epochs: Sequence[EpochEnd]) -> str:
    if not epochs:
        return "appears once training starts"
    return f"epoch {epochs[-1].epoch} mean {epochs[-1].train_loss:.4f}"
