"""Reading the panes at every size, resume and headless fixes, help and small things
(issue 13, items 5 to 15)."""

from __future__ import annotations

import math
import os
import re
import socket
import subprocess
import sys
import urllib.error
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.color import Color, ColorSystem

from steplr_tui.run.datasets import download_reason
from steplr_tui.run.jobs import Job, run_job
from steplr_tui.runfolder import EpochEnd, RunEnded, Status
from steplr_tui.runfolder.losses import MinMaxSeries
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.reader import list_runs, read_run
from steplr_tui.runfolder.resume import config_from_record
from steplr_tui.viewer.compare import Overlay
from steplr_tui.viewer.widgets.legend import legend_lines
from steplr_tui.viewer.widgets.plots import (
    ACTUAL_COLOR,
    EPOCH_COLOR,
    PENDING_COLOR,
    Y_LABEL_WIDTH,
    LossPlot,
    LrPlot,
    MetricPlot,
    log_ticks,
    nice_ticks,
)
from steplr_tui.viewer.widgets.run_log import RunLog
from tests.fakes import FakeTrainer, spy_log_writes
from tests.helpers import SIZE, advance, log_text, make_app, status, type_into, wait_for
from tests.synthetic import synthetic_data

DATA = synthetic_data(n_train=256, n_test=64)


def plain(pane) -> str:
    """A pane as text, without its colours: as drawn, at the pane's own size."""
    return pane.render().plain


# ---- 5. resume and the data folder -------------------------------------------------------


def test_resume_uses_the_recorded_data_folder_unless_something_overrides_it(
    tmp_path: Path, monkeypatch
):
    data_dir = tmp_path / "mnist-here"
    data_dir.mkdir()
    config = TrainConfig(epochs=3, batch_size=64, dataset="mnist", device="cpu")
    run_job(Job(config, tmp_path / "runs"), lambda e: None, lambda: True, data=DATA)
    (run,) = list_runs(tmp_path / "runs")
    raw = (run.path / "config.json").read_text().replace('"<memory>"', f'"{data_dir}"')
    (run.path / "config.json").write_text(raw)
    monkeypatch.delenv("STEPLR_TUI_DATA", raising=False)
    assert config_from_record(read_run(run.path), TrainConfig()).data_dir == str(data_dir)
    assert config_from_record(read_run(run.path), TrainConfig(data_dir="/flag")).data_dir == "/flag"
    monkeypatch.setenv("STEPLR_TUI_DATA", "/env")
    assert config_from_record(read_run(run.path), TrainConfig()).data_dir is None


def test_a_resume_that_fails_before_training_leaves_the_run_resumable(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    config = TrainConfig(
        epochs=4, batch_size=64, dataset="mnist", device="cpu", data_dir=str(empty), download=False
    )
    done = []
    run_job(
        Job(config, tmp_path / "runs"),
        lambda e: done.append(e) if isinstance(e, EpochEnd) else None,
        lambda: len(done) >= 1,
        data=DATA,
    )
    (run,) = list_runs(tmp_path / "runs")
    assert run.status is Status.STOPPED
    events = []
    end = run_job(Job(config, tmp_path / "runs", resume=run.path), events.append)  # no data
    assert end.status is Status.FAILED and "MNIST files missing" in end.message
    after = read_run(run.path)
    assert after.status is Status.STOPPED and after.has_checkpoint and len(after.metrics) == 1
    assert "resume failed, the run is unchanged" in after.reason
    shown = next(e for e in events if isinstance(e, RunEnded))
    assert shown.status is Status.STOPPED and "can be resumed again" in shown.message


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (
            urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution")),
            "no network",
        ),
        (urllib.error.URLError(TimeoutError("timed out")), "timed out"),
        (urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")), "refused"),
        (urllib.error.URLError(OSError(101, "Network is unreachable")), "unreachable"),
    ],
)
def test_a_failed_download_says_what_happened(error, words):
    # torchvision's own message: an empty first line, then each mirror's error.
    wrapped = RuntimeError(
        "Error downloading train-images-idx3-ubyte.gz:\n"
        f"Tried https://ossci-datasets.s3.amazonaws.com/mnist/, got:\n{error}\n"
    )
    assert words in download_reason(wrapped)


