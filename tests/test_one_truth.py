"""The dashboard shows the run as it is, and sends only what the user typed (issue 23):
Pilot tests with the run side's own Steering deciding, edits sent as the shell sends them."""

from __future__ import annotations

import threading

from textual.widgets import Input, Select

from steplr_tui.runfolder import CONTROL_FILE, EditRequest, append_line, encode_request
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.schedule import ScheduleEdit, plan
from steplr_tui.viewer.widgets.plots import LrPlot
from steplr_tui.viewer.widgets.run_log import RunLog
from tests.fakes import FakeTrainer, run_in_folder
from tests.helpers import (
    SIZE,
    advance,
    log_text,
    make_app,
    start_and_finish_epoch_1,
    status,
    type_into,
    viewer,
    wait_for,
)

CONFIG = TrainConfig(data_dir="/data/mnist", epochs=6, step_size=2, gamma=0.1, lr=0.001)


def shell_edit(path, **values) -> None:
    """What `steplr-tui edit RUN --lr ...` appends to control.jsonl."""
    request = EditRequest(
        "shell-" + "-".join(sorted(values)), ScheduleEdit(**values), "shell 1@box"
    )
    append_line(path / CONTROL_FILE, encode_request(request))


def control_lines(path) -> list[str]:
    control = path / CONTROL_FILE
    return control.read_text().splitlines() if control.exists() else []


def text(app, name: str) -> str:
    return str(app.screen.query_one(f"#field-{name}").value)


async def test_a_tab_never_sends_the_value_a_field_showed_before_a_shell_edit(tmp_path):
    """Defect 1: lr had focus, the shell set lr 0.02 and step_size 3, a tab sent lr back."""
    trainer = FakeTrainer(epochs_done=1, block=True)
    path, thread = run_in_folder(trainer, CONFIG, tmp_path)
    app = viewer(path)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: len(screen.view.epochs) == 1)
        screen.query_one("#field-lr", Input).focus()  # where focus lands on attach
        await pilot.pause()
        shell_edit(path, lr=0.02, step_size=3)
        await wait_for(pilot, lambda: screen.view.pending)
        trainer.advance()
        await wait_for(pilot, lambda: screen.view.edits)
        # The focused field follows the run until the user types there.
        await wait_for(pilot, lambda: text(app, "lr") == "0.02")
        assert text(app, "step_size") == "3"
        await pilot.press("tab", "tab", "shift+tab")
        await pilot.pause(0.3)
        assert len(control_lines(path)) == 1  # the shell's edit alone: nothing was sent
        trainer.advance()
        await wait_for(pilot, lambda: len(screen.view.epochs) == 3)
        assert screen.view.epochs[-1].lr == 0.02  # lr 0.02, step 3: no drop yet
        assert "from viewer" not in log_text(app) and "this dashboard" not in log_text(app)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not screen.view.active)
    thread.join(5)


async def test_the_lr_field_follows_an_applied_lr_edit_and_the_plan_after_a_stop_uses_it():
    """Defect 2: a run of this app, lr edited from elsewhere while the lr field had focus."""
    trainer = FakeTrainer(epochs_done=1, block=True)
    app = make_app(trainer, CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await start_and_finish_epoch_1(pilot)
        screen = app.screen
        screen.query_one("#field-lr", Input).focus()
        trainer.jobs[0].inbox.put(EditRequest("other", ScheduleEdit(lr=0.01), "viewer 2@box"))
        await wait_for(pilot, lambda: screen.view.pending)
        await advance(pilot, trainer, 1)
        await wait_for(pilot, lambda: text(app, "lr") == "0.01")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not screen.view.active)
        await pilot.pause()
        assert "values this run ended with (lr 0.01, step_size 2" in log_text(app)
        assert text(app, "lr") == "0.01"
        lr_pane = screen.query_one(LrPlot)
        expected = plan(0.01, 2, 0.1, 6)
        await wait_for(pilot, lambda: lr_pane.planned == expected.lrs)
        assert str(lr_pane.border_subtitle) == expected.summary()


