"""The plot panes keep a redraw's work to a few points a column however long the run."""

from __future__ import annotations

import math

from steplr_tui.runfolder import EpochEnd
from steplr_tui.runfolder.schedule import ScheduleEdit, format_lr
from steplr_tui.viewer.widgets.plots import LossPlot, LrPlot, MetricPlot
from tests.helpers import SIZE, make_app


def record_calls(pane) -> list[tuple[str, list[float], list[float]]]:
    """Wrap the pane's plotext plot and scatter calls, keeping what each was given."""
    calls: list[tuple[str, list[float], list[float]]] = []
    for kind in ("plot", "scatter"):
        original = getattr(pane.plt, kind)

        def wrapper(xs, ys, *args, _original=original, _kind=kind, **kwargs):
            calls.append((_kind, list(xs), list(ys)))
            return _original(xs, ys, *args, **kwargs)

        setattr(pane.plt, kind, wrapper)
    return calls


def ends(accs: list[float]) -> list[EpochEnd]:
    return [
        EpochEnd(e, 1e-3, 0.3 + 1 / e, acc, 0.5, e * 0.5) for e, acc in enumerate(accs, start=1)
    ]


async def test_a_1000_epoch_run_draws_a_bounded_line_that_keeps_a_bad_epoch():
    app = make_app(lambda *a: None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        pane = app.screen.query_one(MetricPlot)
        accs = [92.0 + e / 1000 for e in range(1000)]
        accs[700] = 40.0
        calls = record_calls(pane)
        pane.set_data(ends(accs), 1000)
        points = sum(len(xs) for _, xs, _ in calls)
        assert 0 < points <= 2 * pane.plot_width
        assert [kind for kind, _, _ in calls] == ["plot"]  # no marker per epoch
        ys = calls[0][2]
        assert min(ys) == 40.0 and max(ys) == max(accs)

        calls.clear()
        pane.set_data(ends(accs[:10]), 1000)  # a short run: a marker per epoch
        scattered = [xs for kind, xs, _ in calls if kind == "scatter"]
        assert scattered == [[float(e) for e in range(1, 11)]]


async def test_loss_markers_give_way_to_the_band_on_long_runs():
    app = make_app(lambda *a: None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        pane = app.screen.query_one(LossPlot)
        calls = record_calls(pane)
        pane.set_data(ends([90.0] * 1000), 1000)
        assert not [c for c in calls if c[0] == "scatter"]
        pane.context.loss_per_batch = False  # f4: the per-epoch means, as a line
        calls.clear()
        pane.redraw()
        (only,) = calls
        assert len(only[1]) <= 2 * pane.plot_width
        assert max(only[2]) == 0.3 + 1.0  # epoch 1's mean, the highest, is still there


async def test_the_lr_pane_draws_a_long_schedule_in_a_few_points_a_column():
    app = make_app(lambda *a: None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        pane = app.screen.query_one(LrPlot)
        planned = [1e-2 * 0.99**t for t in range(1000)]  # a drop every epoch
        calls = record_calls(pane)
        pane.set_data(planned, planned[:600])
        plan, used = calls[0], calls[-1]
        assert len(plan[1]) + len(used[1]) <= 2 * 5 * pane.plot_width
        # The lr used covers the plan up to epoch 600; the plan is drawn from its
        # last epoch on (so the drop after it shows) to the end.
        assert plan[1][0] == 599 and plan[1][-1] == 1000
        assert used[1][0] == 0 and used[1][-1] == 600

        calls.clear()
        off_plan = [*planned[:599], 5e-3]  # a resumed run that did not follow it
        pane.set_data(planned, off_plan)
        assert calls[0][1][0] == 0  # the whole plan is drawn, so the difference shows


async def test_lr_ticks_stay_inside_the_plotted_range():
    app = make_app(lambda *a: None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        pane = app.screen.query_one(LrPlot)
        ticks: list[list[float]] = []
        limits: list[tuple[float, float]] = []
        yticks, ylim = pane.plt.yticks, pane.plt.ylim
        pane.plt.yticks = lambda t, *a, **k: ticks.append(list(t)) or yticks(t, *a, **k)
        pane.plt.ylim = lambda lo, hi: limits.append((lo, hi)) or ylim(lo, hi)
        # 1e-3 down to 7.8e-6: the levels themselves are labelled, the highest and the
        # lowest among them, each on the row its line is drawn in.
        levels = [1e-3 * 0.5**k for k in range(8)]
        pane.set_data(levels, [])
        (lo, hi), shown = limits[-1], ticks[-1]
        assert shown and all(lo <= t <= hi for t in shown)
        assert shown[0] == pane.snap(-3.0, lo, hi)
        assert shown[-1] == pane.snap(math.log10(levels[-1]), lo, hi)


async def test_the_top_lr_level_keeps_its_label_after_an_edit():
    """Issue 23: after an edit to 0.0123 (or a resume), the highest level lost its label:
    its row, computed as lo + (hi - lo), came out a hair above hi and off the axis."""
    from steplr_tui.runfolder.schedule import lrs_with_edits

    app = make_app(lambda *a: None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane = app.screen.query_one(LrPlot)
        labels: list[list[str]] = []
        yticks = pane.plt.yticks
        pane.plt.yticks = lambda t, lab=None: labels.append(list(lab or [])) or yticks(t, lab)
        planned = lrs_with_edits(0.005, 5, 0.5, 40, {2: ScheduleEdit(lr=0.0123)})
        for top in (0.0123, 0.02, 0.0377):
            plan = [lr * top / 0.0123 if i >= 2 else lr for i, lr in enumerate(planned)]
            pane.set_data(plan, plan[:2])
            assert labels[-1][0].strip() == format_lr(max(plan)), (top, labels[-1])


async def test_a_scheduler_stepped_per_batch_is_drawn_step_by_step():
    """OneCycleLR's curve over 3 epochs of 40 steps: the plan at every step, in epochs."""
    from steplr_tui.viewer.preview import FineLrs

    app = make_app(lambda *a: None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        pane = app.screen.query_one(LrPlot)
        steps = [0.1 * math.sin(math.pi * (i + 1) / 121) for i in range(120)]
        calls = record_calls(pane)
        fine = FineLrs(steps, steps[:50], 40, 0)
        pane.set_data(steps[::40], steps[:40:40], fine=fine)
        plan, used = calls[0], calls[-1]
        assert plan[1][0] == 0 and plan[1][-1] == 119 / 40  # every step, x in epochs
        assert len(set(plan[2])) > 3  # a curve, not a staircase of 3 epoch levels
        assert used[1][-1] == 49 / 40
        assert len(plan[1]) <= 4 * pane.plot_width  # bounded for a long run too


async def test_the_first_frame_builds_each_pane_once_at_its_size_and_fits_the_status_line(
    monkeypatch,
):
    """Built before layout, a pane had no size: the first frame drew its ticks for none
    and the next frame built it again at its size; the status line was cut to 20
    columns."""
    from steplr_tui.viewer.widgets.plots import Pane
    from tests.fakes import FakeTrainer
    from tests.helpers import SIZE, make_app, status

    built: list[tuple[str, int, int]] = []
    build = Pane._build

    def spy(self) -> None:
        built.append((type(self).__name__, self.size.width, self.size.height))
        build(self)

    monkeypatch.setattr(Pane, "_build", spy)
    app = make_app(FakeTrainer())
    first: list[tuple[list, str]] = []

    def on_display() -> None:
        if not first:
            first.append((list(built), status(app)))

    monkeypatch.setattr(app, "post_display_hook", on_display)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        panes, line = first[0]
        assert sorted(name for name, *_ in panes) == ["LossPlot", "LrPlot", "MetricPlot"]
        assert all(width > 0 and height > 0 for _, width, height in panes)
        # Built again later only for new data (the plan once every field has its value),
        # never for a size it did not know.
        assert {(name, w, h) for name, w, h in built} == set(panes)
        assert "ready: ctrl+r starts here, ctrl+n starts detached" in line
