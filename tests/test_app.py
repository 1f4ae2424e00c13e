"""Pilot tests: the dashboard driven by keys, with a scripted trainer."""

from __future__ import annotations

import threading
import time

from textual.widgets import Input, Select, Static

from steplr_tui.cli.options import parse_options
from steplr_tui.runfolder import EpochEnd
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.viewer.app import SteplrApp
from steplr_tui.viewer.screens.dashboard import DashboardScreen
from steplr_tui.viewer.widgets.footer import KeyFooter
from steplr_tui.viewer.widgets.plots import LossPlot, LrPlot, MetricPlot
from steplr_tui.viewer.widgets.run_log import event_lines
from tests.fakes import FakeTrainer, scripted_events
from tests.helpers import SIZE, log_text, make_app, status, wait_for


async def test_flags_fill_fields():
    options = parse_options(
        [
            "--lr",
            "0.05",
            "--step-size",
            "3",
            "--gamma",
            "0.5",
            "--epochs",
            "9",
            "--batch-size",
            "32",
            "--optimizer",
            "sgd",
            "--momentum",
            "0.7",
            "--seed",
            "11",
            "--device",
            "cpu",
            "--dataset",
            "sample",
        ]
    )
    app = make_app(FakeTrainer(), options.config)
    async with app.run_test(size=SIZE):
        screen = app.screen
        texts = {
            n: screen.query_one(f"#field-{n}", Input).value
            for n in ("lr", "step_size", "gamma", "epochs", "batch_size", "momentum", "seed")
        }
        assert texts == {
            "lr": "0.05",
            "step_size": "3",
            "gamma": "0.5",
            "epochs": "9",
            "batch_size": "32",
            "momentum": "0.7",
            "seed": "11",
        }
        assert screen.query_one("#field-optimizer", Select).value == "sgd"
        assert screen.query_one("#field-device", Select).value == "cpu"
        assert screen.query_one("#field-dataset", Select).value == "sample"
        assert not screen.query_one("#field-momentum", Input).disabled


async def test_start_runs_and_shows_results():
    trainer = FakeTrainer()
    app = make_app(trainer)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        assert trainer.calls == [TrainConfig(data_dir="/data/mnist")]
        expected = [
            line
            for e in scripted_events(trainer.calls[0], 5)
            if isinstance(e, EpochEnd)
            for line in event_lines(e)
        ]
        logged = list(app.screen.log_lines)
        start = logged.index(expected[0])
        assert logged[start : start + len(expected)] == expected
        plot = app.screen.query_one(MetricPlot)
        await wait_for(pilot, lambda: plot.epochs and plot.epochs[-1].epoch == 5)
        lr = app.screen.query_one(LrPlot)
        await wait_for(pilot, lambda: lr.actual == [0.001, 0.001, 0.0001, 0.0001, 1e-05])
        await wait_for(pilot, lambda: "done" in status(app) and "epoch 5/5" in status(app))


async def test_invalid_input_blocks_start():
    trainer = FakeTrainer()
    app = make_app(trainer)
    async with app.run_test(size=SIZE) as pilot:
        lr = app.screen.query_one("#field-lr", Input)
        lr.focus()
        lr.value = ""
        await pilot.press(*"abc")
        await pilot.pause()
        assert lr.has_class("-invalid")
        errors = str(app.screen.query_one("#param-errors", Static).render())
        assert "lr must be a number in (0, 1000] (got 'abc')" in errors
        await pilot.press("ctrl+r")  # works while the field has focus, and is refused
        await pilot.pause()
        assert trainer.calls == []
        assert app.screen.view.status is None
        assert app.focused is lr
        # Fixing it lets Start through.
        lr.value = "0.01"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        assert trainer.calls[0].lr == 0.01


async def test_cursor_holds_still_while_a_run_is_in_progress():
    # A blink repaints the field twice a second, on the GIL the training thread
    # needs; during a run the cursor stays shown without blinking.
    trainer = FakeTrainer(epochs_done=2, block=True)
    app = SteplrApp(TrainConfig(data_dir="/data/mnist"), train_fn=trainer, warm_up=False)
    async with app.run_test(size=SIZE) as pilot:
        fields = list(app.screen.query(Input))
        assert fields and all(f.cursor_blink for f in fields)
        await pilot.press("ctrl+r")
        await wait_for(pilot, trainer.emitted.is_set)
        assert not any(f.cursor_blink for f in fields)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen.view.status == "STOPPED")
        assert all(f.cursor_blink for f in fields)


