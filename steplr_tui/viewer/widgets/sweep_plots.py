"""The sweep view's panes: every trial's accuracy and loss curves overlaid, the best
highlighted, and where the good region is (accuracy by step_size or lr, and gamma).

Each pane is rebuilt from plain lists when the screen says so, as the dashboard's
panes are, with the same axes and colours.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from steplr_tui.runfolder.schedule import format_lr
from steplr_tui.viewer.series import line_points
from steplr_tui.viewer.widgets.plots import (
    ACC_COLOR,
    ACTUAL_COLOR,
    BAND_COLOR,
    PENDING_COLOR,
    PLAN_COLOR,
    EpochPane,
    _key,
    nice_ticks,
)

BEST_COLOR = ACTUAL_COLOR  # amber: the one to look at
RUNNING_COLOR = PENDING_COLOR  # sky blue, as the dashboard's pending future
DONE_COLOR = PLAN_COLOR  # grey: the others
MAX_LINES = 16  # past this many finished trials, their curves are drawn as one band
# Accuracy bands of the scatter, worst to best.
BAND_COLORS = ((95, 95, 135), (70, 130, 180), (0, 175, 135), ACC_COLOR)


@dataclass(frozen=True)
class Curve:
    """One trial's values per epoch (index i is epoch i + 1)."""

    number: int
    values: tuple[float, ...]
    running: bool = False


def curves_title(what: str) -> str:
    """'Test accuracy ━ best ━ running' (the others are grey)."""
    return f"{what} {_key(BEST_COLOR, '━ best')} {_key(RUNNING_COLOR, '━ running')}"


class CurvesPlot(EpochPane):
    """Every trial's curve per epoch: the finished ones grey (past MAX_LINES of them, their
    band and median), the running ones blue, the best amber, drawn last."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.curves: list[Curve] = []
        self.best: int | None = None
        self.percent = True

    def show(self, curves: Sequence[Curve], best: int | None, span: int, percent: bool) -> None:
        self.curves, self.best, self.percent = list(curves), best, percent
        self.set_data([], span)

    def draw(self) -> None:
        self.epoch_axis(self.span)
        values: list[float] = []
        others = [c for c in self.curves if c.number != self.best and not c.running]
        if len(others) > MAX_LINES:
            values += self._envelope(others)  # a hundred grey lines read as one band
        else:
            for curve in others:
                values += self._line(curve.values, DONE_COLOR)
        for curve in self.curves:
            if curve.running and curve.number != self.best:
                values += self._line(curve.values, RUNNING_COLOR)
        for curve in self.curves:
            if curve.number == self.best:
                values += self._line(curve.values, BEST_COLOR)  # drawn last: on top
        if not values:
            if self.percent:
                self.y_axis(0.0, 100.0, [0.0, 50.0, 100.0], ["0", "50", "100"])
            else:
                self.y_axis(0.0, 1.0, [0.0, 1.0], ["", ""])
            return
        bounds = (0.0, 100.0) if self.percent else (None, None)
        self.value_axis(values, floor=bounds[0], ceiling=bounds[1])

    def _line(self, values: Sequence[float], color: tuple[int, int, int]) -> list[float]:
        points = [(e, v) for e, v in enumerate(values, start=1) if math.isfinite(v)]
        if not points:
            return []
        xs, ys = line_points([float(e) for e, _ in points], [v for _, v in points], self.plot_width)
        self.plt.plot(xs, ys, marker="braille", color=color)
        return ys

    def _envelope(self, curves: Sequence[Curve]) -> list[float]:
        """The others' lowest and highest value at each epoch, as a band, and their median."""
        span = max(len(c.values) for c in curves)
        lows, highs, mids, xs = [], [], [], []
        for e in range(span):
            at = [c.values[e] for c in curves if e < len(c.values) and math.isfinite(c.values[e])]
            if at:
                xs.append(float(e + 1))
                lows.append(min(at))
                highs.append(max(at))
                mids.append(statistics.median(at))
        if not xs:
            return []
        band_x = [x for x in xs for _ in (0, 1)]
        band_y = [v for lo, hi in zip(lows, highs, strict=True) for v in (lo, hi)]
        self.plt.plot(band_x, band_y, marker="braille", color=BAND_COLOR)
        self.plt.plot(xs, mids, marker="braille", color=DONE_COLOR)
        return band_y


