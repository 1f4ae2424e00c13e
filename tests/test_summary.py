"""summary.json: the run's own fold of its batch losses. A history read with it folds to
exactly what a history read without it folds to, whatever the run did (a resume, a
script that said no epoch length, NaN losses), and a summary that does not fit its
events.jsonl is ignored."""

from __future__ import annotations

import json
import math

import pytest

from steplr_tui.run import record as record_module
from steplr_tui.run.record import RunRecord
from steplr_tui.runfolder import (
    EVENTS_FILE,
    BatchProgress,
    EpochEnd,
    RunEnded,
    RunOpened,
    RunStarted,
    Status,
)
from steplr_tui.runfolder.files import SUMMARY_FILE
from steplr_tui.runfolder.history import read_history
from steplr_tui.runfolder.summary import Summary, read_summary
from steplr_tui.viewer.run_view import RunView

CONFIG = {"optimizer": "adam", "lr": 0.001, "step_size": 2, "gamma": 0.1, "epochs": 6}


def epoch(e: int, steps: int, said: int | None = None, spike: float = 0.0) -> list:
    """Three progress lines of an epoch of `steps` batches (`said`: the steps the progress
    lines give, 0 for a script that did not say), then its end."""
    out = []
    per = steps // 3
    for k in range(1, 4):
        losses = tuple(
            2.0 / (e + (k * per + i) / steps) + (spike if i == 1 else 0.0) for i in range(per)
        )
        out.append(BatchProgress(e, k * per, steps if said is None else said, losses, 1e4, e))
    out.append(EpochEnd(e, 0.001, 1.0 / e, 90.0 + e, 0.1, float(e), steps=steps))
    return out


def write(record: RunRecord, events: list) -> None:
    for event in events:
        record.write(event)


def folded(path, use_summary: bool) -> RunView:
    view = RunView()
    view.apply_all(read_history(path, use_summary=use_summary).items)
    return view


def assert_same_fold(path) -> None:
    fast, full = folded(path, True), folded(path, False)
    # (as JSON text: NaN equals NaN there)
    assert json.dumps(fast.losses.state()) == json.dumps(full.losses.state())
    assert [e.epoch for e in fast.epochs] == [e.epoch for e in full.epochs]
    assert fast.status == full.status


@pytest.fixture
def every_event(monkeypatch):
    """A summary after every event that leaves the fold settled."""
    monkeypatch.setattr(record_module, "SUMMARY_INTERVAL_S", 0.0)


def new_record(tmp_path) -> RunRecord:
    record = RunRecord.create(tmp_path, CONFIG, {})
    record.mark_running()
    record.write(RunOpened(str(record.path), CONFIG, pid=1))
    record.write(RunStarted("cpu", "MNIST", "/d", 60, 10, 6, 30, 2))
    return record


def test_a_finished_run_leaves_a_summary_that_folds_as_its_events_do(tmp_path):
    record = new_record(tmp_path)
    for e in range(1, 5):
        write(record, epoch(e, 30, spike=5.0 if e == 2 else 0.0))
    record.write(RunEnded(Status.COMPLETED, "", 4, 4.0))
    record.close()
    summary = read_summary(record.path)
    assert summary is not None
    assert summary.offset == (record.path / EVENTS_FILE).stat().st_size
    assert summary.losses.series.count == 4 * 30
    history = read_history(record.path)
    # The progress lines were left out, the summary stands at their place.
    assert not any(isinstance(i, BatchProgress) for i in history.items)
    assert any(isinstance(i, Summary) for i in history.items)
    assert_same_fold(record.path)
    assert max(folded(record.path, True).losses.downsample(10).hi) > 5.0  # the spike


def test_a_history_read_mid_run_folds_as_a_full_read(tmp_path, every_event):
    record = new_record(tmp_path)
    write(record, epoch(1, 30) + epoch(2, 30))
    write(record, epoch(3, 30)[:2])  # the epoch in progress, after the last summary too
    assert read_summary(record.path) is not None
    assert_same_fold(record.path)
    record.close()