async def test_stop_then_restart_gives_a_fresh_run():
    trainer = FakeTrainer(epochs_done=2, block=True)
    app = make_app(trainer)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, trainer.emitted.is_set)
        await wait_for(pilot, lambda: len(app.screen.view.epochs) == 2)
        assert app.screen.query_one("#field-epochs", Input).disabled  # fields describe the run
        assert not app.screen.query_one("#field-lr", Input).disabled  # live edits
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen.view.status == "STOPPED")
        assert trainer.finished.wait(2)
        assert "Run stopped after 2 epochs" in log_text(app)
        assert not app.screen.query_one("#field-lr", Input).disabled
        await wait_for(pilot, lambda: not app.screen.controller.busy)
        trainer.block, trainer.epochs_done = False, None
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        assert len(trainer.calls) == 2
        assert [e.epoch for e in app.screen.view.epochs] == [1, 2, 3, 4, 5]


async def test_start_while_running_is_refused():
    trainer = FakeTrainer(epochs_done=1, block=True)
    app = make_app(trainer)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, trainer.emitted.is_set)
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert len(trainer.calls) == 1
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen.view.status == "STOPPED")


async def test_quit_during_training_stops_the_worker():
    trainer = FakeTrainer(epochs_done=1, block=True)
    app = make_app(trainer)
    started = time.monotonic()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, trainer.emitted.is_set)
        await pilot.press("ctrl+q")
    assert trainer.finished.wait(2.0)
    assert time.monotonic() - started < 10
    assert not [t for t in threading.enumerate() if t.name.startswith("train-")]


async def test_up_down_nudge_and_preview_follows_typing():
    app = make_app(FakeTrainer())
    async with app.run_test(size=SIZE) as pilot:
        plot = app.screen.query_one(LrPlot)
        assert plot.planned == [0.001, 0.001, 0.0001, 0.0001, 1e-05]
        assert plot.border_subtitle == "drops at epoch 3, 5 · final 1e-5"
        step = app.screen.query_one("#field-step_size", Input)
        step.focus()
        await pilot.press("down")
        await pilot.pause()
        assert step.value == "1"
        assert len(plot.planned) == 5 and plot.planned[1] < plot.planned[0]
        await pilot.press("up", "up")
        await pilot.pause()
        assert step.value == "3"
        assert plot.border_subtitle == "drops at epoch 4 · final 1e-4"
        lr = app.screen.query_one("#field-lr", Input)
        lr.focus()
        await pilot.press("up")
        await pilot.pause()
        assert lr.value == "0.002" and plot.planned[0] == 0.002
        # An invalid plan field keeps the last good preview and says what to fix.
        epochs = app.screen.query_one("#field-epochs", Input)
        epochs.value = "0"
        await wait_for(pilot, lambda: "fix epochs" in plot.border_subtitle)  # the next frame
        assert plot.planned[0] == 0.002


async def test_tab_moves_between_fields_and_momentum_follows_optimizer():
    app = make_app(FakeTrainer())
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#field-lr", Input).focus()
        await pilot.press("tab")
        assert app.focused.id == "field-step_size"
        await pilot.press("shift+tab")
        assert app.focused.id == "field-lr"
        momentum = app.screen.query_one("#field-momentum", Input)
        assert momentum.disabled  # Adam has no momentum
        app.screen.query_one("#field-optimizer", Select).value = "sgd"
        await pilot.pause()
        assert not momentum.disabled


async def test_failure_is_shown_and_next_start_works():
    trainer = FakeTrainer(fail="loss became nan at epoch 2, batch 3: try a lower lr")
    app = make_app(trainer)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.view.status == "FAILED")
        assert "FAILED after 5 epochs: loss became nan" in log_text(app)
        await wait_for(pilot, lambda: "FAILED" in status(app))
        trainer.fail = None
        await wait_for(pilot, lambda: not app.screen.controller.busy)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")


async def test_trainer_that_raises_does_not_take_the_app_down():
    trainer = FakeTrainer(raise_exc=RuntimeError("boom"))
    app = make_app(trainer)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.view.status == "FAILED")
        assert "RuntimeError: boom" in log_text(app)
        assert app.is_running