# ---- 6. a closed pipe ---------------------------------------------------------------------


def test_a_closed_stdout_stops_the_run_quietly(tmp_path: Path):
    env = {**os.environ, "STEPLR_TUI_RUNS": str(tmp_path), "STEPLR_TUI_DATA": str(tmp_path / "x")}
    run = subprocess.run(
        f"{sys.executable} -m steplr_tui --headless --dataset sample --device cpu --epochs 50 "
        "--batch-size 256 | head -5",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert run.stdout.count("\n") == 5 and "Traceback" not in run.stderr
    assert "BrokenPipe" not in run.stderr
    (record,) = list_runs(tmp_path)
    assert record.status is Status.STOPPED and record.reason == "output closed"


# ---- 7. the log --------------------------------------------------------------------------


async def test_the_log_has_the_room_a_reference_line_needs_and_rewraps():
    trainer = FakeTrainer()
    app = make_app(trainer, TrainConfig(data_dir="/d", lr=1e-7))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        log = app.screen.query_one(RunLog)
        await wait_for(pilot, lambda: log.lines and not log.has_pending)
        assert "Epoch 1, Loss: 0.8500, LR: 1e-7" in log.kept  # readable, not 0.000000
        reference = "Epoch 10, Loss: 0.5438, LR: 0.001000"
        assert log.scrollable_content_region.width >= len(reference)
        wide = len(log.lines)
        await pilot.press("f5", "f5")  # lines written while hidden are wrapped when shown
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: len(log.lines) > wide)  # rewrapped to the narrower pane
        assert max(line.cell_length for line in log.lines) <= log.scrollable_content_region.width
        await pilot.resize_terminal(*SIZE)
        await wait_for(pilot, lambda: len(log.lines) == wide)


# ---- 8. axes ------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    lo=st.floats(-100, 100),
    span=st.floats(1e-3, 1e3),
    share=st.floats(0, 1),
    rows=st.integers(2, 60),
)
def test_a_marker_lands_on_the_row_its_braille_line_is_drawn_in(lo, span, share, rows):
    import plotext._utility as ut

    from steplr_tui.viewer.widgets.plots import Pane

    pane = SimpleNamespace(canvas_height=rows)  # snap reads the pane's height alone
    hi = lo + span
    y = lo + span * share
    braille_row = ut.get_matrix_data([y], [lo, hi], 4 * rows)[0] // 4
    cell_row = ut.get_matrix_data([Pane.snap(pane, y, lo, hi)], [lo, hi], rows)[0]
    assert cell_row == min(braille_row, rows - 1)


@settings(max_examples=300, deadline=None)
@given(lo=st.floats(-1e3, 1e3), share=st.floats(1e-3, 10), count=st.integers(2, 8))
def test_ticks_are_round_and_cover_the_data(lo, share, count):
    span = share * max(abs(lo), 1.0)  # a resolution a pane can show
    hi = lo + span
    first, last, ticks, labels = nice_ticks(lo, hi, count)
    step = ticks[1] - ticks[0]
    assert step > 0
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 2.5, 5, 10))
    assert first <= lo + 1e-9 * step and last >= hi - 1e-9 * step
    assert all(len(label.strip()) <= Y_LABEL_WIDTH for label in labels)


@settings(max_examples=200, deadline=None)
@given(lo=st.floats(-400, 2), span=st.floats(0.01, 400), rows=st.integers(2, 60))
def test_log_ticks_survive_an_lr_that_decayed_to_zero(lo, span, rows):
    # 1,000 epochs of StepLR(2, 0.1) take the lr below the smallest float, to 0.
    ticks = log_ticks(lo, lo + span, rows)
    assert ticks and all(t > 0 and math.isfinite(t) for t in ticks)


