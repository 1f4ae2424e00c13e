"""Viewers of a run folder (Pilot): replay equals live, steering from any viewer, several
viewers at once, a dead run's process, a finished run opened read-only."""

from __future__ import annotations

import json
import os
import time

from textual.widgets import Input

from steplr_tui.run.record import RunRecord
from steplr_tui.runfolder import CONTROL_FILE, EVENTS_FILE, STATUS_FILE
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.schedule import ScheduleEdit
from steplr_tui.viewer.app import SteplrApp
from steplr_tui.viewer.widgets.plots import LossPlot, LrPlot, MetricPlot
from tests.fakes import FakeTrainer, run_in_folder, scripted_events, spy_log_writes
from tests.helpers import SIZE, log_text, status, type_into, viewer, wait_for

CONFIG = TrainConfig(data_dir="/data/mnist", epochs=6, step_size=2, gamma=0.1, lr=0.001)


def panes(app) -> dict[str, str]:
    screen = app.screen
    screen.redraw("lr", "loss", "acc")
    out = {
        cls.__name__: screen.query_one(cls).plt.build() for cls in (LrPlot, LossPlot, MetricPlot)
    }
    out["titles"] = " | ".join(
        f"{screen.query_one(c).border_title} / {screen.query_one(c).border_subtitle}"
        for c in (LrPlot, LossPlot, MetricPlot)
    )
    return out


async def test_a_replayed_run_draws_what_the_live_one_drew(tmp_path):
    """The very events of a run watched live in the app's own thread, replayed from a folder."""
    trainer = FakeTrainer()
    seen = []

    def recording(job, emit, should_stop):
        return trainer(job, lambda e: (seen.append(e), emit(e)), should_stop)

    live = SteplrApp(CONFIG, train_fn=recording, warm_up=False, cursor_blink=False)
    async with live.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: live.screen.view.status == "COMPLETED")
        await pilot.pause()
        live_panes, live_log = panes(live), log_text(live)
    # The same events written to a folder, as a run in another process writes them.
    record = RunRecord.create(tmp_path, CONFIG.as_dict(), {})
    record.mark_running()
    for event in seen:
        record.write(event)
    record.close()
    replay = viewer(record.path)
    async with replay.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: replay.screen.view.status == "COMPLETED")
        await pilot.pause()
        assert panes(replay) == live_panes
        assert log_text(replay) == live_log


async def test_an_attached_viewer_steers_and_stops_a_run_in_another_thread(tmp_path):
    trainer = FakeTrainer(epochs_done=1, block=True)
    path, thread = run_in_folder(trainer, CONFIG, tmp_path)
    app = viewer(path)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: len(screen.view.epochs) == 1)
        assert screen.controller.attached and screen.view.active
        # The fields show the run's parameters; only the live ones can be edited.
        assert screen.query_one("#field-epochs", Input).value == "6"
        assert screen.query_one("#field-epochs", Input).disabled
        await type_into(pilot, "gamma", "0.5")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.view.pending)
        assert trainer.steering.queued == ScheduleEdit(gamma=0.5)
        lines = (path / CONTROL_FILE).read_text().splitlines()
        assert json.loads(lines[0])["gamma"] == 0.5
        trainer.advance()
        await wait_for(pilot, lambda: screen.view.edits == {2: ScheduleEdit(gamma=0.5)})
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: screen.view.status == "STOPPED")
        # This viewer's own stop is told as such, not by its pid and host.
        assert "Run stopped after 2 epochs: stopped from this dashboard." in log_text(app)
        assert "stop requested (from this dashboard)" in log_text(app)
        assert "by viewer" not in log_text(app)
    thread.join(5)
    assert not thread.is_alive()


