"""Downsampled loss series and the run view that feeds the panes and status line."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steplr_tui.runfolder import BatchProgress, EpochEnd, Notice, RunEnded, Status
from steplr_tui.runfolder.losses import MinMaxSeries
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.viewer.run_view import RunView, format_duration, progress_bar, status_text
from steplr_tui.viewer.series import line_points, step_points
from tests.fakes import STEPS, opened, scripted_events


def test_series_memory_is_bounded_and_spikes_survive():
    s = MinMaxSeries(capacity=64)
    n = 100_000
    for i in range(n):
        s.append(i / 1000, 1.0 if i != 54_321 else 50.0)
    assert len(s) == n
    assert s.buckets <= 64
    d = s.downsample(40)
    assert len(d.x) <= 40
    assert max(d.hi) == 50.0  # the one spike is still there
    assert min(d.lo) == 1.0
    assert abs(sum(d.mean) / len(d.mean) - 1.0) < 0.05


def test_downsample_keeps_x_order_and_range():
    s = MinMaxSeries()
    s.extend([i * 0.01 for i in range(1000)], [float(i) for i in range(1000)])
    d = s.downsample(10)
    assert d.x == sorted(d.x)
    assert d.lo[0] == 0.0 and d.hi[-1] == 999.0
    assert MinMaxSeries().downsample(10).x == []


def _state(s: MinMaxSeries) -> tuple:
    return (s.count, s.buckets, s.downsample(10**9), s.downsample(7))


@settings(max_examples=60, deadline=None)
@given(
    ys=st.lists(st.integers(-1000, 1000).map(float), min_size=1, max_size=400),
    chunk=st.integers(1, 50),
    capacity=st.integers(2, 16),
)
def test_extend_in_chunks_is_the_same_as_point_by_point(ys, chunk, capacity):
    # The loss pane is fed a progress report's worth of losses at a time; chunking
    # must not change what it draws. Integer-valued losses keep the sums exact.
    xs = [i / 7 for i in range(len(ys))]
    by_point, by_chunk = MinMaxSeries(capacity), MinMaxSeries(capacity)
    for x, y in zip(xs, ys, strict=True):
        by_point.append(x, y)
    for i in range(0, len(ys), chunk):
        by_chunk.extend(xs[i : i + chunk], ys[i : i + chunk])
    assert _state(by_chunk) == _state(by_point)
    assert by_chunk.buckets <= capacity
    for bins in (1, 3, 40):
        d = by_chunk.downsample(bins)
        assert len(d.x) <= bins
        assert min(d.lo) == min(ys) and max(d.hi) == max(ys)
        assert d.x == sorted(d.x) and xs[0] <= d.x[0] and d.x[-1] <= xs[-1]
        assert all(lo <= m <= hi for lo, m, hi in zip(d.lo, d.mean, d.hi, strict=True))


def test_extend_refuses_lists_of_different_lengths():
    with pytest.raises(ValueError, match="2 x values for 1 y values"):
        MinMaxSeries().extend([0.0, 1.0], [1.0])


def _step_value(xs: list[float], ys: list[float], x: float) -> float:
    """The value a step line drawn through (xs, ys) has at x (strictly inside a step)."""
    for x0, x1, y0, y1 in zip(xs, xs[1:], ys, ys[1:], strict=False):
        if x0 < x < x1 and y0 == y1:
            return y0
    raise AssertionError(f"no step covers x={x}")


def test_step_points_merge_equal_neighbours_and_keep_every_epoch():
    values = [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5, 1e-5]
    for start in (0, 3):
        xs, ys = step_points(values, bins=100, start=start)
        assert len(xs) == 6  # three phases, two points each
        assert (xs[0], xs[-1]) == (start, start + len(values))
        for t, value in enumerate(values, start=start):
            assert _step_value(xs, ys, t + 0.5) == value


def test_step_points_of_a_long_schedule_stay_within_the_columns():
    values = [0.97**t for t in range(1000)]  # 1000 distinct levels
    values[500] = 2.0  # a spike: an edit raised the lr for one epoch
    xs, ys = step_points(values, bins=50)
    assert len(xs) <= 5 * 50
    assert max(ys) == 2.0 and min(ys) == min(values)
    assert (xs[0], xs[-1]) == (0, 1000)
    assert xs == sorted(xs)
    assert step_points([], bins=50) == ([], [])


def test_line_points_bin_only_when_the_points_do_not_fit():
    xs = [float(e) for e in range(1, 31)]
    ys = [90 + e / 10 for e in range(30)]
    assert line_points(xs, ys, 40) == (xs, ys)
    xs = [float(e) for e in range(1, 1001)]
    ys = [90.0] * 1000
    ys[700] = 10.0  # one bad epoch
    lx, ly = line_points(xs, ys, 40)
    assert len(lx) <= 80 and lx == sorted(lx)
    assert min(ly) == 10.0 and max(ly) == 90.0
    assert lx[0] >= 1 and lx[-1] <= 1000


def test_view_folds_a_run():
    config = TrainConfig(epochs=3)
    view = RunView()
    events = scripted_events(config, 2)
    view.apply(events[0])  # the run opened: it is loading
    assert view.active and view.starting
    changed = set()
    for event in events[1:]:
        changed |= view.apply(event)
    assert {"loss", "acc", "lr", "status", "log"} <= changed
    assert view.active and not view.starting
    assert [e.epoch for e in view.epochs] == [1, 2]
    assert len(view.losses) == 2 * STEPS
    # x of the last loss of epoch 2 is exactly 2.0 epochs.
    assert view.losses.downsample(1000).x[-1] == 2.0
    assert abs(view.run_fraction() - 2 / 3) < 1e-9
    assert view.eta() is not None and view.eta() > 0
    view.apply(RunEnded(Status.COMPLETED, "", 3, 1.5))
    assert view.status == "COMPLETED" and not view.active
    assert view.eta() is None


def test_a_new_run_forgets_the_previous_one():
    view = RunView()
    for event in scripted_events(TrainConfig(), 2):
        view.apply(event)
    view.apply(Notice("fallback", persistent=True))
    view.apply(opened(TrainConfig(epochs=9)))
    assert view.epochs == [] and len(view.losses) == 0 and view.notice is None
    assert view.total_epochs == 9


def test_a_resumed_session_drops_what_it_trains_again():
    config = TrainConfig(epochs=6)
    view = RunView()
    view.apply_all(
        [
            opened(config, "/runs/a"),
            *scripted_events(config, 4)[1:],
            RunEnded(Status.STOPPED, "", 4, 2.0),
        ]
    )
    assert len(view.losses) == 4 * STEPS and view.status == "STOPPED"
    # Resumed from the checkpoint of epoch 2 (epochs 3 and 4 were after it).
    view.apply(opened(config, "/runs/a", first_epoch=3))
    assert view.active and [e.epoch for e in view.epochs] == [1, 2]
    assert view.losses.downsample(1000).x[-1] <= 2.0
    assert view.current_epoch == 3


def test_status_line_reads_like_the_issue_asks():
    config = TrainConfig()
    view = RunView()
    assert "ready" in status_text(view, "cpu (2 threads)", "data auto in ~/x")
    events = scripted_events(config, 1)
    for event in events:
        view.apply(event)
    view.apply(BatchProgress(2, 5, STEPS, (0.3,), 61000.0, 0.8))
    text = status_text(view, "?", "?")
    for part in (
        "cpu (2 threads)",
        "MNIST 60,000/10,000",
        "epoch 2/5 (50%)",
        "30%",  # of the whole run: 1.5 of 5 epochs
        "61k samples/s",
        "elapsed",
        "ETA",
    ):
        assert part in text
    narrow = status_text(view, "?", "?", width=50)
    assert len(narrow) <= 50 and "epoch 2/5" in narrow and "ETA" in narrow


def test_formatters():
    assert format_duration(7.4) == "0:07"
    assert format_duration(3723) == "1:02:03"
    assert progress_bar(0.0, 4) == "    "
    assert progress_bar(1.0, 4) == "████"
    assert progress_bar(0.5, 4) == "██  "


def test_stopped_view_is_not_active():
    view = RunView()
    view.apply(opened(TrainConfig()))
    view.apply(EpochEnd(1, 0.001, 0.5, 90.0, 0.5, 0.5))
    view.apply(RunEnded(Status.STOPPED, "stopped by the user", 1, 0.6))
    assert view.status == "STOPPED" and not view.active


def test_axis_ticks_are_round_numbers_whatever_the_span():
    from steplr_tui.viewer.widgets.plots import round_ticks

    for total, count in ((5, 9), (600, 9), (1000, 4), (9380, 9), (187_600, 12)):
        ticks, labels = round_ticks(total, count)
        step = ticks[1] - ticks[0]
        assert ticks[0] == 0 and ticks[-1] <= total < ticks[-1] + step
        assert len(ticks) <= count + 2
        mantissa = step / 10 ** (len(str(step)) - 1)
        assert mantissa in (1, 2, 5), step
        assert len(labels) == len(ticks)


def test_the_redraw_cadence_bounds_plots_and_status_during_a_run_only():
    from steplr_tui.viewer.screens.cadence import PLOT_INTERVAL_S, Cadence

    idle = Cadence()
    idle.drew({"loss"}, now=100.0)
    assert idle.held({"loss", "acc"}, active=False, local=True, now=100.1) == set()
    cadence = Cadence()
    cadence.drew({"loss"}, now=100.0)
    dirty = {"loss", "acc"}
    assert cadence.held(dirty, active=True, local=True, now=100.1) == {"loss", "acc"}
    assert "status" in dirty  # the first status of a while is let through, and counts
    assert cadence.held({"status"}, active=True, local=True, now=100.3) == {"status"}
    assert cadence.held({"status"}, active=True, local=True, now=100.6) == set()
    # A run in another process: the status line follows it twice as often.
    assert cadence.held({"status"}, active=True, local=False, now=100.86) == set()
    assert cadence.held({"loss"}, active=True, local=False, now=100.0 + PLOT_INTERVAL_S) == set()


def test_size_classes_follow_the_terminal():
    from steplr_tui.viewer.screens.layout import MIN_HEIGHT, MIN_WIDTH, size_classes

    assert size_classes(MIN_WIDTH - 1, 40)["-too-small"]
    assert size_classes(80, MIN_HEIGHT - 1)["-too-small"]
    small = size_classes(80, 24)
    assert small["-narrow"] and not small["-too-small"] and not small["-wide"]
    assert size_classes(200, 60) == {
        "-too-small": False,
        "-narrow": False,
        "-wide": True,
        "-huge": True,
    }


def test_the_lr_pane_says_the_lr_of_the_epoch_in_progress():
    from steplr_tui.runfolder.schedule import ScheduleEdit, format_lr, lrs_with_edits
    from steplr_tui.viewer.preview import now_summary

    config = TrainConfig(epochs=8, lr=1e-3, step_size=2, gamma=0.1)
    view = RunView()
    events = scripted_events(config, 4)  # epoch 5 is in progress: two decays behind it
    for event in events:
        view.apply(event)
    assert now_summary(view).startswith(f"now lr {format_lr(1e-5)} · step_size 2")
    # An lr edit, then a decay: the lr in use is the decayed edit, not the edit.
    view.edits[5] = ScheduleEdit(lr=5e-4)
    view.epochs.append(EpochEnd(5, 1e-5, 0.3, 91.0, 0.1, 0.5))
    view.epochs.append(EpochEnd(6, 5e-4, 0.3, 91.0, 0.1, 0.6))
    expected = lrs_with_edits(1e-3, 2, 0.1, 8, {5: ScheduleEdit(lr=5e-4)})[6]
    assert now_summary(view).startswith(f"now lr {format_lr(expected)} ·")
    assert format_lr(expected) != format_lr(5e-4)
