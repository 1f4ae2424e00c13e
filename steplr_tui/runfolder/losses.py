"""The training loss as every viewer folds it: a bounded series of buckets that keep each
one's min, max, sum and count, and the rule that places each batch on the x axis.

A 200-epoch run at batch size 16 makes 750,000 loss points; the loss pane is a
hundred columns wide. Points are folded into at most `capacity` buckets (pairs of
buckets merge when full), and `downsample` bins those to the pane's width. Min and
max survive every fold, so a single spike stays visible.

`LossFold` turns events into that series. Viewers fold every progress line they
read; the run folds the same lines as it writes them, and keeps the result in
`summary.json` (see `summary.py`), so a viewer that attaches to a long run starts
from the run's fold instead of re-reading a million losses. The fold is
deterministic, so both give the very same buckets. Plain Python.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from operator import add
from typing import Any

from steplr_tui.runfolder.events import BatchProgress, EpochEnd, RunOpened


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

    def state(self) -> dict[str, Any]:
        """Everything the series holds, as JSON values (floats round-trip exactly)."""
        return {
            "capacity": self.capacity,
            "per_bucket": self._per_bucket,
            "count": self.count,
            "x0": list(self._x0),
            "x1": list(self._x1),
            "lo": list(self._lo),
            "hi": list(self._hi),
            "total": list(self._total),
            "n": list(self._count),
        }

    @classmethod
    def from_state(cls, state: Any) -> MinMaxSeries:
        """The series `state()` described; raises ValueError for anything else."""
        if not isinstance(state, dict):
            raise ValueError("a loss series must be an object")
        capacity, per, count = state.get("capacity"), state.get("per_bucket"), state.get("count")
        if not all(_whole(v) and v >= 0 for v in (capacity, per, count)) or capacity < 2:
            raise ValueError("a loss series needs whole numbers capacity, per_bucket and count")
        columns = {k: state.get(k) for k in ("x0", "x1", "lo", "hi", "total", "n")}
        size = len(columns["n"]) if isinstance(columns["n"], list) else -1
        for key, values in columns.items():
            if not isinstance(values, list) or len(values) != size:
                raise ValueError(f"a loss series needs '{key}' as a list of {size} numbers")
            # Exact types, as JSON gives them (a bool is no number here); no call per
            # value: a 10,000-epoch run's summary holds some 20,000 of them.
            kinds = _WHOLE if key == "n" else _NUMBER
            if not set(map(type, values)) <= kinds:
                raise ValueError(f"a loss series needs '{key}' as a list of numbers")
        if size > capacity or sum(columns["n"]) != count:
            raise ValueError("a loss series' buckets do not add up")
        series = cls(capacity)
        series._per_bucket = per
        series.count = count
        series._x0, series._x1 = (
            [float(v) for v in columns["x0"]],
            [float(v) for v in columns["x1"]],
        )
        nan = math.nan  # strict JSON writes NaN as null
        series._lo = [nan if v is None else float(v) for v in columns["lo"]]
        series._hi = [nan if v is None else float(v) for v in columns["hi"]]
        series._total = [nan if v is None else float(v) for v in columns["total"]]
        series._count = list(columns["n"])
        return series

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


_WHOLE = frozenset({int})
_NUMBER = frozenset({int, float, type(None)})


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class LossFold:
    """Every batch loss of a run's events, placed on the epoch axis: batch k of an epoch
    of n batches at x = epoch - 1 + k / n.

    A script that did not say how many batches an epoch has gets its first epoch's
    losses placed when that epoch ends (its line says how many it trained). A resumed
    session (an `opened` event with `first_epoch` above 1, for the same folder) drops
    what lies past the epochs it keeps; any other `opened` starts over.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self.series = MinMaxSeries(capacity)
        self.path: str | None = None
        self._held: list[BatchProgress] = []
        self._steps = 0  # batches of the last finished epoch

    @property
    def settled(self) -> bool:
        """Nothing is held back, waiting for its epoch's length."""
        return not self._held

    def apply(self, event: Any) -> bool:
        """Fold one event in; True when the series changed."""
        if isinstance(event, BatchProgress):
            return self._place(event)
        if isinstance(event, EpochEnd):
            held, self._held = self._held, []
            steps = event.steps or max((p.step for p in held), default=0)
            for p in held:
                self._place(BatchProgress(p.epoch, p.step, steps, p.losses, 0.0, 0.0))
            self._steps = event.steps or self._steps
            return bool(held)
        if isinstance(event, RunOpened):
            same_run = bool(event.path) and self.path == event.path
            if event.first_epoch <= 1 or not same_run:
                self.series.clear()
                self._steps = 0
            else:
                self.series.truncate(float(event.first_epoch - 1))
            self.path = event.path
            self._held = []
            return True
        return False

    def _place(self, event: BatchProgress) -> bool:
        steps = event.steps or self._steps
        if not steps or event.step > steps:
            self._held.append(event)
            return False
        first = event.step - len(event.losses) + 1
        self.series.extend(
            EvenSteps(event.epoch - 1, first, steps, len(event.losses)), list(event.losses)
        )
        return True

    def state(self) -> dict[str, Any]:
        """The fold as JSON values (only while `settled`: held losses are not kept)."""
        return {"path": self.path, "steps": self._steps, "series": self.series.state()}

    @classmethod
    def from_state(cls, state: Any) -> LossFold:
        if not isinstance(state, dict):
            raise ValueError("a loss fold must be an object")
        fold = cls()
        fold.series = MinMaxSeries.from_state(state.get("series"))
        path, steps = state.get("path"), state.get("steps")
        if not (path is None or isinstance(path, str)) or not (_whole(steps) and steps >= 0):
            raise ValueError("a loss fold needs 'path' as text and 'steps' as a whole number")
        fold.path, fold._steps = path, steps
        return fold