async def test_two_viewers_see_an_edit_pending_then_applied(tmp_path):
    trainer = FakeTrainer(epochs_done=1, block=True)
    path, thread = run_in_folder(trainer, CONFIG, tmp_path)
    one, two = viewer(path), viewer(path)
    async with one.run_test(size=SIZE) as p1, two.run_test(size=SIZE) as p2:
        await wait_for(p1, lambda: len(one.screen.view.epochs) == 1)
        await wait_for(p2, lambda: len(two.screen.view.epochs) == 1)
        two.screen.query_one("#field-gamma", Input).focus()  # a field being typed in is left be
        await type_into(p1, "lr", "0.002")
        await p1.press("enter")
        # The other viewer shows it pending, as the run queued it...
        await wait_for(p2, lambda: two.screen.view.pending)
        await p2.pause()
        assert "queued lr 2e-3 · applies after epoch 2" in str(
            two.screen.query_one(LrPlot).border_subtitle
        )
        assert two.screen.query_one("#field-lr", Input).value == "0.002"
        # ...then applied, in both.
        trainer.advance()
        for pilot, app in ((p1, one), (p2, two)):
            # The epoch's line comes first, then the decision (as a log reads): wait for both.
            await wait_for(
                pilot, lambda app=app: app.screen.view.edits and not app.screen.view.pending
            )
            assert app.screen.view.edits == {2: ScheduleEdit(lr=0.002)}
        await p2.press("ctrl+s")
        await wait_for(p1, lambda: one.screen.view.status == "STOPPED")
    thread.join(5)


async def test_a_dead_run_process_reads_interrupted_with_how_to_resume(tmp_path):
    record = RunRecord.create(tmp_path, CONFIG.as_dict(), {})
    dead = os.fork()
    if dead == 0:  # pragma: no cover - a child that is gone at once
        os._exit(0)
    os.waitpid(dead, 0)
    record.mark_running(pid=dead)
    for event in scripted_events(CONFIG, 2):
        record.write(event)
    app = viewer(record.path)
    started = time.monotonic()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.view.status == "INTERRUPTED")
        assert time.monotonic() - started < 3.0 + 2.0  # the watcher checks every second
        assert f"--resume {record.path.name} --detach" in app.screen.view.end.message
        assert "INTERRUPTED" in log_text(app)
        assert len(app.screen.view.epochs) == 2


