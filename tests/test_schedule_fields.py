"""The scheduler's own fields on the dashboard: the scheduler picked from the keyboard,
MultiStepLR's milestones and a warmup's length as fields that follow the scheduler,
the preview that follows them, and live edits of a running MultiStepLR sent from them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from pathlib import Path

from pytest import approx
from textual.widgets import Input, Select

import steplr_tui
from steplr_tui.runfolder import CONTROL_FILE
from steplr_tui.runfolder.params import FIELD_SPECS, TrainConfig, parse_values
from steplr_tui.runfolder.schedule import kind_lrs
from steplr_tui.viewer.widgets.plots import LrPlot
from tests.fakes import FakeTrainer
from tests.helpers import SIZE, make_app, wait_for
from tests.scheduler_cases import STEPS, model_and_optimizer, train


def test_milestones_and_warmup_are_checked_as_typed():
    spec = FIELD_SPECS["milestones"]
    assert spec.parse(" 2, 5 ") == (2, 5)
    assert spec.parse("4,") == (4,)  # on the way to 4,6
    assert spec.parse("") == ()  # every step_size epochs
    for bad, words in (("6,4", "increasing"), ("0,2", "from 1"), ("a", "like 4,6")):
        try:
            spec.parse(bad)
        except ValueError as exc:
            assert words in str(exc) and "milestones" in str(exc)
        else:
            raise AssertionError(bad)
    values, errors = parse_values({"scheduler": "warmup-step", "warmup": "5", "epochs": "5"})
    assert "warmup" not in values
    assert errors["warmup"].endswith("give a warmup shorter than 5")
    _, errors = parse_values({"scheduler": "step", "warmup": "5", "epochs": "5"})
    assert errors == {}  # a StepLR has no warmup to be too long


async def pick(pilot, select_id: str, downs: int) -> None:
    """Open a drop-down from the keyboard, move down, and pick."""
    pilot.app.screen.query_one(f"#{select_id}").focus()
    await pilot.press("enter")
    await pilot.pause(0.1)
    for _ in range(downs):
        await pilot.press("down")
    await pilot.press("enter")
    await pilot.pause(0.1)


async def test_a_drop_down_is_picked_from_the_keyboard():
    # Its open list's keys used to go round between the list and the field for ever:
    # the app spun and the list stayed open.
    app = make_app(FakeTrainer(), TrainConfig(data_dir="/d"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pick(pilot, "field-optimizer", 1)
        select = app.screen.query_one("#field-optimizer", Select)
        assert select.value == "sgd" and not select.expanded
        assert not app.screen.query_one("#field-momentum", Input).disabled


async def test_the_fields_follow_the_scheduler_and_start_the_run_they_show():
    trainer = FakeTrainer()
    app = make_app(trainer, TrainConfig(data_dir="/d", epochs=6))
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.pause()
        milestones = screen.query_one("#field-milestones", Input)
        warmup = screen.query_one("#field-warmup", Input)
        assert not milestones.display and not warmup.display  # StepLR has neither
        labels = screen.query_one("#param-labels")

        def label_rows() -> list[str]:
            return [line.strip() for line in str(labels.render()).splitlines()]

        assert "milestones" not in label_rows() and "warmup" not in label_rows()
        assert label_rows().index("epochs") == 4  # each label on its field's row
        await pick(pilot, "field-scheduler", 1)  # multistep
        assert milestones.display and not warmup.display
        assert label_rows().index("milestones") == 4
        assert milestones.region.y == labels.region.y + 4
        milestones.focus()
        await pilot.press("1", ",", "4")
        await pilot.pause(0.2)
        pane = screen.query_one(LrPlot)
        assert pane.planned == kind_lrs("multistep", 0.001, 2, 0.1, 6, (1, 4), 1)
        assert "MultiStepLR" in str(pane.border_subtitle)
        await pilot.press("backspace", "backspace", ",", "3", ",", "2")  # 1,3,2
        await pilot.pause(0.1)
        assert "increasing" in str(screen.query_one("#param-errors").render())
        await pilot.press("backspace", "backspace")  # 1,3
        await pick(pilot, "field-scheduler", 1)  # warmup-step
        assert warmup.display and not milestones.display
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: trainer.calls)
        config = trainer.calls[0]
        # The scheduler picked, and its warmup; the milestones of a scheduler not
        # picked are not this run's.
        assert (config.scheduler, config.warmup, config.milestones) == ("warmup-step", 1, ())


async def test_cosine_uses_neither_step_size_nor_gamma():
    trainer = FakeTrainer()
    app = make_app(trainer, TrainConfig(data_dir="/d"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        screen.query_one("#field-step_size", Input).value = ""  # left empty, then cosine
        await pick(pilot, "field-scheduler", 3)
        assert screen.query_one("#field-scheduler", Select).value == "cosine"
        assert screen.query_one("#field-step_size", Input).disabled
        assert screen.query_one("#field-gamma", Input).disabled
        assert not screen.query_one("#field-lr", Input).disabled
        await pilot.press("ctrl+r")  # a disabled field's text does not block Start
        await wait_for(pilot, lambda: trainer.calls)
        assert trainer.calls[0].scheduler == "cosine"


def _multistep(optimizer):
    from torch.optim.lr_scheduler import MultiStepLR

    return MultiStepLR(optimizer, milestones=[2, 4], gamma=0.3)


async def test_a_running_multisteps_milestones_are_steered_from_their_field(tmp_path: Path):
    async with watched_script(tmp_path, _multistep) as (pilot, folder, gate):
        screen = pilot.app.screen
        field = screen.query_one("#field-milestones", Input)
        assert field.display and field.value == "2,4" and not field.disabled
        assert screen.query_one("#field-scheduler", Select).value == "multistep"
        assert screen.query_one("#field-step_size", Input).disabled  # MultiStepLR has none
        assert not screen.query_one("#field-gamma", Input).disabled
        assert not screen.query_one("#field-warmup", Input).display
        field.focus()
        await pilot.press("end", "backspace", "backspace", "backspace", "5", "enter")
        await wait_for(pilot, lambda: (folder / CONTROL_FILE).exists())
        # Only what the user typed: the milestones, no lr, no gamma.
        assert [
            {k: v for k, v in r.items() if k in ("lr", "gamma", "milestones")} for r in sent(folder)
        ] == [{"milestones": [5]}]
        gate.set()
        await wait_for(pilot, lambda: not screen.view.active, timeout=30)
        assert screen.view.mismatches == []  # the lrs used are the plan's, edit included
        assert [e.lr for e in screen.view.epochs] == approx([0.1, 0.1, 0.03, 0.03, 0.03, 0.009])
        assert field.value == "5"


@contextlib.asynccontextmanager
async def watched_script(tmp_path: Path, make):
    """A user's script (its scheduler `make(optimizer)`) held after its first epoch until
    the test sets the gate, and a dashboard attached to it, once it shows the script's plan
    and first epoch: yields (the pilot, the run's folder, the gate)."""
    gate = threading.Event()
    script = threading.Thread(target=_gated_script, args=(tmp_path, gate, make))
    script.start()
    try:
        deadline = time.monotonic() + 30
        while not list(tmp_path.glob("*/metrics.jsonl")):
            assert time.monotonic() < deadline, "the script never ended its first epoch"
            await asyncio.sleep(0.05)
        (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
        app = make_app(lambda *a: None, attach=folder)
        async with app.run_test(size=SIZE) as pilot:
            view = app.screen.view
            await wait_for(pilot, lambda: view.lr_plan is not None and view.epochs)
            await pilot.pause(0.2)
            yield pilot, folder, gate
    finally:
        gate.set()
        script.join(30)


def sent(folder: Path) -> list[dict]:
    """The requests the dashboard wrote to the run's control.jsonl."""
    return [json.loads(x) for x in (folder / CONTROL_FILE).read_text().splitlines()]


def test_the_live_values_of_a_warmup_and_of_a_watched_scheduler():
    from steplr_tui.runfolder.events import LrPlan
    from steplr_tui.runfolder.schedule import ScheduleEdit
    from steplr_tui.viewer.run_view import RunView

    view = RunView()
    sequential = {
        "class": "SequentialLR",
        "schedulers": [
            {"class": "LinearLR", "total_iters": 3},
            {"class": "MultiStepLR", "milestones": [4, 6], "gamma": 0.5},
        ],
        "milestones": [3],
    }
    view.lr_plan = LrPlan(
        1, ((0.1,),), sequential, editable=("lr", "milestones", "gamma", "warmup")
    )
    view.edits[1] = ScheduleEdit(lr=0.05)
    assert view.live_values() == {"lr": 0.05, "milestones": (4, 6), "gamma": 0.5, "warmup": 3}
    view.lr_plan = LrPlan(1, ((0.1,),), {"class": "CosineAnnealingLR", "T_max": 6})
    assert view.live_values() == {}  # watched only: no field takes edits


def _gated_script(folder: Path, gate: threading.Event, make) -> None:
    """A user's script: its first epoch, then it waits for the test, then the rest."""
    model, optimizer = model_and_optimizer(groups=1)
    scheduler = make(optimizer)
    run = steplr_tui.track(optimizer, scheduler, runs_dir=folder, epochs=6, steps_per_epoch=STEPS)
    with run:
        train(run, model, optimizer, scheduler, epochs=1)
        gate.wait(30)
        train(run, model, optimizer, scheduler, epochs=6)


def _warmup_then_multistep(optimizer):
    from torch.optim import lr_scheduler as S

    warmup = S.ConstantLR(optimizer, factor=0.5, total_iters=3)
    return S.SequentialLR(optimizer, [warmup, S.MultiStepLR(optimizer, [4, 5], 0.1)], [3])


async def test_a_warmups_fields_send_only_what_the_run_can_take(tmp_path: Path):
    """A SequentialLR (ConstantLR, then MultiStepLR) is no built-in kind: its milestones
    and warmup rows show because the run has them, and stay while one is emptied. An
    empty milestones list (no decay left) and a warmup as long as the run are refused
    as typed, and nothing is sent; a valid warmup is."""
    async with watched_script(tmp_path, _warmup_then_multistep) as (pilot, folder, gate):
        screen = pilot.app.screen
        milestones = screen.query_one("#field-milestones", Input)
        warmup = screen.query_one("#field-warmup", Input)
        assert screen.query_one("#field-scheduler", Select).value == "SequentialLR"
        assert (milestones.value, warmup.value) == ("4,5", "3")
        assert not milestones.disabled and not warmup.disabled
        milestones.focus()
        await pilot.press("end", *["backspace"] * 3, "enter")
        await pilot.pause(0.2)
        assert milestones.display  # the run has milestones: the row stays
        errors = str(screen.query_one("#param-errors").render())
        assert "milestones is empty" in errors
        warmup.focus()
        await pilot.press("end", "backspace", "6", "enter")
        await pilot.pause(0.2)
        assert "warmup 6 is longer than the run" in str(screen.query_one("#param-errors").render())
        assert not (folder / CONTROL_FILE).exists()  # nothing was sent
        await pilot.press("backspace", "4", "enter")
        await wait_for(pilot, lambda: (folder / CONTROL_FILE).exists())
        requests = sent(folder)
        assert [r.get("warmup") for r in requests] == [4] and "milestones" not in requests[0]
        gate.set()
        await wait_for(pilot, lambda: not screen.view.active, timeout=30)
        assert screen.view.mismatches == []
        # The warmup, lengthened to 4, held the lr at half for epochs 1 to 4.
        assert [e.lr for e in screen.view.epochs][:4] == approx([0.05] * 4)


def test_the_sweep_form_says_what_its_trials_do_not_take_from_the_fields():
    from steplr_tui.viewer.screens.sweep_form import NewSweepScreen

    said = NewSweepScreen._unswept(["step", "multistep"], {"milestones": (4, 6), "warmup": 1})
    assert "milestones are not swept" in said and "warmup" not in said
    assert "warmup is not swept" in NewSweepScreen._unswept(["warmup-step"], {"warmup": 2})
    assert NewSweepScreen._unswept(["step"], {"milestones": (4, 6), "warmup": 2}) == ""


def test_a_warmups_summary_names_the_warmup_and_the_decays_settings():
    from steplr_tui.runfolder.events import LrPlan
    from steplr_tui.viewer.preview import scheduler_summary
    from steplr_tui.viewer.run_view import RunView

    view = RunView()
    parts = [
        {"class": "LinearLR", "total_iters": 2},
        {"class": "StepLR", "step_size": 3, "gamma": 0.5},
    ]
    settings = {"class": "SequentialLR", "milestones": [2], "schedulers": parts}
    view.lr_plan = LrPlan(1, ((0.1,),), settings, editable=("lr", "step_size", "gamma", "warmup"))
    assert scheduler_summary(view) == "LinearLR then StepLR · warmup 2 · step_size 3 · gamma 0.5"
