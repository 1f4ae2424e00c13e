"""The sweep view (Pilot): one row per trial with the best marked, sorting, attaching the
dashboard to a trial, stopping one, the panes at each size; and the sweep source
reading a real study. Snapshots at 80x24 and 120x40 are in tests/test_snapshots.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

from textual.widgets import DataTable

from steplr_tui.run.record import RunRecord
from steplr_tui.runfolder import CONTROL_FILE, RunOpened
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.viewer import sweep_view as view
from steplr_tui.viewer.app import SteplrApp
from steplr_tui.viewer.screens.sweep import SweepScreen
from steplr_tui.viewer.widgets.sweep_plots import Axis, CurvesPlot, RegionPlot
from tests.fakes import FixedSweepSource, sweep_snapshot
from tests.helpers import burst, spec, wait_for


def app_on(snapshot, **kwargs) -> tuple[SteplrApp, FixedSweepSource]:
    app = SteplrApp(TrainConfig(data_dir="/data"), warm_up=False, cursor_blink=False, **kwargs)
    return app, FixedSweepSource(snapshot)


async def open_view(app, pilot, source, snapshot) -> SweepScreen:
    await pilot.pause()
    app.screen.open_sweep(snapshot.folder, snapshot.spec, source=source)
    await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen))
    screen = app.screen
    await wait_for(pilot, lambda: screen.snapshot is not None)
    await pilot.pause()
    return screen


def cells(screen) -> list[list[str]]:
    table = screen.query_one(DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_one_row_per_trial_the_best_marked_and_sorted(tmp_path):
    snapshot = sweep_snapshot(tmp_path)
    app, source = app_on(snapshot)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_view(app, pilot, source, snapshot)
        rows = cells(screen)
        assert len(rows) == 12 and [r[1] for r in rows] == [str(n) for n in range(12)]
        best = view.best_number(snapshot.rows)
        assert [r[1] for r in rows if r[0] == "★"] == [str(best)]
        assert {r[2] for r in rows} == {"COMPLETED", "PRUNED", "RUNNING"}
        await pilot.press("s")  # by last accuracy, the objective
        ranked = cells(screen)
        assert ranked[0][0] == "★"
        lasts = [float(r[8]) for r in ranked]
        assert lasts == sorted(lasts, reverse=True)
        head = str(screen.query_one("#sweep-head").render())
        assert "sweep-demo · RUNNING · 10 of 16 trials · 2 pruned · 2 running" in head
        assert f"best {snapshot.rows[best].value:.2f}% (trial {best}" in head
    assert source.closed  # the view let go of its source


async def test_enter_attaches_the_dashboard_to_a_trial_and_x_stops_one(tmp_path):
    record = RunRecord.create(tmp_path / "runs", TrainConfig().as_dict(), {})
    record.mark_running(pid=os.getpid())
    record.write(RunOpened(str(record.path), TrainConfig().as_dict(), pid=os.getpid()))
    record.close()
    snapshot = sweep_snapshot(tmp_path, local_runs={11: record.path})
    app, source = app_on(snapshot, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_view(app, pilot, source, snapshot)
        table = screen.query_one(DataTable)
        table.move_cursor(row=0)
        await pilot.press("enter")  # trial 0 trains on another box
        await pilot.pause()
        assert app.screen is screen
        table.move_cursor(row=11)
        await pilot.press("x")
        await pilot.pause()
        (line,) = (record.path / CONTROL_FILE).read_text().splitlines()
        assert json.loads(line)["type"] == "stop"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is not screen)
        dashboard = app.screen
        await wait_for(pilot, lambda: dashboard.view.opened is not None)
        assert dashboard.view.opened.path == str(record.path)


async def test_below_120_columns_the_panes_take_turns(tmp_path):
    snapshot = sweep_snapshot(tmp_path)
    app, source = app_on(snapshot)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_view(app, pilot, source, snapshot)

        def shown():
            return [w.id for w in screen.query("#sweep-plots > *") if w.display]

        assert shown() == ["acc-curves"]
        await pilot.press("p")
        assert shown() == ["loss-curves"]
        await pilot.press("p", "p")
        assert shown() == ["acc-curves"]
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert shown() == ["acc-curves", "loss-curves", "region"]


def test_the_panes_data(tmp_path):
    snapshot = sweep_snapshot(tmp_path)
    acc = view.accuracy_curves(snapshot)
    assert len(acc) == 12 and [c.running for c in acc].count(True) == 2
    assert acc[0].values == tuple(snapshot.rows[0].curve.values())
    assert len(view.loss_curves(snapshot)) == 12
    pairs = view.axis_pairs(snapshot)
    assert pairs == [(Axis("step_size"), Axis("gamma"))]
    points = view.region_points(snapshot, *pairs[0])
    assert [(p.x, p.y) for p in points[:2]] == [(1.0, 0.15), (2.0, 0.22)]
    running = [p for p in points if p.state == "RUNNING"]
    assert len(running) == 2 and all(p.acc is None for p in running)


async def test_each_pane_draws_its_trials(tmp_path):
    snapshot = sweep_snapshot(tmp_path)
    app, source = app_on(snapshot)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_view(app, pilot, source, snapshot)
        for pane in screen.query(CurvesPlot):
            assert "⣀" in pane.plt.build() or "⠤" in pane.plt.build() or "⠉" in pane.plt.build()
        region = screen.query_one(RegionPlot).plt.build()
        assert "★" in region and "○" in region and "●" in region


def test_the_source_reads_a_real_study_and_local_folders(tmp_path):
    from steplr_tui.study.engine import create_study
    from steplr_tui.study.spec import storage_url, sweep_folder, write_spec
    from steplr_tui.viewer.sweep_source import SweepSource

    s = spec(name="real", gamma="0.1:0.9")
    folder = sweep_folder(tmp_path, "real")
    write_spec(folder, s)
    study = create_study(s, storage_url(s, folder))
    record = RunRecord.create(tmp_path, TrainConfig().as_dict(), {})
    (record.path / "metrics.jsonl").write_text(
        json.dumps({"epoch": 1, "lr": 0.001, "train_loss": 0.5, "test_acc": 88.0}) + "\n"
    )
    trial = study.ask()
    trial.suggest_float("gamma", 0.1, 0.9)
    trial.set_user_attr("run_folder", str(record.path))
    trial.report(88.0, 1)
    snapshot = SweepSource(folder, s, lambda m: None).read()
    (row,) = snapshot.rows
    assert row.curve == {1: 88.0} and snapshot.curves[0].losses == (0.5,)
    assert snapshot.local[0] == "INTERRUPTED"  # no status.json: never marked running
    broken = SweepSource(folder, s.__class__(**{**s.__dict__, "name": "gone"}), lambda m: None)
    assert "no study 'gone'" in broken.read().error
    assert Path(folder).is_dir()


async def test_the_new_sweep_form_takes_a_burst_of_keys_whole(tmp_path):
    """tab, ctrl+u and typing as a laggy link delivers them: every field gets its text."""
    from steplr_tui.viewer.screens.sweep_form import NewSweepScreen

    snapshot = sweep_snapshot(tmp_path)
    app, source = app_on(snapshot)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_view(app, pilot, source, snapshot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewSweepScreen))
        form = app.screen
        keys = []
        texts = ("0.002", "1,2", "0.2:0.8", "step,cosine", "8", "2")
        for text in texts:
            keys += ["tab", "ctrl+u", *text]
        burst(app, *keys)
        await pilot.pause(0.3)
        values = [
            form.query_one(f"#sweep-{k}").value
            for k in ("lr", "step_size", "gamma", "scheduler", "trials", "parallel")
        ]
        assert values == list(texts)
        # Opened from a sweep's view, its fixed parameters are that sweep's.
        assert "as in sweep-demo" in str(form.query_one("#form-fixed").render())
        assert form.problem == ""


async def test_the_region_plots_axes_label_two_round_values_at_least():
    """Four trials with gamma between 0.355 and 0.559: its axis reaches 0.2 and 0.6."""
    from textual.app import App

    from steplr_tui.viewer.widgets.sweep_plots import Point

    class One(App):
        def compose(self):
            yield RegionPlot()

    app = One()
    async with app.run_test(size=(80, 8)) as pilot:  # room for two or three labels
        pane = app.query_one(RegionPlot)
        await pilot.pause()
        calls: dict[str, list[str]] = {}
        for axis in ("xticks", "yticks"):
            real = getattr(pane.plt, axis)
            setattr(pane.plt, axis, lambda t, lab=None, real=real, axis=axis: (
                calls.__setitem__(axis, [x.strip() for x in lab or []]) or real(t, lab)
            ))  # fmt: skip
        trials = [(2, 0.381, 91.9), (1, 0.355, 92.5), (2, 0.468, 92.3), (2, 0.559, 91.2)]
        points = [Point(n, x, y, acc, "COMPLETE") for n, (x, y, acc) in enumerate(trials)]
        pane.show(points, 1, Axis("step_size"), Axis("gamma"))
        assert len([label for label in calls["yticks"] if label]) >= 2, calls
        assert calls["xticks"] == ["1", "2"]


async def test_the_sweep_form_speaks_in_its_own_words_and_starts_with_ctrl_r(tmp_path):
    """Its fields' names, not the command's flags; ctrl+r starts (ctrl+s means Stop);
    `n` on a --parallel 2 sweep fills in parallel 2."""
    from steplr_tui.viewer.screens.sweep_form import NewSweepScreen

    keys = {b.key for b in NewSweepScreen.BINDINGS}
    assert "ctrl+r" in keys and "ctrl+s" not in keys
    snapshot = sweep_snapshot(tmp_path)  # its worker runs 2 trials at a time
    app, source = app_on(snapshot)
    async with app.run_test(size=(120, 40)) as pilot:
        said: list[str] = []
        app.notify = lambda message, **_kw: said.append(str(message))  # type: ignore[method-assign]
        await open_view(app, pilot, source, snapshot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewSweepScreen))
        form = app.screen
        assert form.query_one("#sweep-parallel").value == "2"
        assert "ctrl+r or enter starts" in str(form.query_one("#form-fixed").render())
        form.query_one("#sweep-gamma").value = "2"
        await pilot.pause()
        errors = str(form.query_one("#form-errors").render())
        assert errors.startswith("gamma must be a number in (0, 1]") and "--" not in errors
        form.query_one("#sweep-gamma").value = "0.1:0.9"
        form.query_one("#sweep-step_size").value = "1:x"
        form.query_one("#sweep-trials").value = "0"
        await pilot.pause()
        assert form.problem.startswith("step_size") and "--step-size" not in form.problem
        form.query_one("#sweep-step_size").value = "1,2"
        form.query_one("#sweep-scheduler").value = "step,cosne"
        await pilot.pause()
        assert form.problem.startswith("scheduler takes a list of step, multistep, warmup-step")
        assert "cosne" in form.problem and "--" not in form.problem
        form.query_one("#sweep-scheduler").value = "step, Cosine"
        await pilot.pause()
        command = form._command()
        assert command[command.index("--scheduler") + 1] == "step,cosine"
        assert form.problem == "trials must be a whole number from 1 to 100000 (got '0')"
        await pilot.press("ctrl+r")  # starts, or says why not
        await wait_for(pilot, lambda: said)
        assert said == [form.problem] and app.screen is form


def test_the_table_counts_running_trials_time_and_says_1_trial(tmp_path):
    snapshot = sweep_snapshot(tmp_path)
    times = {row[1]: (row[2], row[9]) for row in view.rows_cells(snapshot, snapshot.rows)}
    assert times["10"] == ("RUNNING", "1:45") and times["11"] == ("RUNNING", "1:35")
    assert times["0"] == ("COMPLETED", "0:48")
    one = sweep_snapshot(tmp_path, trials=1, running=1)
    one = one.__class__(
        **{**one.__dict__, "spec": one.spec.__class__(**{**one.spec.__dict__, "trials": 1})}
    )
    head = view.header_text(one)
    assert "0 of 1 trial ·" in head and "1 trials" not in head
    assert view.loss_subtitle(one) == "1 trial"


def test_a_finished_sweep_shows_its_trials_before_its_study_is_open(tmp_path):
    """trials.csv, as the sweep left it, is drawn at once; the study (seconds to open
    with Optuna) replaces it. Here there is no study at all: the table still shows."""
    import threading
    import time

    from steplr_tui.study.report import trials_csv
    from steplr_tui.study.spec import TRIALS_CSV, sweep_folder, write_spec
    from steplr_tui.viewer.sweep_source import SweepSource

    done = sweep_snapshot(tmp_path, trials=4, running=0)
    folder = sweep_folder(tmp_path, done.spec.name)
    write_spec(folder, done.spec)
    (folder / TRIALS_CSV).write_text(trials_csv(done.spec, done.rows))
    posted = []
    source = SweepSource(folder, done.spec, posted.append)
    started = time.monotonic()
    source.start(lambda watch, **_kw: threading.Thread(target=watch, daemon=True).start())
    try:
        deadline = started + 30
        while len(posted) < 2:
            assert time.monotonic() < deadline, "the source posted nothing"
            time.sleep(0.01)
    finally:
        source.close()
    first, second = posted[0].snapshot, posted[1].snapshot
    assert [r.number for r in first.rows] == [0, 1, 2, 3] and not first.error
    assert "trials.csv" in view.header_text(first)
    shown = [c[1:9] for c in view.rows_cells(first, first.rows)]
    assert shown == [c[1:9] for c in view.rows_cells(done, done.rows)]
    assert second.error  # no study here: said, and tried again
