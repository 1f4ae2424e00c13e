"""A bounded series of (x, y) points that keeps each bucket's min, max and mean.

A 200-epoch run at batch size 16 makes 750,000 loss points; the loss pane is a
hundred columns wide. Points are folded into at most `capacity` buckets (pairs of
buckets merge when full), and `downsample` bins those to the pane's width. Min and
max survive every fold, so a single spike stays visible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Bucket:
    """Aggregate of consecutive points."""

    x0: float
    x1: float
    lo: float
    hi: float
    total: float
    count: int

    @property
    def mean(self) -> float:
        return self.total / self.count

    def absorb(self, other: Bucket) -> None:
        self.x1 = other.x1
        self.lo = min(self.lo, other.lo)
        self.hi = max(self.hi, other.hi)
        self.total += other.total
        self.count += other.count


@dataclass(frozen=True)
class Downsampled:
    """One entry per bin: centre x, min, max and mean of y."""

    x: list[float]
    lo: list[float]
    hi: list[float]
    mean: list[float]


class MinMaxSeries:
    """Append-only (x, y) series in bounded memory; x must not decrease."""

    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.capacity = capacity
        self._buckets: list[Bucket] = []
        self._per_bucket = 1  # points a bucket takes before a new one starts
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def append(self, x: float, y: float) -> None:
        self.count += 1
        last = self._buckets[-1] if self._buckets else None
        if last is not None and last.count < self._per_bucket:
            last.absorb(Bucket(x, x, y, y, y, 1))
            return
        self._buckets.append(Bucket(x, x, y, y, y, 1))
        if len(self._buckets) > self.capacity:
            self._fold()

    def extend(self, xs: list[float], ys: list[float]) -> None:
        for x, y in zip(xs, ys, strict=True):
            self.append(x, y)

    def _fold(self) -> None:
        merged: list[Bucket] = []
        for i in range(0, len(self._buckets), 2):
            pair = self._buckets[i : i + 2]
            first = Bucket(**vars(pair[0]))
            if len(pair) == 2:
                first.absorb(pair[1])
            merged.append(first)
        self._buckets = merged
        self._per_bucket *= 2

    def clear(self) -> None:
        self._buckets.clear()
        self._per_bucket = 1
        self.count = 0

    def downsample(self, bins: int) -> Downsampled:
        """At most `bins` evenly spaced bins over the x range, each with min, max and mean."""
        buckets = self._buckets
        if not buckets or bins < 1:
            return Downsampled([], [], [], [])
        start, end = buckets[0].x0, buckets[-1].x1
        span = end - start
        if span <= 0 or len(buckets) <= bins:
            return Downsampled(
                [(b.x0 + b.x1) / 2 for b in buckets],
                [b.lo for b in buckets],
                [b.hi for b in buckets],
                [b.mean for b in buckets],
            )
        out: list[Bucket | None] = [None] * bins
        for b in buckets:
            i = min(int((b.x0 - start) / span * bins), bins - 1)
            slot = out[i]
            if slot is None:
                out[i] = Bucket(**vars(b))
            else:
                slot.absorb(b)
        kept = [b for b in out if b is not None]
        return Downsampled(
            [(b.x0 + b.x1) / 2 for b in kept],
            [b.lo for b in kept],
            [b.hi for b in kept],
            [b.mean for b in kept],
        )


def bin_points(xs: list[float], ys: list[float], bins: int) -> Downsampled:
    """Points with increasing x (one per epoch, say) as at most `bins` evenly spaced
    bins with min, max and mean; unchanged, one bin a point, when they already fit."""
    if len(xs) <= bins or bins < 1 or xs[-1] <= xs[0]:
        ys = list(ys)
        return Downsampled(list(xs), ys, ys, ys)
    start, scale = xs[0], bins / (xs[-1] - xs[0])
    lo = [math.inf] * bins
    hi = [-math.inf] * bins
    total = [0.0] * bins
    count = [0] * bins
    # One pass with plain lists: this runs on the UI thread at every redraw.
    for x, y in zip(xs, ys, strict=True):
        i = min(int((x - start) * scale), bins - 1)
        lo[i] = min(lo[i], y)
        hi[i] = max(hi[i], y)
        total[i] += y
        count[i] += 1
    kept = [i for i in range(bins) if count[i]]
    return Downsampled(
        [start + (i + 0.5) / scale for i in kept],
        [lo[i] for i in kept],
        [hi[i] for i in kept],
        [total[i] / count[i] for i in kept],
    )


def line_points(xs: list[float], ys: list[float], bins: int) -> tuple[list[float], list[float]]:
    """What to draw for a line through (xs, ys) in `bins` columns: the points
    themselves when they fit, else a zig-zag through each column's min and max, so
    a run of 1000 epochs costs a redraw no more than one of 100 and its extremes stay."""
    if len(xs) <= bins:
        return list(xs), list(ys)
    d = bin_points(xs, ys, bins)
    return (
        [x for x in d.x for _ in (0, 1)],
        [v for lo, hi in zip(d.lo, d.hi, strict=True) for v in (hi, lo)],
    )


def step_points(values: list[float], bins: int, start: int = 0) -> tuple[list[float], list[float]]:
    """Points of a step line where values[i] holds from x = start+i to start+i+1.

    Neighbours with equal values merge into one step (exact: a 1000-epoch schedule
    with five phases is ten points). When more steps than `bins` columns remain,
    each column keeps its first and last level, and its highest and lowest when
    they lie between those, and the last level runs on to its end.
    """
    bins = max(bins, 1)
    steps: list[list[float]] = []  # [x0, x1, value]
    for i, value in enumerate(values, start=start):
        if steps and steps[-1][2] == value:
            steps[-1][1] = i + 1
        else:
            steps.append([i, i + 1, value])
    xs: list[float] = []
    ys: list[float] = []
    if len(steps) <= bins:
        for x0, x1, value in steps:
            xs += [x0, x1]
            ys += [value, value]
        return xs, ys
    width = len(values) / bins
    columns: list[list[list[float]]] = [[] for _ in range(bins)]
    for step in steps:
        columns[min(int((step[0] - start) / width), bins - 1)].append(step)
    for column in columns:
        if not column:
            continue
        levels = [step[2] for step in column]
        first, last = levels[0], levels[-1]
        middle = (column[0][0] + column[-1][0]) / 2
        xs.append(column[0][0])
        ys.append(first)
        # Extremes between the first and last level (a spike) get a point of their
        # own; a falling staircase needs none, which keeps plotext's work small.
        if max(levels) > max(first, last):
            xs.append(middle)
            ys.append(max(levels))
        if min(levels) < min(first, last):
            xs.append(middle)
            ys.append(min(levels))
        xs += [column[-1][0], column[-1][1]]
        ys += [last, last]
    return xs, ys