async def test_a_stopped_edited_run_reopens_with_the_values_it_ended_with(tmp_path):
    """Defect 8: live, the fields showed the edits; re-opened, the original values."""
    trainer = FakeTrainer(epochs_done=1, block=True)
    path, thread = run_in_folder(trainer, CONFIG, tmp_path)
    shell_edit(path, lr=0.005, step_size=3, gamma=0.5)
    trainer.advance()
    trainer.epoch_ended.wait(5)
    from steplr_tui.runfolder import StopRequest

    append_line(path / CONTROL_FILE, encode_request(StopRequest("s", "shell 1@box", "")))
    thread.join(5)
    live = {"lr": "0.005", "step_size": "3", "gamma": "0.5", "epochs": "6"}
    for _ in range(2):  # re-opened twice: the same values each time
        app = viewer(path)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda app=app: app.screen.view.status == "STOPPED")
            await pilot.pause()
            assert {n: text(app, n) for n in live} == live
            lr_pane = app.screen.query_one(LrPlot)
            await wait_for(pilot, lambda p=lr_pane: p.planned == plan(0.005, 3, 0.5, 6).lrs)


async def test_attach_says_it_is_loading_and_starts_nothing_until_the_record_is_read(
    tmp_path, monkeypatch
):
    """Defect 5: built-in defaults and 'ready: ctrl+r starts here' before the record was read,
    and a ctrl+r in that window started a new run."""
    import steplr_tui.viewer.sources as sources

    path, thread = run_in_folder(FakeTrainer(), CONFIG.with_values(lr=0.02), tmp_path)
    thread.join(5)
    gate = threading.Event()
    real = sources.read_history

    def slow_history(folder):
        gate.wait(10)  # a loaded machine: the record takes its time
        return real(folder)

    monkeypatch.setattr(sources, "read_history", slow_history)
    trainer = FakeTrainer()
    app = viewer(path, train_fn=trainer)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        assert "loading the run" in status(app) and "ctrl+r" not in status(app)
        lr = app.screen.query_one("#field-lr", Input)
        assert lr.value == "" and lr.placeholder == "loading the run…" and lr.disabled
        assert app.screen.query_one("#field-optimizer", Select).value == ""
        await pilot.press("ctrl+r", "ctrl+n")
        await pilot.pause(0.2)
        assert trainer.calls == [] and app.screen.view.status is None
        gate.set()
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        await pilot.pause()
        assert text(app, "lr") == "0.02" and text(app, "optimizer") == "adam"
        assert trainer.calls == []


async def test_an_edit_typed_too_late_for_the_run_is_said_to_be_lost():
    """Defect 6: typed gamma, the run ended before it could be sent: no word of it."""
    trainer = FakeTrainer(epochs_done=1, block=True)
    app = make_app(trainer, CONFIG.with_values(epochs=3))
    async with app.run_test(size=SIZE) as pilot:
        await start_and_finish_epoch_1(pilot)
        await type_into(pilot, "gamma", "0.3")  # not yet committed when the run ends
        await advance(pilot, trainer, 2)
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        await pilot.pause()
        said = "typed gamma 0.3 was not sent: the run ended after epoch 3"
        assert said in log_text(app)
        lr_pane = app.screen.query_one(LrPlot)
        await wait_for(pilot, lambda: said in str(lr_pane.border_subtitle))
        await pilot.press("enter")  # too late: it plans the next run now, and says nothing new
        await pilot.pause()
        assert log_text(app).count("was not sent") == 1
        await type_into(pilot, "gamma", "0.4")  # typing again: the note has been read
        assert "not sent" not in str(lr_pane.border_subtitle)


async def test_the_log_is_no_silent_tab_stop_while_fields_are_editable():
    """Defect 7: shift+tab from lr landed on the log, and '0.2' went nowhere."""
    trainer = FakeTrainer(epochs_done=1, block=True)
    app = make_app(trainer, CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await start_and_finish_epoch_1(pilot)
        screen = app.screen
        screen.query_one("#field-lr", Input).focus()
        for key in ("shift+tab", "tab", "tab", "tab"):
            await pilot.press(key)
            assert not isinstance(app.focused, RunLog)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not screen.view.active)
        screen.query_one("#field-lr", Input).focus()
        await pilot.press("shift+tab")
        assert not isinstance(app.focused, RunLog)