async def test_persistent_notice_is_shown():
    trainer = FakeTrainer(notice="Training on the bundled MNIST sample, not full MNIST: offline")
    app = make_app(trainer)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        notice = app.screen.query_one("#notice", Static)
        await wait_for(pilot, lambda: notice.display)
        assert "bundled MNIST sample" in str(notice.render())


async def test_start_flag_starts_at_launch():
    trainer = FakeTrainer()
    app = make_app(trainer, start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        assert len(trainer.calls) == 1


async def test_too_small_terminal_says_so():
    app = make_app(FakeTrainer())
    async with app.run_test(size=(50, 15)) as pilot:
        await pilot.pause()
        assert app.screen.has_class("-too-small")
        text = str(app.screen.query_one("#too-small", Static).render())
        assert "50x15" in text and "at least 60x18" in text
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert not app.screen.has_class("-too-small")


async def test_real_trainer_in_the_worker_on_synthetic_data():
    from steplr_tui.run.jobs import run_job
    from tests.synthetic import synthetic_data

    data = synthetic_data(n_train=2048, n_test=256)

    def real_on_synthetic(job, emit, should_stop):
        return run_job(job, emit, should_stop, data=data)

    app = make_app(real_on_synthetic, TrainConfig(epochs=3, batch_size=32, device="cpu"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED", timeout=60)
        view = app.screen.view
        assert [e.epoch for e in view.epochs] == [1, 2, 3]
        assert view.epochs[-1].test_acc > 90
        assert len(view.losses) == 3 * 64
        await wait_for(pilot, lambda: len(app.screen.query_one(LossPlot).series) == 3 * 64)


async def test_dashboard_is_the_default_screen():
    app = make_app(FakeTrainer())
    async with app.run_test(size=SIZE):
        assert isinstance(app.screen, DashboardScreen)


async def test_runs_screen_lists_records_and_resumes_the_selected_run(tmp_path):
    from textual.widgets import DataTable

    from steplr_tui.run.jobs import Job, run_job
    from steplr_tui.runfolder import EpochEnd as _EpochEnd
    from steplr_tui.runfolder.reader import list_runs
    from tests.synthetic import synthetic_data

    data = synthetic_data()
    config = TrainConfig(epochs=4, batch_size=128, lr=0.02, device="cpu")
    done = []
    run_job(
        Job(config, tmp_path),
        lambda e: done.append(e) if isinstance(e, _EpochEnd) else None,
        lambda: len(done) >= 1,
        data=data,
    )
    run_job(Job(config.with_values(epochs=1), tmp_path), lambda e: None, data=data)
    stopped = next(r for r in list_runs(tmp_path) if r.status == "STOPPED")

    trainer = FakeTrainer()
    app = make_app(trainer, runs_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: app.screen.query(DataTable) and app.screen.runs)
        table = app.screen.query_one(DataTable)
        assert table.row_count == 2
        names = [run.name for run in app.screen.runs]
        # A completed run is refused, with the reason.
        table.move_cursor(
            row=names.index(next(r.name for r in app.screen.runs if r.status == "COMPLETED"))
        )
        await pilot.press("enter")
        await pilot.pause()
        assert trainer.calls == []
        table.move_cursor(row=names.index(stopped.name))
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(trainer.calls) == 1)
        assert trainer.jobs[0].resume == stopped.path
        assert trainer.calls[0].lr == 0.02 and trainer.calls[0].epochs == 4
        await pilot.pause()
        assert app.screen.query_one("#field-lr", Input).value == "0.02"
        assert app.screen.query_one("#field-epochs", Input).value == "4"


async def test_keys_left_out_of_a_narrow_footer_still_work():
    """Below 100 columns f2-f5, f7 and ctrl+g leave the footer, not the keyboard."""
    app = SteplrApp(TrainConfig(data_dir="/data"), train_fn=FakeTrainer(), warm_up=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        footer = screen.query_one(KeyFooter)
        shown = {k.action for k in footer.items}
        assert "toggle_phases" not in shown and "sweeps" not in shown and "start" in shown
        await pilot.press("f5")
        assert screen.has_class("-phases")
        await pilot.press("f3")
        assert screen.context.lr_log is False
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert "toggle_phases" in {k.action for k in footer.items}