@dataclass(frozen=True)
class Point:
    """One trial in the region plot: where it sits, and how it did."""

    number: int
    x: float
    y: float
    acc: float | None  # None: no result yet (running), or none at all (failed)
    state: str


@dataclass(frozen=True)
class Axis:
    name: str  # lr, step_size or gamma
    log: bool = False  # values are log10 of the parameter (lr)


def _labels(axis: Axis, ticks: list[float], labels: list[str]) -> list[str]:
    if axis.log:
        return [format_lr(10**t) for t in ticks]
    if axis.name == "step_size" and all(float(t).is_integer() for t in ticks):
        return [str(int(t)) for t in ticks]
    return labels


class RegionPlot(EpochPane):
    """Accuracy over two of lr, step_size and gamma: each trial a dot in its accuracy's
    quarter (of the finished trials), running ones as rings, failed ones as crosses (✕), the best
    as a star."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.points: list[Point] = []
        self.best: int | None = None
        self.x_axis, self.y_axis_of = Axis("step_size"), Axis("gamma")

    def show(self, points: Sequence[Point], best: int | None, x: Axis, y: Axis) -> None:
        self.points, self.best, self.x_axis, self.y_axis_of = list(points), best, x, y
        self.redraw()

    def draw(self) -> None:
        plt = self.plt
        if not self.points:
            self.y_axis(0.0, 1.0, [0.0, 1.0], ["", ""])
            return
        scored = sorted(p.acc for p in self.points if p.acc is not None)
        cuts = [scored[len(scored) * k // 4] for k in (1, 2, 3)] if len(scored) >= 4 else []

        def band(acc: float) -> int:
            return sum(acc >= c for c in cuts) if cuts else len(BAND_COLORS) - 1

        groups: dict[tuple[str, tuple[int, int, int]], list[Point]] = {}
        for p in self.points:
            if p.number == self.best:
                key = ("★", BEST_COLOR)
            elif p.acc is not None:
                key = ("●", BAND_COLORS[band(p.acc)])
            elif p.state == "RUNNING":
                key = ("○", RUNNING_COLOR)
            else:
                key = ("✕", DONE_COLOR)
            groups.setdefault(key, []).append(p)
        for (marker, color), members in sorted(groups.items(), key=lambda g: g[0][0] == "★"):
            plt.scatter([p.x for p in members], [p.y for p in members], marker=marker, color=color)
        lo, hi = min(p.x for p in self.points), max(p.x for p in self.points)
        pad = (hi - lo) * 0.06 or 0.5
        first, last, ticks, labels = nice_ticks(lo, hi, max(self.plot_width // 10, 2))
        if self.x_axis.name == "step_size" and hi - lo <= self.plot_width // 6:
            ticks = [float(v) for v in range(int(lo), int(hi) + 1)]  # whole steps only
            labels = [str(int(v)) for v in ticks]
            first, last = lo, hi
        # The axes reach the round ticks around the points, so each has two labels at least.
        lo, hi = min(first, lo - pad), max(last, hi + pad)
        plt.xlim(lo, hi)
        ticks_labels = [
            (t, lab)
            for t, lab in zip(ticks, _labels(self.x_axis, ticks, labels), strict=True)
            if lo <= t <= hi
        ]
        plt.xticks([t for t, _ in ticks_labels], [lab for _, lab in ticks_labels])
        if self.roomy:
            plt.xlabel(self.x_axis.name + (" (log)" if self.x_axis.log else ""))
        y_lo, y_hi = min(p.y for p in self.points), max(p.y for p in self.points)
        y_pad = (y_hi - y_lo) * 0.08 or 0.05
        first, last, yticks, ylabels = nice_ticks(y_lo, y_hi, max(self.canvas_height // 3, 2))
        labels = _labels(self.y_axis_of, yticks, ylabels)
        self.y_axis(min(first, y_lo - y_pad), max(last, y_hi + y_pad), yticks, labels)


def region_title(x: Axis, y: Axis) -> str:
    return f"Accuracy: x {x.name}, y {y.name} {_key(BEST_COLOR, '★')}"


def region_subtitle(others: bool) -> str:
    """The markers' key: the four quarters of the finished trials' accuracy."""
    more = " · a: axes" if others else ""
    return (
        f"{_key(BAND_COLORS[-1], '● top')} {_key(BAND_COLORS[1], '●')} "
        f"{_key(BAND_COLORS[0], '● low')} {_key(RUNNING_COLOR, '○ run')}{more}"
    )