@pytest.mark.parametrize("gamma", [0.1, 1e-9])
async def test_a_plan_whose_lr_decays_to_zero_draws_on_both_scales(gamma):
    config = TrainConfig(data_dir="/d", epochs=1000, step_size=1, gamma=gamma)
    app = make_app(FakeTrainer(), config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        for _ in range(2):
            await pilot.press("f3")  # linear, then log again
            await pilot.pause(0.1)
        assert app.is_running
        pane = app.screen.query_one(LrPlot)
        assert "final 0" in str(pane.border_subtitle)
        calls = []
        real = pane.plt.yticks
        pane.plt.yticks = lambda t, lab=None: calls.append(list(lab or [])) or real(t, lab)
        pane.redraw()
        labels = [label.strip() for label in calls[-1]]
        # The first lr is labelled, then round decades down to the floor of floats.
        assert labels[0] == "1e-3" and len(labels) >= 2
        assert all(re.fullmatch(r"1e-\d+", label) for label in labels), labels
        assert float(labels[-1]) >= 1e-300


async def test_the_three_panes_share_one_x_alignment_and_the_lr_levels_are_labelled():
    trainer = FakeTrainer()
    app = make_app(trainer, TrainConfig(data_dir="/d", gamma=0.5, step_size=1, epochs=4))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        screen = app.screen
        # The panes get the run's data at the screen's bounded redraw rate, which a busy
        # machine may not have reached yet: redraw now (a pane without data has no axis).
        screen.redraw("lr", "loss", "acc")
        labels = {}
        for cls in (LrPlot, LossPlot, MetricPlot):
            pane = screen.query_one(cls)
            calls = []
            real = pane.plt.yticks
            pane.plt.yticks = lambda t, lab=None, real=real, calls=calls: (
                calls.append(list(lab or [])) or real(t, lab)
            )
            pane.redraw()
            labels[cls] = calls[-1]
        # Every y label takes the same columns, so an epoch is the same column in each.
        assert {len(label) for labs in labels.values() for label in labs} == {Y_LABEL_WIDTH}
        # 1e-3, 5e-4, 2.5e-4, 1.25e-4: each level has its label, in one format.
        assert [label.strip() for label in labels[LrPlot]] == ["1e-3", "5e-4", "2.5e-4", "1.25e-4"]
        # The x tick labels, in the same columns in all three panes.
        await pilot.pause()
        axes, sizes = [], []
        for cls in (LrPlot, LossPlot, MetricPlot):
            pane = screen.query_one(cls)
            pane.redraw()  # then built at once: no timer redraw in between
            axes.append(plain(pane).splitlines()[-2])
            sizes.append((cls.__name__, pane.size, pane.roomy))
        assert len({axis.rstrip() for axis in axes}) == 1, (axes, sizes)
        assert axes[0].rstrip().endswith("4")


# ---- 9. the loss pane --------------------------------------------------------------------


def test_smoothing_is_tensorboards_moving_average_whatever_the_buckets():
    ys = [1.0 + math.sin(i / 7) + (3.0 if i == 40 else 0.0) for i in range(300)]
    weight = 0.9
    last, expected = 0.0, []
    for i, y in enumerate(ys):  # TensorBoard's debiased EMA, point by point
        last = last * weight + (1 - weight) * y
        expected.append(last / (1 - weight ** (i + 1)))
    exact = MinMaxSeries(capacity=1000)
    exact.extend([float(i) for i in range(300)], ys)
    _xs, smooth = exact.smoothed(weight, 1000)
    assert smooth == pytest.approx(expected)
    folded = MinMaxSeries(capacity=16)  # buckets of many points: the same curve, binned
    folded.extend([float(i) for i in range(300)], ys)
    _, coarse = folded.smoothed(weight, 1000)
    assert abs(coarse[-1] - expected[-1]) < 0.1


async def test_loss_keys_switch_log_y_and_smoothing_and_are_in_the_footer():
    app = make_app(FakeTrainer())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.view.status == "COMPLETED")
        loss = app.screen.query_one(LossPlot)
        footer = " ".join(str(b.binding.description) for b in app.active_bindings.values())
        assert "Log-y" in footer and "Smooth" in footer and "Detach" in footer
        linear = loss.plt.build()
        await pilot.press("f8")
        assert "(log)" in str(loss.border_title) and loss.plt.build() != linear
        await pilot.press("f9")
        assert app.screen.context.smoothing == 0.6 and "EMA 0.6" in str(loss.border_title)
        await pilot.press("f9", "f9", "f9")
        assert app.screen.context.smoothing == 0.0


