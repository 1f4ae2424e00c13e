"""Nothing typed is lost or changed: keys in bursts, fields the run must not touch,
edit timing told right, the runs table's keys in order (issue 13, items 1 to 4)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from textual import events
from textual.widgets import DataTable, Input

from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.viewer.screens.runs import RunsScreen
from steplr_tui.viewer.widgets.footer import KeyFooter
from steplr_tui.viewer.widgets.plots import LrPlot
from tests.fakes import FakeTrainer
from tests.helpers import (
    SIZE,
    PtyProcess,
    advance,
    burst,
    log_text,
    make_app,
    type_into,
    wait_for,
    wait_until,
)

CONFIG = TrainConfig(data_dir="/data/mnist", epochs=20, step_size=5, gamma=0.5, batch_size=16)


def field(app, name: str) -> Input:
    return app.screen.query_one(f"#field-{name}", Input)


async def test_a_burst_of_edits_lands_whole_in_every_field_idle_and_during_a_run():
    trainer = FakeTrainer(epochs_done=1, block=True)
    app = make_app(trainer, CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        field(app, "lr").focus()
        await pilot.pause()
        burst(app, *["backspace"] * 12, *"0.005")
        await wait_for(pilot, lambda: field(app, "lr").value == "0.005")
        # Across fields: the keys after a tab belong to the next field.
        burst(app, "tab", *["backspace"] * 5, *"3", "tab", *["backspace"] * 5, *"0.25")
        await wait_for(
            pilot,
            lambda: (field(app, "step_size").value, field(app, "gamma").value) == ("3", "0.25"),
        )
        # A paste lands too.
        field(app, "epochs").focus()
        await pilot.pause()
        burst(app, *["backspace"] * 4)
        app.post_message(events.Paste("12"))
        await wait_for(pilot, lambda: field(app, "epochs").value == "12")
        # ctrl+r right behind the keys starts with what they typed.
        field(app, "lr").focus()
        burst(app, *["backspace"] * 8, *"0.0007", "ctrl+r")
        await wait_for(pilot, lambda: trainer.calls)
        assert trainer.calls[0].lr == 0.0007 and trainer.calls[0].step_size == 3
        await wait_for(pilot, lambda: len(app.screen.view.epochs) == 1)
        # And during a run, in a live field.
        field(app, "gamma").focus()
        burst(app, *["backspace"] * 8, *"0.125", "enter")
        await wait_for(pilot, lambda: app.screen.view.pending)
        assert trainer.steering.queued.gamma == 0.125


def test_a_burst_in_a_pty_lands_before_the_start_it_precedes(tmp_path: Path):
    env = {"STEPLR_TUI_RUNS": str(tmp_path), "STEPLR_TUI_DATA": str(tmp_path / "none")}
    app = PtyProcess(["--dataset", "sample", "--epochs", "1", "--device", "cpu"], env)
    try:
        wait_until(lambda: b"ready" in app.output, 30, "the first frame")
        app.send(b"\x7f" * 12 + b"0.005" + b"\x12")  # 12 backspaces, 0.005, ctrl+r
        wait_until(lambda: list(tmp_path.glob("*/config.json")), 60, "the run to start")
        (config,) = tmp_path.glob("*/config.json")
        assert json.loads(config.read_text())["config"]["lr"] == 0.005
    finally:
        app.close()


async def test_the_run_never_writes_into_a_field_being_edited():
    trainer = FakeTrainer(epochs_done=4, block=True)
    app = make_app(trainer, CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(app.screen.view.epochs) == 4)
        await type_into(pilot, "lr", "0.002")
        await pilot.press("tab")  # queues it, and moves to step_size
        await wait_for(pilot, lambda: app.screen.view.pending)
        await pilot.press("end", *["backspace"] * 3)  # step_size cleared, not yet retyped
        assert field(app, "step_size").value == ""
        await advance(pilot, trainer, 1)  # the lr edit applies at this boundary
        assert app.screen.view.edits == {5: app.screen.view.edits[5]}
        await pilot.pause(0.2)
        assert field(app, "step_size").value == ""  # left as the user left it
        await pilot.press("3", "enter")
        await wait_for(pilot, lambda: app.screen.view.pending)
        assert trainer.steering.queued.step_size == 3  # 3, not 35
        assert field(app, "lr").value == "0.002"


async def test_edit_timing_is_told_right_at_every_moment():
    trainer = FakeTrainer(epochs_done=1, block=True)
    app = make_app(trainer, CONFIG.with_values(epochs=3))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(app.screen.view.epochs) == 1)
        subtitle = app.screen.query_one(LrPlot)
        await type_into(pilot, "gamma", "0.25")
        await pilot.press("enter")
        # The boundary comes from the run's decision, which applies exactly there.
        await wait_for(pilot, lambda: app.screen.view.pending)
        said = app.screen.view.pending_epoch
        await pilot.pause()
        assert f"applies after epoch {said}" in str(subtitle.border_subtitle)
        await advance(pilot, trainer, 1)
        assert list(app.screen.view.edits) == [said]
        # In the last epoch, the subtitle says at once that no boundary is left.
        await advance(pilot, trainer, 1) if app.screen.view.current_epoch < 3 else None
        assert app.screen.view.current_epoch == 3
        await type_into(pilot, "lr", "0.003")
        assert "no boundary left" in str(subtitle.border_subtitle)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "refused" in str(subtitle.border_subtitle))
        assert "the run ends with epoch 3" in str(subtitle.border_subtitle)
        assert "edit refused" in log_text(app)


async def test_keys_that_arrive_together_in_the_runs_table_are_taken_in_order(tmp_path: Path):
    from steplr_tui.run.jobs import Job, run_job
    from tests.synthetic import synthetic_data

    for lr in (0.01, 0.02, 0.03):
        config = TrainConfig(epochs=1, batch_size=128, lr=lr, device="cpu")
        run_job(Job(config, tmp_path), lambda e: None, data=synthetic_data(256, 64))
        time.sleep(1.01)  # distinct folder names, newest first
    app = make_app(FakeTrainer(), runs_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.runs)
        table = app.screen.query_one(DataTable)
        assert table.cursor_row == 0
        burst(app, "down", "space")
        # The row the cursor moved to is marked, not the one it left.
        await wait_for(pilot, lambda: table.get_row_at(1)[0] == "◆")
        assert table.get_row_at(0)[0] == ""


async def test_ctrl_s_without_a_run_and_ctrl_t_with_one_metric_say_why_they_do_nothing():
    app = make_app(FakeTrainer())
    async with app.run_test(size=SIZE) as pilot:
        said: list[str] = []
        app.notify = lambda message, **_kw: said.append(str(message))  # type: ignore[method-assign]
        await pilot.pause()
        footer = str(app.screen.query_one(KeyFooter).render())
        assert "Stop" not in footer and "Metric" not in footer  # nothing for them to do
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: len(said) == 1)
        assert "Nothing is running" in said[0] and "ctrl+r starts a run" in said[0]
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: len(said) == 2)
        assert "Only test_acc is recorded" in said[1]
        assert app.screen.context.metric == "test_acc"


async def test_the_footer_presses_a_clicked_key_and_rings_for_a_disabled_one():
    app = make_app(FakeTrainer())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        footer = app.screen.query_one(KeyFooter)
        runs = next(item for item in footer.items if item.action == "runs")
        await pilot.hover(KeyFooter, offset=(runs.start + 1, 0))
        hover = footer.get_component_rich_style("key-footer--hover").bgcolor
        under = [span for span in footer.render().spans if span.style.bgcolor == hover]
        assert [(s.start, s.end) for s in under] == [
            (runs.start, runs.start + 2),
            (runs.start + 2, runs.end),
        ]
        await pilot.click(KeyFooter, offset=(runs.start + 1, 0))
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, RunsScreen))

        rung: list[bool] = []
        app.bell = lambda: rung.append(True)  # type: ignore[method-assign]
        screen = app.screen
        checked = screen.check_action
        # None: shown, but disabled (Textual's meaning), as Textual's footer shows it: dim.
        screen.check_action = lambda action, params: (
            None if action == "export" else checked(action, params)
        )  # type: ignore[method-assign]
        screen.refresh_bindings()
        await pilot.pause()
        export = next(item for item in footer.items if item.action == "export")
        assert not export.enabled
        dim = [span for span in footer.render().spans if span.style.dim]
        assert [(s.start, s.end) for s in dim] == [
            (export.start, export.start + 2),
            (export.start + 2, export.end),
        ]
        await pilot.click(KeyFooter, offset=(export.start, 0))
        await pilot.pause()
        assert rung == [True] and app.screen is screen  # no export dialog
