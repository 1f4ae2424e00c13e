"""Write the README's SVG screenshots into screenshots/.

Usage:
    python scripts/screenshots.py          # scripted runs (fake trainer): startup, mid-run, done
    python scripts/screenshots.py --real   # plus a real 5-epoch MNIST run (needs STEPLR_TUI_DATA)
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from steplr_tui.runfolder.params import TrainConfig  # noqa: E402
from steplr_tui.viewer.app import SteplrApp  # noqa: E402
from tests.fakes import FakeTrainer  # noqa: E402

OUT = ROOT / "screenshots"


async def shoot(name: str, app: SteplrApp, size: tuple[int, int], until=None, press=()) -> None:
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        await pilot.press(*press)
        deadline = time.monotonic() + 120
        while until is not None and not until(app):
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: timed out")
            await pilot.pause(0.05)
        screen = app.screen
        screen._dirty |= {"lr", "loss", "acc", "status", "notice"}
        screen.redraw()
        await pilot.pause(0.3)
        path = OUT / f"{name}.svg"
        path.write_text(app.export_screenshot(title="steplr-tui"))
        print(f"wrote {path.relative_to(ROOT)}")


def scripted(trainer=None, **config) -> SteplrApp:
    return SteplrApp(
        TrainConfig(data_dir="~/.cache/steplr-tui/data", **config),
        train_fn=trainer or FakeTrainer(),
        warm_up=False,
        cursor_blink=False,
    )


async def steering() -> None:
    """A steered run: one finished run pinned, an edit applied, another typed, phases shown."""
    trainer = FakeTrainer(epochs_done=1, block=True)
    app = scripted(trainer, epochs=8, step_size=2, gamma=0.3)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        screen = app.screen

        async def until(predicate) -> None:
            while not predicate():
                await pilot.pause(0.02)

        first = FakeTrainer()
        screen.controller.train_fn = first
        await pilot.press("ctrl+r")
        await until(lambda: screen.view.status == "COMPLETED")
        await pilot.press("f7")  # pin it
        screen.controller.train_fn = trainer
        gamma = screen.query_one("#field-gamma")
        gamma.focus()
        gamma.value = "0.6"
        await pilot.press("ctrl+r")
        await until(lambda: trainer.emitted.is_set() and len(screen.view.epochs) == 1)
        for want in (2, 3, 4):
            if want == 3:
                lr = screen.query_one("#field-lr")
                lr.focus()
                lr.value = "0.0005"
                await pilot.press("enter")
            trainer.advance()
            await until(lambda want=want: len(screen.view.epochs) == want)
        step = screen.query_one("#field-step_size")
        step.focus()
        step.value = "3"
        await pilot.press("f5")
        screen._dirty |= {"lr", "loss", "acc", "status", "notice", "phases"}
        screen.redraw()
        await pilot.pause(0.3)
        path = OUT / "steering.svg"
        path.write_text(app.export_screenshot(title="steplr-tui"))
        print(f"wrote {path.relative_to(ROOT)}")


async def attached() -> None:
    """`steplr-tui attach` on a run in another process: 6 of 10 epochs, still RUNNING."""
    import os
    import shutil

    from steplr_tui.run.record import RunRecord
    from steplr_tui.runfolder import EpochEnd, RunOpened
    from tests.fakes import scripted_events

    config = TrainConfig(data_dir="~/.cache/steplr-tui/data", epochs=10, step_size=3, gamma=0.5)
    runs = Path("/tmp/steplr-tui-screenshot-runs")
    shutil.rmtree(runs, ignore_errors=True)
    record = RunRecord.create(runs, config.as_dict(), {})
    record.mark_running(pid=os.getpid())  # alive while the screenshot is taken
    record.write(RunOpened(str(record.path), config.as_dict(), pid=os.getpid()))
    done = 0
    for event in scripted_events(config, 10)[1:]:
        record.write(event)
        done += isinstance(event, EpochEnd)
        if done == 6:
            break
    app = SteplrApp(config, attach=record.path, warm_up=False, cursor_blink=False)
    await shoot("attached", app, (120, 40), until=lambda a: len(a.screen.view.epochs) == 6)
    record.close()


async def sweep() -> None:
    """The sweep view of a 16-trial sweep over step_size and gamma, 14 done, 2 running."""
    from steplr_tui.viewer.screens.sweep import SweepScreen
    from tests.fakes import FixedSweepSource, sweep_snapshot

    snapshot = sweep_snapshot(Path("/tmp/steplr-tui-screenshot-sweep"), trials=16, running=2)
    app = scripted()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        app.screen.open_sweep(snapshot.folder, snapshot.spec, FixedSweepSource(snapshot))
        while not (isinstance(app.screen, SweepScreen) and app.screen.snapshot):
            await pilot.pause(0.05)
        await pilot.pause(0.3)
        path = OUT / "sweep.svg"
        path.write_text(app.export_screenshot(title="steplr-tui sweep"))
        print(f"wrote {path.relative_to(ROOT)}")


async def main(real: bool) -> None:
    OUT.mkdir(exist_ok=True)
    await shoot("startup", scripted(), (120, 40))
    await shoot("startup-80x24", scripted(), (80, 24))
    blocked = FakeTrainer(epochs_done=6, block=True)
    await shoot(
        "mid-run",
        scripted(blocked, epochs=10, step_size=3, gamma=0.5),
        (120, 40),
        until=lambda app: blocked.emitted.is_set() and len(app.screen.view.epochs) == 6,
        press=("ctrl+r",),
    )
    await shoot(
        "finished",
        scripted(),
        (120, 40),
        until=lambda app: app.screen.view.status == "COMPLETED",
        press=("ctrl+r",),
    )
    await steering()
    await attached()
    await sweep()
    if real:
        app = SteplrApp(TrainConfig(dataset="mnist"), warm_up=False, cursor_blink=False)
        await shoot(
            "real-run",
            app,
            (120, 40),
            until=lambda a: a.screen.view.status in ("COMPLETED", "FAILED"),
            press=("ctrl+r",),
        )


if __name__ == "__main__":
    asyncio.run(main(real="--real" in sys.argv))