# ---- 10. progress, speed and threads ------------------------------------------------------


def test_the_slow_note_names_other_processes_taking_the_cores(monkeypatch):
    import steplr_tui.viewer.cpuwatch as cpuwatch

    ticks = iter([(1000, 500), (1400, 500)])  # all 2 cores busy for 400 ticks
    monkeypatch.setattr(cpuwatch, "_cpu_ticks", lambda: next(ticks))
    ours = iter([100, 180])  # the run used 80 of them: 0.4 of a core
    monkeypatch.setattr(cpuwatch, "_proc_ticks", lambda pid: next(ours))
    watch = cpuwatch.CpuWatch(interval=0.0)
    watch.cores = 2
    assert watch.sample({1}) == ""
    note = watch.sample({1})
    assert "other processes use 1.6 of 2 cores" in note


def test_a_status_part_that_does_not_fit_leaves_its_room_to_the_others():
    from steplr_tui.viewer.run_view import fit_parts

    parts = [(0, "epoch 1/20"), (1, "x" * 60), (3, "35k samples/s"), (6, "cpu (2 threads)")]
    assert fit_parts(parts, 200) == " · ".join(t for _, t in parts)
    # The long note cannot fit at 50: the shorter, less important parts still show.
    assert fit_parts(parts, 50) == "epoch 1/20 · 35k samples/s · cpu (2 threads)"
    assert fit_parts(parts, 30) == "epoch 1/20 · 35k samples/s"
    assert fit_parts(parts, 5) == "epoch 1/20"  # the head stays, whatever the width


async def test_the_status_line_shows_the_whole_run_and_the_epoch():
    trainer = FakeTrainer(epochs_done=2, block=True)
    app = make_app(trainer, TrainConfig(data_dir="/d", epochs=10))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(
            pilot, lambda: app.screen.view.progress and app.screen.view.progress.epoch == 3
        )
        await wait_for(pilot, lambda: "25%" in status(app))
        assert "epoch 3/10 (50%)" in status(app)
        await pilot.press("ctrl+s")


# ---- 11 and 12. the runs table, the legend, the x span -------------------------------------


def test_legend_entries_are_never_cut_inside_and_steered_runs_say_so():
    overlays = [
        Overlay(
            str(i), f"2026120{i}-101500", f"adam lr 1e-3 s{i} g0.1 b64", (), (), (), edited=i == 2
        )
        for i in range(4)
    ]
    text = [line.plain for line in legend_lines(overlays, 96)]
    # Four whole entries do not fit two lines: each says what tells it apart.
    assert len(text) == 2 and all(len(t) <= 96 for t in text)
    for overlay in overlays:
        assert sum(f"━ s{overlay.key} " in t and overlay.name in t for t in text) == 1
    assert "✎ edited" in "".join(text)
    (one,) = legend_lines(overlays[:1], 96)  # one overlay: named in full
    assert "━ adam lr 1e-3 s0 g0.1 b64 20261200-101500" in one.plain


def legend_overlays(n: int) -> list[Overlay]:
    epochs = [EpochEnd(e, 1e-3, 1 / e, 90.0, 1.0, e) for e in range(1, 6)]
    out = []
    for i in range(n):
        config = TrainConfig(epochs=5, lr=0.001 * (i + 1), gamma=0.1 + 0.2 * i)
        name = "20261206-101500" + (f".{i + 1}" if i else "")
        overlay = Overlay.from_epochs(f"k{i}", name, config.as_dict(), epochs, 10)
        out.append(Overlay(**{**overlay.__dict__, "edited": i == 0}))
    return out


