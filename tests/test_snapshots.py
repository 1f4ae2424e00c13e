"""Snapshot tests: what the dashboard looks like, with a scripted trainer.

Deterministic by construction: fixed terminal sizes, the textual-dark theme, no
cursor blink, no warm-up thread, a fixed data folder, and fake events whose
times are fixed numbers (the UI shows elapsed time from events, not a clock).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from textual.widgets import Input

from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.viewer.app import SteplrApp
from steplr_tui.viewer.widgets.run_log import RunLog
from tests.fakes import FakeTrainer


@pytest.fixture(autouse=True)
def _no_cpu_note(monkeypatch) -> None:
    """The status line's 'slow: other processes use …' reads the machine's load: off."""
    from steplr_tui.viewer.cpuwatch import CpuWatch

    monkeypatch.setattr(CpuWatch, "sample", lambda self, pids: "")


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
    screen.redraw("lr", "loss", "acc", "status", "notice")
    await pilot.pause()
    # The log scrolls to its end after a refresh of its own: wait for it.
    scrolled = time.monotonic() + 10.0
    for log in screen.query(RunLog):
        while log.scroll_y != log.max_scroll_y:
            assert time.monotonic() < scrolled, "the log never scrolled to its end"
            await pilot.pause(0.01)
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
        await settle(pilot, lambda: pilot.app.screen.view.status == "COMPLETED")

    assert snap_compare(make_app(trainer), terminal_size=size, run_before=run_to_the_end)


def test_steering_edits_overlay_and_phases(snap_compare):
    """Mid-run: one edit applied (marked), one typed (pending), an overlay, the phase table."""
    from steplr_tui.runfolder import EpochEnd
    from steplr_tui.viewer.compare import Overlay
    from tests.fakes import scripted_events

    trainer = FakeTrainer(epochs_done=1, block=True)
    config = TrainConfig(data_dir="/data/mnist", epochs=6)
    earlier = config.with_values(gamma=0.5, step_size=1)
    earlier_epochs = [e for e in scripted_events(earlier, 6) if isinstance(e, EpochEnd)]
    earlier_epochs = [
        EpochEnd(e.epoch, e.lr, e.train_loss + 0.1, e.test_acc - 1.0, 0.5, 0.5)
        for e in earlier_epochs
    ]

    async def steer(pilot):
        await ready(pilot)
        screen = pilot.app.screen
        screen._set_overlays(
            [Overlay.from_epochs("k", "earlier-run", earlier.as_dict(), earlier_epochs, 10)]
        )
        await pilot.press("ctrl+r")
        await settle(pilot, lambda: trainer.emitted.is_set() and len(screen.view.epochs) == 1)
        gamma = screen.query_one("#field-gamma", Input)
        gamma.focus()
        gamma.value = "0.5"
        await pilot.press("enter")
        for want in (2, 3):
            trainer.advance()
            await settle(pilot, lambda want=want: len(screen.view.epochs) == want)
        lr = screen.query_one("#field-lr", Input)
        lr.focus()
        lr.value = "0.0003"
        await pilot.press("f5")
        await settle(pilot, lambda: screen.view.edits)

    app = make_app(trainer, epochs=6)
    assert snap_compare(app, terminal_size=(120, 40), run_before=steer)


def test_runs_table(snap_compare, tmp_path_factory):
    import json
    import shutil
    from pathlib import Path

    # A fixed folder: its path is on screen.
    runs = Path("/tmp/steplr-tui-snapshot-runs")
    shutil.rmtree(runs, ignore_errors=True)
    for name, lr, status, accs in (
        ("20261128-101500-adam-lr0.001-s2-g0.1", 0.001, "COMPLETED", (90.1, 91.6, 92.0)),
        ("20261128-102000-adam-lr0.01-s1-g0.5", 0.01, "STOPPED", (89.0, 90.2)),
        ("20261128-103000-sgd-lr0.1-s2-g0.1", 0.1, "FAILED", ()),
    ):
        path = runs / name
        path.mkdir(parents=True)
        config = TrainConfig(lr=lr, epochs=3, optimizer=name.split("-")[2]).as_dict()
        (path / "config.json").write_text(json.dumps({"config": config, "n_train": 60000}))
        (path / "status.json").write_text(json.dumps({"status": status, "reason": ""}))
        lines = [
            {"epoch": i + 1, "lr": lr, "train_loss": 0.5 - i / 10, "test_acc": a, "seconds": 2.0}
            for i, a in enumerate(accs)
        ]
        (path / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))

    async def open_runs(pilot):
        await ready(pilot)
        await pilot.press("ctrl+o")
        deadline = time.monotonic() + 5
        while not getattr(pilot.app.screen, "runs", None):
            assert time.monotonic() < deadline
            await pilot.pause(0.01)
        await pilot.press("s", "up", "up", "space")
        await pilot.pause()

    app = SteplrApp(
        TrainConfig(data_dir="/data/mnist"),
        train_fn=FakeTrainer(),
        warm_up=False,
        cursor_blink=False,
        theme="textual-dark",
        runs_dir=runs,
    )
    assert snap_compare(app, terminal_size=(120, 40), run_before=open_runs)


def test_replayed_run_draws_the_live_runs_panes(snap_compare, tmp_path):
    """A finished run opened from its folder (steplr-tui attach): its panes are the ones
    test_finished_run[120x40] shows live; only the status line says it is attached."""
    from steplr_tui.run.record import RunRecord
    from steplr_tui.runfolder import RunEnded, RunOpened, Status
    from tests.fakes import scripted_events

    config = TrainConfig(data_dir="/data/mnist")
    runs = Path("/tmp/steplr-tui-snapshot-replay")
    shutil.rmtree(runs, ignore_errors=True)
    # A fixed folder name: it is on screen.
    fixed = runs / "20261128-101500-adam-lr0.001-s2-g0.1"
    RunRecord.create(runs, config.as_dict(), {}).path.rename(fixed)
    record = RunRecord(fixed)
    record.mark_running(pid=os.getpid())
    events = scripted_events(config, config.epochs)
    record.write(RunOpened(str(fixed), config.as_dict(), pid=4242))
    for event in events[1:]:
        record.write(event)
    record.write(RunEnded(Status.COMPLETED, "", config.epochs, 2.5))
    record.close()
    app = SteplrApp(
        TrainConfig(data_dir="/data/mnist"),
        attach=fixed,
        warm_up=False,
        cursor_blink=False,
        theme="textual-dark",
    )

    async def replayed(pilot):
        await settle(pilot, lambda: pilot.app.screen.view.status == "COMPLETED")

    assert snap_compare(app, terminal_size=(120, 40), run_before=replayed)


def _open_sweep(tmp_path):
    from tests.fakes import FixedSweepSource, sweep_snapshot

    snapshot = sweep_snapshot(tmp_path)

    async def open_it(pilot):
        from steplr_tui.viewer.screens.sweep import SweepScreen

        await ready(pilot)
        pilot.app.screen.open_sweep(snapshot.folder, snapshot.spec, FixedSweepSource(snapshot))
        deadline = time.monotonic() + 5.0
        while not (isinstance(pilot.app.screen, SweepScreen) and pilot.app.screen.snapshot):
            assert time.monotonic() < deadline, "the sweep view never showed its snapshot"
            await pilot.pause(0.01)
        await pilot.pause()

    return open_it


def test_sweep_view_120x40(snap_compare, tmp_path):
    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=_open_sweep(tmp_path))


def test_sweep_view_80x24(snap_compare, tmp_path):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=_open_sweep(tmp_path))
