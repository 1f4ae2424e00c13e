"""Snapshot tests: what the dashboard looks like, with a scripted trainer.

Deterministic by construction: fixed terminal sizes, the textual-dark theme, no
cursor blink, no warm-up thread, a fixed data folder, and fake events whose
times are fixed numbers (the UI shows elapsed time from events, not a clock).
"""

from __future__ import annotations

import time

import pytest
from textual.widgets import Input

from steplr_tui.app import SteplrApp
from steplr_tui.config import TrainConfig
from tests.fakes import FakeTrainer


def make_app(trainer=None, **config) -> SteplrApp:
    return SteplrApp(
        TrainConfig(data_dir="/data/mnist", **config),
        train_fn=trainer or FakeTrainer(),
        warm_up=False,
        cursor_blink=False,
        theme="textual-dark",
    )


async def ready(pilot) -> None:
    """run_before is called before the dashboard has composed; wait for its fields."""
    deadline = time.monotonic() + 5.0
    while not pilot.app.screen.query("#field-gamma"):
        assert time.monotonic() < deadline, "the dashboard never composed"
        await pilot.pause(0.01)
    await pilot.pause()


async def settle(pilot, predicate, timeout=5.0):
    """Wait until the screen has folded in the events, then force a full redraw."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the fake run"
        await pilot.pause(0.01)
    screen = pilot.app.screen
    screen._dirty |= {"lr", "loss", "acc", "status", "notice"}
    screen.redraw()
    await pilot.pause()


def test_startup_120x40(snap_compare):
    assert snap_compare(make_app(), terminal_size=(120, 40))


def test_startup_80x24(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24))


def test_invalid_field_refuses_start(snap_compare):
    async def type_bad_gamma(pilot):
        await ready(pilot)
        gamma = pilot.app.screen.query_one("#field-gamma", Input)
        gamma.focus()
        gamma.value = ""
        await pilot.press("1", ".", "5", "ctrl+r")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=type_bad_gamma)


def test_mid_run(snap_compare):
    trainer = FakeTrainer(epochs_done=2, block=True)

    async def run_two_epochs(pilot):
        await ready(pilot)
        await pilot.press("ctrl+r")
        screen = pilot.app.screen
        await settle(
            pilot,
            lambda: (
                trainer.emitted.is_set()
                and screen.view.progress is not None
                and screen.view.progress.epoch == 3
            ),
        )

    assert snap_compare(make_app(trainer), terminal_size=(120, 40), run_before=run_two_epochs)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_finished_run(snap_compare, size):
    trainer = FakeTrainer()

    async def run_to_the_end(pilot):
        await ready(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot, lambda: pilot.app.screen.view.phase == "completed")

    assert snap_compare(make_app(trainer), terminal_size=size, run_before=run_to_the_end)