@pytest.mark.parametrize(("size", "count"), [((120, 40), 3), ((80, 24), 4), ((120, 40), 4)])
async def test_the_legend_shows_every_overlay_readable(size, count):
    """Issue 23: at 120x40 it showed 2 of 3 overlays, and cut their names at 80x24; the
    runs table allows 4."""
    app = make_app(FakeTrainer())
    async with app.run_test(size=size) as pilot:
        app.screen._set_overlays(legend_overlays(count))
        await pilot.pause()
        legend = app.screen.query_one("#legend")
        await wait_for(pilot, lambda: legend.size.height > 0)
        rows = [strip.text.rstrip() for strip in legend.render_lines(legend.size.region)]
        shown = "\n".join(rows)
        for i in range(count):
            lr = ("1e-3", "2e-3", "3e-3", "4e-3")[i]
            gamma = ("g0.1", "g0.3", "g0.5", "g0.7")[i]
            time = "10:15:00" + (f".{i + 1}" if i else "")
            assert sum(f"lr {lr} {gamma}" in r and time in r for r in rows) == 1, shown
        assert "…" not in shown and "✎" in shown


async def test_a_pinned_long_run_leaves_the_x_axis_to_the_current_one():
    app = make_app(FakeTrainer())
    async with app.run_test(size=SIZE) as pilot:
        epochs = [EpochEnd(e, 1e-3, 1 / e, 90.0, 1.0, e) for e in range(1, 101)]
        app.screen._set_overlays(
            [Overlay.from_epochs("k", "long", TrainConfig(epochs=100).as_dict(), epochs, 10)]
        )
        await pilot.pause()
        for cls in (LrPlot, LossPlot, MetricPlot):
            axis = plain(app.screen.query_one(cls)).splitlines()[-2]
            assert axis.rstrip().endswith(" 5") and "100" not in axis


async def test_the_runs_table_updates_while_open_and_hints_at_hidden_columns(tmp_path: Path):
    from textual.widgets import DataTable

    from steplr_tui.viewer.screens.runs import RunsScreen

    run_job(Job(TrainConfig(epochs=1, device="cpu"), tmp_path), lambda e: None, data=DATA)
    (run,) = list_runs(tmp_path)
    app = make_app(FakeTrainer(), runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.runs)
        table = app.screen.query_one(DataTable)
        row = table.get_row_at(0)
        assert row[1:4] == [run.name[:15], "COMPLETED", "1/1"]  # what matters, first
        hint = app.screen.query_one("#runs-hint")

        def shown() -> str:  # what the hint's rows show, not all it holds
            return " ".join(strip.text for strip in hint.render_lines(hint.size.region))

        await wait_for(pilot, lambda: "← → more columns" in shown())
        with open(run.path / "metrics.jsonl", "a") as fh:
            fh.write(
                '{"epoch": 2, "lr": 0.001, "train_loss": 0.5, "test_acc": 91.0, "seconds": 1}\n'
            )
        await wait_for(pilot, lambda: table.get_row_at(0)[3] == "2/1", timeout=5)


# ---- 13 and 15. small things, help, the palette --------------------------------------------


def test_plot_colours_stay_clear_of_red_on_a_16_colour_terminal():
    for rgb in (ACTUAL_COLOR, EPOCH_COLOR, PENDING_COLOR):
        downgraded = Color.from_rgb(*rgb).downgrade(ColorSystem.STANDARD)
        assert downgraded.number not in (1, 9), rgb  # red, bright red


def test_help_fits_80_columns_and_names_the_commands():
    env = {**os.environ, "COLUMNS": "80"}
    result = subprocess.run(
        [sys.executable, "-m", "steplr_tui", "--help"], capture_output=True, text=True, env=env
    )
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    for command in ("attach", "stop RUN", "edit RUN", "export", "--detach"):
        assert command in result.stdout
    # Every command, with the flags a user would otherwise never find (issue 23).
    commands = result.stdout.split("commands (", 1)[1].split("\n\n", 1)[0]
    for command in ("attach [RUN]", "stop RUN", "edit RUN", "export RUN", "sweep", "--tensorboard"):
        assert command in commands, command
    assert "steplr-tui COMMAND --help" in result.stdout


async def test_f1_and_question_mark_open_help_and_the_palette_lists_the_actions():
    from textual.command import CommandPalette

    from steplr_tui.viewer.screens.help import HelpScreen

    app = make_app(FakeTrainer())
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#field-lr").focus()
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.plain()
        for words in ("ctrl+n", "detached", "f8", "space", "withdraws", "never overwritten",
                      "ctrl+g", "attach the dashboard to the trial"):  # fmt: skip
            assert words in text, words
        await pilot.press("escape")
        await pilot.press("?")  # in a text field: it is typed, not help
        assert not isinstance(app.screen, HelpScreen)
        assert app.screen.query_one("#field-lr").value.endswith("?")
        app.screen.query_one("#field-optimizer").focus()
        await pilot.press("?")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Start a detached run" in titles and "Loss smoothing" in titles
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)


