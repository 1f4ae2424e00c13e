"""Steering in the app (live edits, views, phase table, overlays, runs table, export),
with the run side's own Steering deciding the requests."""

from __future__ import annotations

import csv
from pathlib import Path

from textual.widgets import DataTable, Input, Static

from steplr_tui.run.control import Inbox
from steplr_tui.run.jobs import Job, run_job
from steplr_tui.runfolder import EditRequest, EpochEnd, RunEnded, Status
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.reader import list_runs
from steplr_tui.runfolder.runs_table import sort_runs
from steplr_tui.runfolder.schedule import ScheduleEdit, format_lr, lrs_with_edits
from steplr_tui.viewer.lr_phases import phases
from steplr_tui.viewer.screens.export import ExportScreen
from steplr_tui.viewer.screens.runs import RunsScreen
from steplr_tui.viewer.widgets.phases import PhaseTable
from steplr_tui.viewer.widgets.plots import LossPlot, LrPlot
from tests.fakes import FakeTrainer, scripted_events
from tests.helpers import (
    SIZE,
    advance,
    log_text,
    make_app,
    start_and_finish_epoch_1,
    type_into,
    wait_for,
)
from tests.synthetic import synthetic_data

CONFIG = TrainConfig(data_dir="/data/mnist", epochs=6, step_size=2, gamma=0.1, lr=0.001)


async def test_typed_edit_previews_at_once_and_applies_only_once_queued():
    trainer = FakeTrainer(epochs_done=1, block=True)
    app = make_app(trainer, CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, trainer.emitted.is_set)
        await wait_for(pilot, lambda: len(app.screen.view.epochs) == 1)
        screen = app.screen

        await type_into(pilot, "gamma", "0.5")
        lr_plot = screen.query_one(LrPlot)
        # Drawn from the run's state with the typed edit: epoch 2 is the boundary.
        expected = lrs_with_edits(0.001, 2, 0.1, 6, {2: ScheduleEdit(gamma=0.5)})
        assert lr_plot.pending == expected[2:] and lr_plot.pending_from == 2
        assert "typed gamma 0.5" in str(lr_plot.border_subtitle)
        assert trainer.steering.queued is None  # not sent while still being typed
        assert "enter queues it for after epoch 2" in str(lr_plot.border_subtitle)

        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.view.pending)
        assert trainer.steering.queued == ScheduleEdit(gamma=0.5)
        await pilot.pause()
        # The boundary is the run's own answer.
        assert "queued gamma 0.5 · applies after epoch 2" in str(lr_plot.border_subtitle)

        await advance(pilot, trainer, 3)
        view = screen.view
        assert [e.lr for e in view.epochs] == expected[:4]
        assert view.edits == {2: ScheduleEdit(gamma=0.5)}
        assert view.mismatches == []
        assert "edit applied after epoch 2: gamma 0.5" in log_text(app)
        # Plot panes repaint at most once a second while training.
        await wait_for(pilot, lambda: "edit" in str(screen.query_one(LossPlot).border_title))
        assert screen.context.edit_epochs == [2]
        assert lr_plot.pending == []


async def test_half_typed_value_never_reaches_the_trainer():
    trainer = FakeTrainer(epochs_done=1, block=True)
    app = make_app(trainer, CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await start_and_finish_epoch_1(pilot)
        await type_into(pilot, "lr", "0.1")  # on the way to 0.15, say
        await advance(pilot, trainer, 1)
        assert app.screen.view.epochs[-1].edit is None
        assert app.screen.view.edits == {}


async def test_putting_the_value_back_withdraws_a_queued_edit():
    trainer = FakeTrainer(epochs_done=1, block=True)
    app = make_app(trainer, CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await start_and_finish_epoch_1(pilot)
        await type_into(pilot, "step_size", "3")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.view.pending)
        assert trainer.steering.queued == ScheduleEdit(step_size=3)
        await type_into(pilot, "step_size", "2")
        await pilot.pause()
        # Before enter, the subtitle says what enter will do: withdraw, not queue.
        subtitle = str(app.screen.query_one(LrPlot).border_subtitle)
        assert "enter withdraws step_size 3" in subtitle and "queues" not in subtitle
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.screen.view.pending)
        assert trainer.steering.queued is None
        await pilot.pause()
        assert app.screen.query_one(LrPlot).pending == []
        # The log says so, once: a withdrawn edit never reads as still queued.
        assert "edit withdrawn: step_size 3 (" in log_text(app)
        assert "withdrew" not in log_text(app) and log_text(app).count("edit withdrawn") == 1