async def test_a_finished_run_opens_read_only_with_its_final_panes(tmp_path):
    trainer = FakeTrainer()
    path, thread = run_in_folder(trainer, CONFIG, tmp_path)
    thread.join(5)
    status = json.loads((path / STATUS_FILE).read_text())
    assert status["status"] == "COMPLETED"
    app = viewer(path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        screen = app.screen
        assert [e.epoch for e in screen.view.epochs] == [1, 2, 3, 4, 5, 6]
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not (path / CONTROL_FILE).exists()  # nothing sent to a finished run
        assert screen.query_one("#field-lr", Input).value == "0.001"
    assert (path / EVENTS_FILE).stat().st_size > 0


async def test_ctrl_t_switches_between_the_metrics_a_script_records(tmp_path):
    from steplr_tui.runfolder import EpochEnd, RunEnded, RunOpened, Status

    record = RunRecord.create(tmp_path, CONFIG.as_dict(), {"kind": "script"})
    record.mark_running(pid=os.getpid())
    record.write(RunOpened(str(record.path), CONFIG.as_dict(), kind="script", pid=os.getpid()))
    for event in scripted_events(CONFIG, 3)[1:]:
        if isinstance(event, EpochEnd):  # a script's end_epoch(test_acc=..., val_loss=...)
            event = EpochEnd(
                event.epoch, event.lr, event.train_loss, event.test_acc, 0.5, event.elapsed,
                metrics={"val_loss": 0.4 - event.epoch / 20},
            )  # fmt: skip
        record.write(event)
    record.write(RunEnded(Status.COMPLETED, "", 3, 1.5))
    record.close()
    app = viewer(record.path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        pane = app.screen.query_one(MetricPlot)
        assert "ctrl+t: 1 more" in str(pane.border_title)
        assert app.screen.context.metric == "test_acc"
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.screen.context.metric == "val_loss"
        assert "val loss" in str(pane.border_title)
        assert "0.2" in panes(app)["MetricPlot"]  # val_loss 0.35 to 0.25 on the y axis
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.screen.context.metric == "test_acc"


async def test_a_long_replay_shows_its_last_log_lines_first_then_all_of_them(tmp_path, monkeypatch):
    """The first frame waits for a few wrapped lines, not a thousand; the rest follow."""
    from steplr_tui.runfolder import EpochEnd, RunEnded, RunOpened, Status
    from steplr_tui.viewer.widgets.run_log import FIRST_LINES, SHOWN_LINES, RunLog

    # What each write was given, in order: sampling the pane's length in time misses
    # the first write when a loaded machine runs the backfill before the next poll.
    writes = spy_log_writes(monkeypatch)
    config = CONFIG.with_values(epochs=400)
    record = RunRecord.create(tmp_path, config.as_dict(), {})
    record.mark_running()
    record.write(RunOpened(str(record.path), config.as_dict(), pid=1))
    for e in range(1, 401):
        record.write(EpochEnd(e, 0.001, 1.0 / e, 90.0, 0.1, e * 0.1, steps=10))
    record.write(RunEnded(Status.COMPLETED, "", 400, 40.0))
    record.close()
    app = viewer(record.path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        log = app.screen.query_one(RunLog)
        await wait_for(pilot, lambda: "Run completed: 400 epochs" in log.kept[-1])
        shown = min(SHOWN_LINES, len(log.kept))
        await wait_for(pilot, lambda: bool(writes) and max(writes) == shown)
        assert writes[0] == FIRST_LINES < shown
        assert "Run completed: 400 epochs" in log.lines[-1].text
        assert len(log.lines) >= shown
        await wait_for(pilot, lambda: log.scroll_y == log.max_scroll_y)  # still at its end


async def test_a_viewer_that_ends_stops_watching_the_run_folder(tmp_path):
    """However the app ends (here the test's own exit, not ctrl+q), its watcher stops: it
    is a worker of the screen that shows the run, not a thread of its own."""
    path, thread = run_in_folder(FakeTrainer(), CONFIG, tmp_path)
    thread.join(5)
    app = viewer(path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        watcher = app.screen.controller.source.worker
        assert watcher.node is app.screen and watcher.group == "watchers"
        assert not watcher.is_finished
    assert watcher.is_finished


async def test_an_attached_viewer_never_imports_torch_ahead(tmp_path):
    """Warming torch up is for runs started here; it cost a viewer a second of CPU."""
    import threading

    trainer = FakeTrainer()
    path, thread = run_in_folder(trainer, CONFIG, tmp_path)
    thread.join(5)
    app = SteplrApp(TrainConfig(), attach=path, warm_up=True, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        await pilot.pause(0.2)
        assert "steplr-warm-up" not in {t.name for t in threading.enumerate()}


async def test_an_attach_at_launch_draws_its_first_frame_with_the_record(tmp_path, monkeypatch):
    """A record read in time (a 1,000-epoch run's takes 0.05 s) is on the first frame: the
    run's values in unlocked fields, its status, its panes; no "loading" frame before it,
    and no field locked on the way there (as loading locks every one)."""
    from textual.app import App

    import steplr_tui.viewer.screens.dashboard as dashboard
    from steplr_tui.viewer.screens.dashboard import DashboardScreen

    monkeypatch.setattr(dashboard, "HISTORY_WAIT_S", 10.0)  # a loaded machine waits longer
    path, thread = run_in_folder(FakeTrainer(), CONFIG.with_values(lr=0.02), tmp_path)
    thread.join(5)
    frames: list[tuple[str, bool, str, bool, set[str]]] = []
    locked: set[str] = set()
    update_styles = App.update_styles

    def spy(self, node, animate=True):
        if not frames and (node.id or "").startswith("field-") and node.disabled:
            locked.add(node.id)
        return update_styles(self, node, animate)

    monkeypatch.setattr(App, "update_styles", spy)
    app = viewer(path)

    def on_display() -> None:
        if not frames and isinstance(app.screen, DashboardScreen):
            lr = app.screen.query_one("#field-lr", Input)
            pane = app.screen.query_one(LrPlot)
            fields = app.screen.query("#param-fields > *")
            off = {f.id for f in fields if f.disabled}  # momentum: an adam run has none
            frames.append((lr.value, lr.disabled, status(app), bool(pane.actual), off))

    monkeypatch.setattr(app, "post_display_hook", on_display)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: bool(frames))
        value, disabled, line, drawn, off = frames[0]
        assert value == "0.02" and not disabled and drawn
        assert "done" in line and "loading" not in line
        assert locked <= off and len(off) < 3


async def test_an_attach_at_launch_to_a_record_that_does_not_say_what_the_run_is_locks_it(
    tmp_path, monkeypatch
):
    """Read in time but without its first line (cut): the run is not known yet, so the
    first frame shows it loading, its fields locked, as before the record was read."""
    from steplr_tui.runfolder import EpochEnd, RunOpened
    from steplr_tui.viewer.screens.dashboard import DashboardScreen

    record = RunRecord.create(tmp_path, CONFIG.as_dict(), {})
    record.mark_running()
    record.write(RunOpened(str(record.path), CONFIG.as_dict()))
    record.write(EpochEnd(1, 0.001, 0.5, 90.0, 0.1, 0.1))
    events = record.path / EVENTS_FILE
    lines = events.read_bytes().split(b"\n")
    events.write_bytes(b"\n".join([b'{"type": "opened", "se', *lines[1:]]))  # cut
    app = viewer(record.path)
    first: list[tuple[str, bool, str]] = []

    def on_display() -> None:
        if not first and isinstance(app.screen, DashboardScreen):
            lr = app.screen.query_one("#field-lr", Input)
            first.append((lr.value, lr.disabled, status(app)))

    monkeypatch.setattr(app, "post_display_hook", on_display)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: bool(first))
            value, locked, line = first[0]
            assert value == "" and locked and "loading the run" in line
            assert len(app.screen.view.epochs) == 1  # the record it has is shown
    finally:
        record.close()


async def test_an_attach_at_launch_whose_record_is_slow_shows_it_loading_first(
    tmp_path, monkeypatch
):
    """The fields start empty, locked and saying the run is loading (never the built-in
    defaults as the run's); made so, none is restyled until the record is read."""
    import threading

    from textual.app import App

    import steplr_tui.viewer.sources as sources
    from steplr_tui.viewer.fields import LOADING
    from steplr_tui.viewer.screens.dashboard import DashboardScreen
    from steplr_tui.viewer.widgets.params import ParamPanel

    path, thread = run_in_folder(FakeTrainer(), CONFIG, tmp_path)
    thread.join(5)
    gate = threading.Event()
    real = sources.read_history
    monkeypatch.setattr(sources, "read_history", lambda folder: gate.wait(10) and real(folder))
    at_mount: list[tuple[str, bool, str]] = []
    mounted = ParamPanel.on_mount

    def on_mount(self):
        for field in self.query("#param-fields > *"):
            at_mount.append((str(field.value), field.disabled, getattr(field, "placeholder", "")))
        mounted(self)

    monkeypatch.setattr(ParamPanel, "on_mount", on_mount)
    restyled_while_loading: list[object] = []
    update_styles = App.update_styles

    def spy(self, node, animate=True):
        screen = self.screen if self.screen_stack else None
        loading = isinstance(screen, DashboardScreen) and screen.view.opened is None
        if loading and (node.id or "").startswith("field-"):
            restyled_while_loading.append(node)
        return update_styles(self, node, animate)

    monkeypatch.setattr(App, "update_styles", spy)
    app = viewer(path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        assert "loading the run" in status(app)
        gate.set()
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        await pilot.pause()
        assert at_mount and all(v == "" and locked for v, locked, _ in at_mount)
        assert {note for *_, note in at_mount} <= {LOADING, ""}  # drop-downs: no placeholder
        assert restyled_while_loading == []
        assert app.screen.query_one("#field-lr", Input).value == "0.001"
        assert not app.screen.query_one("#field-lr", Input).disabled
