"""A bounded series of (x, y) points that keeps each bucket's min, max and mean.

A 200-epoch run at batch size 16 makes 750,000 loss points; the loss pane is a
hundred columns wide. Points are folded into at most `capacity` buckets (pairs of
buckets merge when full), and `downsample` bins those to the pane's width. Min and
max survive every fold, so a single spike stays visible.
"""

from __future__ import annotations

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