async def test_invalid_edit_is_refused_with_the_rule():
    trainer = FakeTrainer(epochs_done=1, block=True)
    app = make_app(trainer, CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await start_and_finish_epoch_1(pilot)
        await type_into(pilot, "gamma", "2")
        await pilot.press("enter")
        lr_pane = app.screen.query_one(LrPlot)
        await wait_for(pilot, lambda: "fix gamma" in str(lr_pane.border_subtitle))
        assert trainer.steering.queued is None
        errors = str(app.screen.query_one("#param-errors", Static).render())
        assert "gamma must be a number in (0, 1]" in errors


async def test_lr_that_differs_from_the_plan_is_flagged():
    def wrong_lr_trainer(job, emit, should_stop):
        for event in scripted_events(job.config, job.config.epochs):
            if isinstance(event, EpochEnd) and event.epoch == 3:
                event = EpochEnd(3, 0.5, event.train_loss, event.test_acc, 0.5, 1.5)
            emit(event)
        emit(RunEnded(Status.COMPLETED, "", job.config.epochs, 3.0))

    app = make_app(wrong_lr_trainer, CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        assert app.screen.view.mismatches == ["epoch 3 used lr 0.5, the plan says 1e-4"]
        lr_pane = app.screen.query_one(LrPlot)
        await wait_for(pilot, lambda: "⚠ epoch 3 used lr 0.5" in str(lr_pane.border_subtitle))
        assert "warning: epoch 3 used lr 0.5" in log_text(app)


async def test_view_keys_switch_axes_scale_and_loss_mode():
    app = make_app(FakeTrainer(), CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        screen = app.screen
        lr_plot, loss = screen.query_one(LrPlot), screen.query_one(LossPlot)
        before = lr_plot.plt.build()
        assert "log scale" in str(lr_plot.border_title) and "epoch" in before

        await pilot.press("f2")
        assert screen.context.x_iterations
        assert "iteration" in lr_plot.plt.build() and "iteration" in loss.plt.build()

        log_build = lr_plot.plt.build()
        await pilot.press("f3")
        assert "linear" in str(lr_plot.border_title)
        assert lr_plot.plt.build() != log_build

        await pilot.press("f4")
        assert "per epoch" in str(loss.border_title)
        assert not screen.context.loss_per_batch

        await pilot.press("f2", "f3", "f4")
        assert "log scale" in str(lr_plot.border_title) and screen.context.loss_per_batch


async def test_phase_table_has_a_row_per_lr_phase():
    app = make_app(FakeTrainer(), CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        await pilot.press("f5")
        table = app.screen.query_one(PhaseTable)
        assert table.display and not app.screen.query_one("#log").display
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        expected = phases(app.screen.view.epochs)
        assert len(rows) == len(expected) == 3
        assert [str(row[1]).strip() for row in rows] == ["1-2", "3-4", "5-6"]
        assert [row[0] for row in rows] == ["1e-3", "1e-4", "1e-5"]
        assert [str(row[2]).strip() for row in rows] == [f"{p.loss_change:+.4f}" for p in expected]
        await pilot.press("f5")
        assert app.screen.query_one("#log").display


async def test_phase_table_of_a_long_run_updates_in_place_and_follows_the_newest_phase():
    app = make_app(FakeTrainer(), CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        table = app.screen.query_one(PhaseTable)
        # A drop every epoch: a phase per epoch, far more than the table's height.
        ends = [
            EpochEnd(e, 1e-3 * 0.99**e, 1 / e, 90 + e / 100, 0.5, e * 0.5) for e in range(1, 301)
        ]

        def shown() -> list[tuple[str, str, str]]:
            rows = (table.get_row_at(i) for i in range(table.row_count))
            return [(row[0], str(row[1]).strip(), str(row[2]).strip()) for row in rows]

        def expected(n: int) -> list[tuple[str, str, str]]:
            return [(format_lr(p.lr), p.epochs, f"{p.loss_change:+.4f}") for p in phases(ends[:n])]

        added: list[object] = []
        add_row = table.add_row
        table.add_row = lambda *cells, **kw: added.append(cells) or add_row(*cells, **kw)
        table.show(ends[:200])
        await pilot.pause()
        before = 200
        for n in (201, 202, 250, 300):
            added.clear()
            table.show(ends[:n])
            await pilot.pause()
            assert shown() == expected(n)
            # Only the new phases' rows are added, not the hundreds before them.
            assert len(added) == n - before
            before = n
            assert table.scroll_y == table.max_scroll_y > 0  # the newest phase in view
        table.show(ends[:3])  # a new run starts over
        await pilot.pause()
        assert shown() == expected(3)
        # An epoch that extends the last phase replaces that row alone.
        ends = [EpochEnd(e, 1e-3 * 0.5 ** (e // 2), 1 / e, 90.0, 0.5, e * 0.5) for e in range(1, 9)]
        table.show(ends[:6])
        added.clear()
        table.show(ends[:7])
        await pilot.pause()
        assert len(added) == 1 and shown() == expected(7)
        assert shown()[-1][1] == "6-7"


async def test_pin_overlays_the_last_run_and_names_it_in_the_legend():
    app = make_app(FakeTrainer(), CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        await pilot.press("f7")
        screen = app.screen
        (overlay,) = screen.context.overlays
        assert overlay.label == "adam lr 1e-3 s2 g0.1 b64"
        assert list(overlay.lrs) == [e.lr for e in screen.view.epochs]
        legend = screen.query_one("#legend")
        assert legend.display and "adam lr 1e-3 s2 g0.1 b64" in str(legend.render())
        await pilot.press("f7")
        assert screen.context.overlays == [] and not legend.display


def record_runs(tmp_path: Path) -> None:
    data = synthetic_data(n_train=256, n_test=64)
    for lr, epochs in ((0.05, 3), (0.001, 2)):
        config = TrainConfig(epochs=epochs, batch_size=64, lr=lr, device="cpu")
        run_job(Job(config, tmp_path), lambda e: None, data=data)


async def test_runs_table_sorts_and_picks_overlays(tmp_path: Path):
    record_runs(tmp_path)
    app = make_app(FakeTrainer(), CONFIG, runs_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.runs)
        runs_screen = app.screen
        table = runs_screen.query_one(DataTable)
        assert table.row_count == 2
        await pilot.press("s")
        assert runs_screen.sort_key == "best acc"
        assert runs_screen.runs == sort_runs(list_runs(tmp_path), "best acc")
        best = runs_screen.runs[0]
        table.move_cursor(row=0)
        await pilot.press("space")
        assert table.get_row_at(0)[0] == "◆"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, RunsScreen))
        (overlay,) = app.screen.context.overlays
        assert overlay.key == str(best.path)
        assert list(overlay.accs) == [m["test_acc"] for m in best.metrics]
        assert overlay.steps_per_epoch == 4
        # Opening the table again shows the overlay marked; space unmarks it.
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.runs)
        assert str(best.path) in app.screen.overlaid
        await pilot.press("c", "escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, RunsScreen))
        assert app.screen.context.overlays == []


async def test_export_key_writes_csv_and_shows_the_snippet(tmp_path: Path):
    data = synthetic_data(n_train=256, n_test=64)

    def real(job, emit, should_stop):
        return run_job(job, emit, should_stop, data=data)

    config = TrainConfig(epochs=2, batch_size=64, lr=0.01, device="cpu")
    app = make_app(real, config, runs_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f6")
        assert not isinstance(app.screen, ExportScreen)  # nothing to export yet
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED", timeout=60)
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen))
        (run,) = list_runs(tmp_path)
        with open(run.path / "metrics.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert [float(r["lr"]) for r in rows] == [m["lr"] for m in run.metrics]
        assert "StepLR(" in app.screen.snippet and "lr=0.01" in app.screen.snippet
        await pilot.press("escape")


async def test_resumed_edited_run_shows_its_recorded_values(tmp_path: Path):
    data = synthetic_data(n_train=256, n_test=64)
    config = TrainConfig(epochs=4, batch_size=64, lr=0.01, step_size=1, gamma=0.5, device="cpu")
    inbox = Inbox()
    inbox.put(EditRequest("e1", ScheduleEdit(lr=0.02, gamma=0.25), "test"))
    done = []
    run_job(
        Job(config, tmp_path, inbox=inbox),
        lambda e: done.append(e) if isinstance(e, EpochEnd) else None,
        lambda: len(done) >= 2,
        data=data,
    )
    (run,) = list_runs(tmp_path)

    def real(job, emit, should_stop):
        return run_job(job, emit, should_stop, data=data)

    app = make_app(real, TrainConfig(device="cpu"), runs_dir=tmp_path, resume=run.path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED", timeout=60)
        view = app.screen.view
        assert [e.lr for e in view.epochs] == lrs_with_edits(
            0.01, 1, 0.5, 4, {1: ScheduleEdit(lr=0.02, gamma=0.25)}
        )
        assert view.mismatches == []
        assert app.screen.context.edit_epochs == [1]
        # The fields show its record: the config, then the edit applied after epoch 1.
        texts = {n: app.screen.query_one(f"#field-{n}", Input).value for n in ("lr", "gamma")}
        assert texts == {"lr": "0.02", "gamma": "0.25"}


async def test_real_trainer_takes_a_live_edit_from_the_dashboard():
    data = synthetic_data(n_train=512, n_test=64)
    config = TrainConfig(epochs=1000, batch_size=64, lr=0.01, step_size=10_000, device="cpu")

    def real(job, emit, should_stop):
        return run_job(job, emit, should_stop, data=data)

    app = make_app(real, config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.view.epochs, timeout=30)
        # Set directly: keys are slow to arrive while the real trainer holds the GIL.
        field = app.screen.query_one("#field-lr", Input)
        field.focus()
        field.value = "0.003"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.view.edits, timeout=30)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not app.screen.view.active, timeout=30)
        (after,) = app.screen.view.edits
        lrs = [e.lr for e in app.screen.view.epochs]
        assert lrs[:after] == [0.01] * after
        assert all(lr == 0.003 for lr in lrs[after:])


async def test_after_a_steered_run_the_preview_follows_the_edited_fields():
    from steplr_tui.runfolder.schedule import plan

    trainer = FakeTrainer(epochs_done=1, block=True)
    app = make_app(trainer, CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await start_and_finish_epoch_1(pilot)
        await type_into(pilot, "gamma", "0.5")
        await pilot.press("enter")
        await advance(pilot, trainer, 1)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not app.screen.view.active)
        await pilot.pause()
        assert app.screen.query_one(LrPlot).planned == plan(0.001, 2, 0.5, 6).lrs


async def test_resumed_run_whose_recorded_schedule_was_changed_is_flagged(tmp_path: Path):
    import json

    data = synthetic_data(n_train=256, n_test=64)
    config = TrainConfig(epochs=4, batch_size=64, lr=0.01, step_size=1, gamma=0.5, device="cpu")
    done = []
    run_job(
        Job(config, tmp_path),
        lambda e: done.append(e) if isinstance(e, EpochEnd) else None,
        lambda: len(done) >= 2,
        data=data,
    )
    (run,) = list_runs(tmp_path)
    # Someone edits the record by hand: the checkpoint still holds the old schedule.
    raw = json.loads((run.path / "config.json").read_text())
    raw["config"]["gamma"] = 0.9
    (run.path / "config.json").write_text(json.dumps(raw))

    def real(job, emit, should_stop):
        return run_job(job, emit, should_stop, data=data)

    app = make_app(real, TrainConfig(device="cpu"), runs_dir=tmp_path, resume=run.path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED", timeout=60)
        mismatches = app.screen.view.mismatches
        assert mismatches and mismatches[0] == "epoch 3 used lr 2.5e-3, the plan says 8.1e-3"
        lr_pane = app.screen.query_one(LrPlot)
        await wait_for(pilot, lambda: "⚠" in str(lr_pane.border_subtitle))


async def test_edits_queued_before_one_boundary_apply_together_in_order():
    trainer = FakeTrainer(epochs_done=1, block=True)
    app = make_app(trainer, CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await start_and_finish_epoch_1(pilot)
        screen = app.screen
        await type_into(pilot, "gamma", "0.5")
        await pilot.press("enter")
        await type_into(pilot, "lr", "0.002")
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(screen.view.pending) == 2)
        assert trainer.steering.queued == ScheduleEdit(lr=0.002, gamma=0.5)
        await advance(pilot, trainer, 1)
        assert screen.view.edits == {2: ScheduleEdit(lr=0.002, gamma=0.5)}
        assert screen.view.pending == {}
        await pilot.press("tab")  # leave the lr field: both fields show what the run holds
        await pilot.pause()
        assert screen.query_one("#field-lr", Input).value == "0.002"
        assert screen.query_one("#field-gamma", Input).value == "0.5"


async def test_iteration_axis_before_a_run_follows_the_batch_size_field():
    app = make_app(FakeTrainer(), CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        screen = app.screen
        assert screen.context.steps_per_epoch == 938  # 60,000 / 64, rounded up
        assert "iteration" in screen.query_one(LrPlot).plt.build()
        await type_into(pilot, "batch_size", "600")
        await wait_for(pilot, lambda: screen.context.steps_per_epoch == 100)
        await pilot.press("end", "x")  # "600x" is invalid: the last valid value stays
        await pilot.pause(0.2)
        assert screen.context.steps_per_epoch == 100
