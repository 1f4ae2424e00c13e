"""A bounded series of (x, y) points that keeps each bucket's min, max and mean.

A 200-epoch run at batch size 16 makes 750,000 loss points; the loss pane is a
hundred columns wide. Points are folded into at most `capacity` buckets (pairs of
buckets merge when full), and `downsample` bins those to the pane's width. Min and
max survive every fold, so a single spike stays visible.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from operator import add


class EvenSteps(Sequence[float]):
    """x of the i-th of `n` batches: base + (first + i) / steps, computed only where a
    series asks (its buckets' edges), not for every batch of a replay."""

    def __init__(self, base: float, first: int, steps: int, n: int) -> None:
        self.base, self.first, self.steps, self.n = base, first, steps, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self.n))]
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return self.base + (self.first + (i % self.n)) / self.steps


@dataclass(frozen=True)
class Downsampled:
    """One entry per bin: centre x, min, max and mean of y."""

    x: list[float]
    lo: list[float]
    hi: list[float]
    mean: list[float]


class MinMaxSeries:
    """Append-only (x, y) series in bounded memory; x must not decrease.

    Buckets are held as parallel lists, and a chunk of points is folded in with
    slices and the built-in min, max and sum: this runs on the UI thread, which
    shares the GIL with training, for every batch of a run.
    """

    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.capacity = capacity
        self.clear()

    def __len__(self) -> int:
        return self.count

    @property
    def buckets(self) -> int:
        """How many buckets hold the points now (at most `capacity`)."""
        return len(self._count)

    def append(self, x: float, y: float) -> None:
        self.extend([x], [y])

    def extend(self, xs: Sequence[float], ys: list[float]) -> None:
        if len(xs) != len(ys):
            raise ValueError(f"{len(xs)} x values for {len(ys)} y values")
        i, n = 0, len(xs)
        while i < n:
            count = self._count
            room = self._per_bucket - count[-1] if count else 0
            if room > 0:  # top up the last bucket
                take = min(room, n - i)
                seg = ys[i : i + take]
                self._x1[-1] = xs[i + take - 1]
                self._lo[-1] = min(self._lo[-1], min(seg))
                self._hi[-1] = max(self._hi[-1], max(seg))
                self._total[-1] += sum(seg)
                count[-1] += take
            else:
                take = min(self._per_bucket, n - i)
                seg = ys[i : i + take]
                self._x0.append(xs[i])
                self._x1.append(xs[i + take - 1])
                self._lo.append(min(seg))
                self._hi.append(max(seg))
                self._total.append(sum(seg))
                count.append(take)
                if len(count) > self.capacity:
                    self._fold()
            i += take
        self.count += n

    def _fold(self) -> None:
        """Merge neighbouring buckets in pairs: half the buckets, twice the points each."""
        odd = len(self._count) % 2

        def pairs(values: list, merge) -> list:
            merged = list(map(merge, values[0::2], values[1::2]))
            return merged + values[-1:] if odd else merged

        self._x0 = self._x0[0::2]
        self._x1 = self._x1[1::2] + self._x1[-1:] if odd else self._x1[1::2]
        self._lo = pairs(self._lo, min)
        self._hi = pairs(self._hi, max)
        self._total = pairs(self._total, add)
        self._count = pairs(self._count, add)
        self._per_bucket *= 2

    def smoothed(self, weight: float, bins: int) -> tuple[list[float], list[float]]:
        """TensorBoard's smoothing (a debiased exponential moving average with `weight`
        per point), computed over the buckets, at most `bins` points.

        A bucket of n points counts as n points of its mean (weight ** n), so the
        smoothing does not change as buckets fold.
        """
        if not self._count or bins < 1 or not 0.0 < weight < 1.0:
            return [], []
        last, kept = 0.0, 1.0  # the EMA, and the weight still on its zero start
        xs, ys = [], []
        for x0, x1, total, n in zip(self._x0, self._x1, self._total, self._count, strict=True):
            w = weight**n
            last = last * w + (1.0 - w) * (total / n)
            kept *= w
            xs.append((x0 + x1) / 2)
            ys.append(last / (1.0 - kept) if kept < 1.0 else total / n)
        if len(xs) <= bins:
            return xs, ys
        d = bin_points(xs, ys, bins)
        return d.x, d.mean

    def truncate(self, x_max: float) -> None:
        """Drop every bucket that reaches past `x_max` (a resumed run trains those
        batches again); a bucket that straddles it goes too."""
        keep = bisect_left(self._x1, x_max + 1e-12)
        while keep > 0 and self._x1[keep - 1] > x_max:
            keep -= 1
        for name in ("_x0", "_x1", "_lo", "_hi", "_total", "_count"):
            del getattr(self, name)[keep:]
        self.count = sum(self._count)

    def clear(self) -> None:
        self._x0: list[float] = []
        self._x1: list[float] = []
        self._lo: list[float] = []
        self._hi: list[float] = []
        self._total: list[float] = []
        self._count: list[int] = []
        self._per_bucket = 1  # points a bucket takes before a new one starts
        self.count = 0

    def downsample(self, bins: int) -> Downsampled:
        """At most `bins` evenly spaced bins over the x range, each with min, max and mean."""
        x0, x1, count = self._x0, self._x1, self._count
        if not count or bins < 1:
            return Downsampled([], [], [], [])
        start, end = x0[0], x1[-1]
        span = end - start
        if span <= 0 or len(count) <= bins:
            return Downsampled(
                [(a + b) / 2 for a, b in zip(x0, x1, strict=True)],
                list(self._lo),
                list(self._hi),
                [t / c for t, c in zip(self._total, count, strict=True)],
            )
        # x0 never decreases, so each bin is a slice of buckets: find its edges,
        # then let the built-ins reduce each slice.
        edges = [0]
        for k in range(1, bins):
            edges.append(bisect_left(x0, start + span * k / bins, edges[-1]))
        edges.append(len(count))
        out = Downsampled([], [], [], [])
        for a, b in pairwise(edges):
            if a < b:
                out.x.append((x0[a] + x1[b - 1]) / 2)
                out.lo.append(min(self._lo[a:b]))
                out.hi.append(max(self._hi[a:b]))
                out.mean.append(sum(self._total[a:b]) / sum(count[a:b]))
        return out


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