def test_a_script_without_an_epoch_length_gets_no_summary_until_its_epoch_ends(
    tmp_path, every_event
):
    record = RunRecord.create(tmp_path, CONFIG, {"kind": "script"})
    record.mark_running()
    record.write(RunOpened(str(record.path), CONFIG, kind="script", pid=1))
    first = epoch(1, 30, said=0)
    record.write(first[0])
    before = read_summary(record.path)
    write(record, first[1:3])  # losses held until the epoch says how many batches it had
    held = read_summary(record.path)
    assert held is not None and before is not None and held.offset == before.offset
    assert held.losses.series.count == 0
    record.write(first[3])
    summary = read_summary(record.path)
    assert summary is not None and summary.losses.series.count == 30
    write(record, epoch(2, 30, said=0))
    assert_same_fold(record.path)
    view = folded(record.path, True)
    assert view.losses.downsample(100).x[-1] <= 2.0
    record.close()


def test_a_resumed_run_folds_on_from_its_earlier_sessions(tmp_path, every_event):
    record = new_record(tmp_path)
    write(record, epoch(1, 30) + epoch(2, 30) + epoch(3, 30)[:2])
    record.write(RunEnded(Status.STOPPED, "stopped", 2, 2.0))
    record.close()
    again = RunRecord(record.path)  # another process, resuming after epoch 2
    again.mark_running()
    again.write(RunOpened(str(record.path), CONFIG, first_epoch=3, pid=2))
    write(again, epoch(3, 30, spike=1.0) + epoch(4, 30))
    again.write(RunEnded(Status.COMPLETED, "", 4, 4.0))
    again.close()
    assert_same_fold(record.path)
    # epoch 3's first, stopped attempt is gone: 4 epochs of 30 batches are left.
    assert folded(record.path, True).losses.count == 4 * 30


@pytest.mark.parametrize(
    "spoil",
    [
        lambda path: (path / SUMMARY_FILE).write_text("{not json"),
        lambda path: (path / SUMMARY_FILE).write_text(json.dumps({"format": 99})),
        # events.jsonl rewritten shorter than the summary says
        lambda path: (path / EVENTS_FILE).write_bytes(
            b"\n".join((path / EVENTS_FILE).read_bytes().split(b"\n")[:5]) + b"\n"
        ),
        # a summary whose offset lands on another line than its seq
        lambda path: (path / SUMMARY_FILE).write_text(
            json.dumps({**json.loads((path / SUMMARY_FILE).read_text()), "seq": 3})
        ),
    ],
)
def test_a_summary_that_does_not_fit_its_events_is_ignored(tmp_path, spoil):
    record = new_record(tmp_path)
    write(record, epoch(1, 30) + epoch(2, 30))
    record.write(RunEnded(Status.COMPLETED, "", 2, 2.0))
    record.close()
    spoil(record.path)
    history = read_history(record.path)
    assert not any(isinstance(i, Summary) for i in history.items)
    assert_same_fold(record.path)


def test_nan_losses_survive_the_summary(tmp_path):
    record = new_record(tmp_path)
    events = epoch(1, 30)
    p = events[1]
    events[1] = BatchProgress(p.epoch, p.step, p.steps, (math.nan, *p.losses[1:]), 1e4, 1.0)
    write(record, events)
    record.write(RunEnded(Status.FAILED, "loss became nan", 1, 1.0))
    record.close()
    assert_same_fold(record.path)


def test_the_summary_costs_the_run_no_fsync(tmp_path, monkeypatch, every_event):
    record = new_record(tmp_path)
    synced = []
    monkeypatch.setattr(record_module.os, "fsync", lambda fd: synced.append(fd))
    write(record, epoch(1, 30)[:3])  # progress lines: a summary each, no fsync
    assert read_summary(record.path) is not None and synced == []
    record.close()
