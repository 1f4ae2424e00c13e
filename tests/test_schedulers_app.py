"""The dashboard on a script's run whose scheduler is not a StepLR: it opens, draws
torch's plan and the lrs used, and says what the scheduler is (no torch in the viewer)."""

from __future__ import annotations

from pathlib import Path

import steplr_tui
from steplr_tui.viewer.widgets.plots import LrPlot
from tests.helpers import SIZE, make_app, wait_for
from tests.scheduler_cases import EPOCHS, SCHEDULERS, STEPS, _edit, model_and_optimizer, train


def script_run(tmp_path: Path, name: str, per_batch: bool = False) -> Path:
    model, optimizer = model_and_optimizer()
    scheduler = SCHEDULERS[name](optimizer)
    run = steplr_tui.track(
        optimizer, scheduler, runs_dir=tmp_path, epochs=EPOCHS, steps_per_epoch=STEPS
    )
    if not per_batch:
        _edit(run.path, gamma=0.5)
    with run:
        train(run, model, optimizer, scheduler, per_batch=per_batch)
    return run.path


async def test_a_multistep_run_with_an_edit_opens_with_torchs_plan(tmp_path: Path):
    path = script_run(tmp_path, "MultiStepLR")
    app = make_app(lambda *a: None, attach=path)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: len(screen.view.epochs) == EPOCHS)
        await pilot.pause(0.3)
        pane = screen.query_one(LrPlot)
        assert pane.planned[: len(pane.actual)] == pane.actual == [e.lr for e in screen.view.epochs]
        assert str(pane.border_subtitle).startswith("MultiStepLR")
        assert screen.view.mismatches == []
        await pilot.press("tab", "tab", "shift+tab")  # the fields stay quiet
        await pilot.pause(0.1)


async def test_a_onecycle_run_opens_with_every_step_drawn(tmp_path: Path):
    path = script_run(tmp_path, "OneCycleLR", per_batch=True)
    app = make_app(lambda *a: None, attach=path)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: len(screen.view.epochs) == EPOCHS)
        await pilot.pause(0.3)
        pane = screen.query_one(LrPlot)
        assert pane.fine is not None and len(pane.fine.actual) == EPOCHS * STEPS
        assert "watched only" in str(pane.border_subtitle)