async def test_a_scripts_run_shows_what_it_recorded_and_unknown_for_the_rest(tmp_path):
    """Defect 3's viewer half: an Adadelta script that gave no batch size showed the
    built-in trainer's batch size 64, Adam, momentum 0.9 and seed 0."""
    import os

    from steplr_tui.run.record import RunRecord
    from steplr_tui.runfolder import EpochEnd, RunEnded, RunOpened, Status
    from steplr_tui.viewer.widgets.params import ParamPanel

    config = {"optimizer": "adadelta", "lr": 1.0, "step_size": 1, "gamma": 0.7, "epochs": 2}
    record = RunRecord.create(tmp_path, config, {"kind": "script"})
    record.mark_running(pid=os.getpid())
    record.write(RunOpened(str(record.path), config, kind="script", pid=os.getpid()))
    record.write(EpochEnd(1, 1.0, 0.5, 90.0, 0.5, 0.5, edit=ScheduleEdit(gamma=0.5), steps=4))
    record.write(EpochEnd(2, 0.5, 0.4, 91.0, 0.5, 1.0, steps=4))
    record.write(RunEnded(Status.COMPLETED, "", 2, 1.0))
    record.close()
    trainer = FakeTrainer()
    app = viewer(record.path, train_fn=trainer)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        await pilot.pause()
        assert text(app, "optimizer") == "adadelta"  # what it used
        for name in ("batch_size", "seed"):
            widget = app.screen.query_one(f"#field-{name}", Input)
            assert widget.value == "" and widget.placeholder == "unknown"
        assert text(app, "model") == "" and text(app, "gamma") == "0.5"
        momentum = app.screen.query_one("#field-momentum", Input)
        assert momentum.value == "" and momentum.placeholder == "does not apply"
        assert str(app.screen.query_one("#param-errors").render()) == ""  # no one's mistake
        note = next(line for line in log_text(app).splitlines() if "ended with" in line)
        assert "ctrl+r" not in note and "your script" in note
        _values, errors = app.screen.query_one(ParamPanel).read()
        assert errors["batch_size"].startswith("batch size: unknown for the run on screen")
        await pilot.press("ctrl+r")  # a new run can't start from what the script did not say
        await pilot.pause(0.2)
        assert trainer.calls == []


async def test_after_ctrl_n_nothing_starts_until_the_detached_runs_record_is_read(
    tmp_path, monkeypatch
):
    """ctrl+n attaches to the run it launched: that is a load too (defect 5)."""
    import steplr_tui.viewer.sources as sources
    from steplr_tui.viewer.controller import RunController

    path, thread = run_in_folder(FakeTrainer(), CONFIG, tmp_path)
    thread.join(5)
    gate = threading.Event()
    real = sources.read_history
    monkeypatch.setattr(sources, "read_history", lambda folder: gate.wait(10) and real(folder))

    def launched(self, config, runs_dir, resume=None):
        self.attach(path)
        return path

    monkeypatch.setattr(RunController, "start_detached", launched)
    trainer = FakeTrainer()
    app = make_app(trainer, CONFIG)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.screen.view.loading)
        await pilot.press("ctrl+r", "ctrl+n")
        await pilot.pause(0.3)
        assert trainer.calls == [] and "loading the run" in status(app)
        gate.set()
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        assert trainer.calls == []


async def test_a_run_that_died_before_writing_anything_leaves_the_form_usable(tmp_path):
    import os

    from steplr_tui.run.record import RunRecord

    record = RunRecord.create(tmp_path, CONFIG.as_dict(), {})
    dead = os.fork()
    if dead == 0:  # pragma: no cover - a child that is gone at once
        os._exit(0)
    os.waitpid(dead, 0)
    record.mark_running(pid=dead)
    (record.path / "events.jsonl").write_text("")  # it never wrote a line
    app = viewer(record.path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.view.status == "INTERRUPTED")
        await pilot.pause()
        lr = app.screen.query_one("#field-lr", Input)
        assert lr.value == "0.001" and not lr.disabled and app.screen.view.loading is None
        assert "loading" not in status(app)