async def test_momentum_with_adam_and_edited_fields_are_said(tmp_path: Path):
    from steplr_tui.cli.options import parse_options

    options = parse_options(["--momentum", "0.5"])
    assert options.notes == (
        "--momentum is ignored: adam has no momentum (it applies to --optimizer sgd)",
    )
    trainer = FakeTrainer(epochs_done=1, block=True)
    app = make_app(trainer, TrainConfig(data_dir="/d", epochs=4), notes=options.notes)
    async with app.run_test(size=SIZE) as pilot:
        assert "--momentum is ignored" in log_text(app)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(app.screen.view.epochs) == 1)

        await type_into(pilot, "gamma", "0.5")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.view.pending)
        await advance(pilot, trainer, 3)
        await wait_for(pilot, lambda: not app.screen.view.active)
        assert "ctrl+r starts the next run with them" in log_text(app)


async def test_a_log_that_shows_its_end_keeps_showing_it_when_it_shrinks():
    from textual.app import App

    class One(App):
        def compose(self):
            yield RunLog(id="log")

    app = One()
    async with app.run_test(size=(60, 20)) as pilot:
        log = app.query_one(RunLog)
        log.add([f"line {i}" for i in range(60)])
        await pilot.pause()
        assert log.flush()
        await pilot.pause(0.1)
        assert log.scroll_y == log.max_scroll_y > 0
        log.styles.height = 8  # the panes above it grew: the log has fewer rows
        await pilot.pause(0.1)
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y
        log.scroll_home(animate=False)  # the user scrolled up to read: it stays there
        await pilot.pause()
        log.styles.height = 6
        await pilot.pause(0.1)
        assert log.scroll_y == 0


async def test_a_long_log_queued_before_its_pane_is_laid_out_still_comes_last_lines_first(
    monkeypatch,
):
    """A replay read before the pane has a width: its resize must not write it all at once."""
    from textual.app import App

    from steplr_tui.viewer.widgets.run_log import FIRST_LINES

    writes = spy_log_writes(monkeypatch)

    class One(App):
        def compose(self):
            log = RunLog(id="log")
            log.display = False
            yield log

    app = One()
    async with app.run_test(size=(60, 20)) as pilot:
        log = app.query_one(RunLog)
        log.add([f"line {i}" for i in range(500)])
        assert not log.flush()  # no width yet: it waits
        log.display = True
        await wait_for(pilot, lambda: log.size.width > 0)
        await pilot.pause()
        assert log.flush()
        assert writes[0] == FIRST_LINES
        await wait_for(pilot, lambda: max(writes) == 500)
        assert log.lines[-1].text == "line 499"


async def test_a_log_rewraps_its_lines_when_its_width_changes_and_only_then(monkeypatch):
    """A resize also comes when the pane's height changes and with each layout that finds
    more lines written; rewriting all its lines then held the event loop 1 to 2.5 s under
    load, and typed keys waited that long."""
    from textual.app import App

    writes = spy_log_writes(monkeypatch)

    class One(App):
        CSS = "RunLog { border: round red; }"  # bordered, as on the dashboard

        def compose(self):
            yield RunLog(id="log")

    app = One()
    async with app.run_test(size=(60, 20)) as pilot:
        log = app.query_one(RunLog)
        for k in range(5):  # lines flushed a tick at a time, as a live run's
            log.add([f"epoch {k} line {i}" for i in range(30)])
            assert log.flush()
            await pilot.pause(0.05)
        log.styles.height = 8  # the panes above it grew
        await pilot.pause(0.1)
        assert writes == [30] * 5  # the flushes only: nothing written again
        log.styles.width = 30  # narrower: the lines wrap again, once
        await pilot.pause(0.1)
        assert writes[5:] == [150]
        assert log.lines[-1].text == "epoch 4 line 29"
