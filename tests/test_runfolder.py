"""The run folder's format and its two ends: the codec, the tail reader, the record
writer and the control reader's decisions."""

from __future__ import annotations

import base64
import errno
import json
import math
import os
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steplr_tui.run.control import ControlReader, Inbox, Steering
from steplr_tui.run.record import STATUS_BYTES, RecordError, RunRecord, write_status
from steplr_tui.runfolder import (
    CONTROL_FILE,
    EVENTS_FILE,
    MAX_REQUEST_BYTES,
    BatchProgress,
    Decision,
    EditRequest,
    EpochEnd,
    LineTail,
    LrPlan,
    Notice,
    RequestError,
    RunEnded,
    RunOpened,
    RunStarted,
    Status,
    StopRequest,
    WithdrawRequest,
    append_line,
    as_float32,
    decode_event,
    decode_request,
    encode_event,
    encode_request,
)
from steplr_tui.runfolder.history import decode_lines
from steplr_tui.runfolder.reader import read_status
from steplr_tui.runfolder.schedule import ScheduleEdit

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
edits = st.builds(
    ScheduleEdit,
    lr=st.none() | st.floats(1e-8, 10.0),
    step_size=st.none() | st.integers(1, 1000),
    gamma=st.none() | st.floats(1e-3, 1.0),
    milestones=st.none() | st.lists(st.integers(1, 99), min_size=1, max_size=4).map(tuple),
    warmup=st.none() | st.integers(1, 99),
)
events = st.one_of(
    st.builds(
        LrPlan,
        first_epoch=st.integers(1, 99),
        lrs=st.lists(st.lists(finite, min_size=1, max_size=3).map(tuple), max_size=5).map(tuple),
        scheduler=st.fixed_dictionaries({"class": st.sampled_from(["StepLR", "OneCycleLR"])}),
        steps_per_epoch=st.integers(1, 999),
        step_lrs=st.lists(finite, max_size=9).map(tuple),
        editable=st.lists(st.sampled_from(["lr", "gamma", "milestones"]), max_size=3).map(tuple),
        pending=st.sampled_from(["", "queued"]),
        note=st.text(max_size=20),
    ),
    st.builds(
        RunOpened,
        path=st.text(max_size=20),
        config=st.just({"lr": 0.001}),
        first_epoch=st.integers(1, 9),
        pid=st.integers(0, 99999),
    ),
    st.builds(
        RunStarted,
        device=st.text(max_size=9),
        dataset=st.text(max_size=9),
        data_dir=st.text(max_size=9),
        n_train=st.integers(0, 10**6),
        n_test=st.integers(0, 10**6),
        epochs=st.integers(0, 1000),
        steps_per_epoch=st.integers(0, 10**5),
        batch_size=st.integers(0, 4096),
        world_size=st.integers(1, 8),
    ),
    st.builds(
        Notice,
        text=st.text(max_size=30),
        level=st.sampled_from(["info", "warning", "error"]),
        persistent=st.booleans(),
    ),
    st.builds(
        BatchProgress,
        epoch=st.integers(1, 99),
        step=st.integers(1, 999),
        steps=st.integers(0, 999),
        losses=st.lists(finite, max_size=20).map(as_float32),
        samples_per_s=finite,
        elapsed=finite,
    ),
    st.builds(
        EpochEnd,
        epoch=st.integers(1, 99),
        lr=finite,
        train_loss=finite,
        test_acc=finite,
        seconds=finite,
        elapsed=finite,
        edit=st.none() | edits.filter(bool),
        metrics=st.dictionaries(st.sampled_from(["val_loss", "bleu"]), finite, max_size=2),
        lrs=st.just(()) | st.lists(finite, min_size=2, max_size=3).map(tuple),
        step_lrs=st.lists(finite, max_size=9).map(tuple),
    ),
    st.builds(
        Decision,
        request=st.none() | st.text(min_size=1, max_size=12),
        action=st.sampled_from(["edit", "stop", "withdraw", "?"]),
        decision=st.sampled_from(["queued", "applied", "withdrawn", "refused"]),
        epoch=st.integers(0, 99),
        edit=st.none() | edits.filter(bool),
        fields=st.lists(st.sampled_from(["lr", "gamma"]), max_size=2).map(tuple),
        reason=st.text(max_size=30),
        line=st.integers(0, 99),
    ),
    st.builds(
        RunEnded,
        status=st.sampled_from(list(Status)),
        message=st.text(max_size=30),
        epochs_done=st.integers(0, 99),
        elapsed=finite,
        batch=st.integers(0, 99),
    ),
)


@settings(max_examples=300, deadline=None)
@given(event=events, seq=st.integers(0, 10**9))
def test_every_event_round_trips_through_one_line_of_strict_json(event, seq):
    line = encode_event(event, seq, 1.5)
    assert "\n" not in line

    def strict(constant: str):  # NaN, Infinity: not JSON (text that says "NaN" is fine)
        raise AssertionError(f"{constant} in {line}")

    assert decode_event(json.loads(line, parse_constant=strict)) == (seq, event)


def test_non_finite_floats_are_written_as_null_and_losses_as_float32():
    event = EpochEnd(1, 0.001, math.nan, math.inf, 1.0, 1.0)
    line = encode_event(event, 1, 0.0)
    assert '"train_loss":null' in line and '"test_acc":null' in line
    _, back = decode_event(json.loads(line))
    assert math.isnan(back.train_loss) and math.isnan(back.test_acc)
    # Batch losses: base64 of little-endian float32 (numpy.frombuffer(..., "<f4")).
    event = BatchProgress(1, 3, 10, (0.5, math.nan, math.inf), 1.0, 1.0)
    line = encode_event(event, 1, 0.0)
    raw = base64.b64decode(json.loads(line)["losses_f32"])
    assert struct.unpack("<3f", raw)[0] == 0.5 and math.isinf(struct.unpack("<3f", raw)[2])
    _, back = decode_event(json.loads(line))
    assert back.losses[0] == 0.5 and math.isnan(back.losses[1]) and back.losses[2] == math.inf
    # Another writer may give them as plain JSON numbers.
    _, other = decode_event(
        {"type": "progress", "epoch": 1, "step": 2, "steps": 9, "losses": [0.25, None]}
    )
    assert other.losses[0] == 0.25 and math.isnan(other.losses[1])


def test_unknown_types_are_skipped_and_bad_lines_counted():
    good = encode_event(Notice("hi"), 1, 0.0).encode()
    lines = [good, b'{"type":"from-the-future","seq":2}', b"not json", b'{"type":"epoch"}', b""]
    decoded, bad = decode_lines(lines)
    assert decoded == [Notice("hi")] and bad == 2


def test_requests_round_trip_and_garbage_is_refused_with_the_reason():
    for request in (
        EditRequest("a1", ScheduleEdit(lr=0.002, gamma=0.5), "viewer 1@h"),
        StopRequest("a2", "shell 2@h", "enough"),
        WithdrawRequest("a3", ("lr", "gamma"), "viewer 1@h"),
    ):
        assert decode_request(encode_request(request).rstrip(b"\n")) == request
    cases = {
        b"{": "not JSON",
        b"[1, 2]": "JSON object",
        b'{"type": "edit", "lr": 0.1}': "needs an 'id'",
        b'{"type": "reboot", "id": "x"}': "unknown request type",
        b'{"type": "edit", "id": "x"}': "at least one of",
        b'{"type": "edit", "id": "x", "lr": "fast"}': "lr must be a number",
        b'{"type": "edit", "id": "x", "step_size": 2.5}': "whole number",
        b'{"type": "edit", "id": "x", "momentum": 0.5}': "only lr, step_size, gamma, milest",
        b'{"type": "withdraw", "id": "x", "fields": ["seed"]}': "a withdraw needs",
        b"x" * (MAX_REQUEST_BYTES + 1): "over the 4096-byte limit",
    }
    for line, reason in cases.items():
        with pytest.raises(RequestError, match=reason):
            decode_request(line)


def test_the_tail_waits_for_a_torn_line_and_starts_over_when_the_file_is_rewritten(tmp_path):
    path = tmp_path / "x.jsonl"
    tail = LineTail(path)
    assert tail.read() == []  # not there yet: nothing, no error
    path.write_bytes(b'{"a": 1}\n{"b":')
    assert tail.read() == [b'{"a": 1}'] and tail.pending_bytes == 5
    assert tail.read() == []  # the torn line is waited for, never an error
    with open(path, "ab") as fh:
        fh.write(b' 2}\n{"c": 3}\n')
    assert tail.read() == [b'{"b": 2}', b'{"c": 3}']
    path.write_bytes(b'{"d": 4}\n')  # shorter: rewritten
    assert tail.read() == [b'{"d": 4}']


def test_appends_from_many_writers_never_interleave(tmp_path):
    path = tmp_path / CONTROL_FILE
    pids = []
    for n in range(4):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                for i in range(200):
                    append_line(
                        path, encode_request(EditRequest(f"{n}-{i}", ScheduleEdit(lr=0.001)))
                    )
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    ids = [decode_request(line).id for line in path.read_bytes().splitlines()]
    assert sorted(ids) == sorted(f"{n}-{i}" for n in range(4) for i in range(200))


def steering(tmp_path: Path, epochs: int | None = 5, epoch: int = 1):
    decisions: list[Decision] = []
    inbox = Inbox()
    s = Steering(ControlReader(tmp_path, 0, inbox), decisions.append, epoch=epoch, epochs=epochs)
    return s, inbox, decisions


def test_each_request_is_decided_once_in_order_and_edits_merge_at_the_boundary(tmp_path):
    s, inbox, decisions = steering(tmp_path)
    control = tmp_path / CONTROL_FILE
    append_line(control, encode_request(EditRequest("a", ScheduleEdit(gamma=0.5), "v1")))
    inbox.put(EditRequest("b", ScheduleEdit(lr=0.002), "v2"))
    append_line(control, encode_request(EditRequest("c", ScheduleEdit(gamma=0.25), "v3")))
    append_line(control, encode_request(EditRequest("a", ScheduleEdit(lr=9.0), "replay")))
    s.poll()
    assert [(d.request, d.decision) for d in decisions] == [
        ("b", "queued"),
        ("a", "queued"),
        ("c", "queued"),
        ("a", "refused"),
    ]
    assert decisions[-1].reason == "this id was already decided"
    assert all(d.epoch == 1 for d in decisions[:3])  # they apply after epoch 1
    assert s.boundary(1) == ScheduleEdit(lr=0.002, gamma=0.25)  # later values win
    assert not any(d.decision == "applied" for d in decisions)  # the epoch's line comes first
    s.record_applied()
    applied = [d for d in decisions if d.decision == "applied"]
    assert [d.request for d in applied] == ["b", "a", "c"] and {d.epoch for d in applied} == {1}
    s.poll()  # read again: nothing is decided twice
    assert len(decisions) == 7 and s.epoch == 2


def test_withdraw_takes_back_fields_from_whoever_queued_them(tmp_path):
    s, inbox, decisions = steering(tmp_path)
    inbox.put(EditRequest("a", ScheduleEdit(lr=0.002, gamma=0.5), "shell"))
    inbox.put(WithdrawRequest("w", ("lr",), "viewer"))
    inbox.put(WithdrawRequest("w2", ("step_size",), "viewer"))
    s.poll()
    withdrawn = next(d for d in decisions if d.decision == "withdrawn")
    assert withdrawn.request == "a" and withdrawn.fields == ("lr",)
    assert (
        decisions[-1].decision == "refused"
        and "nothing queued for step_size" in decisions[-1].reason
    )
    assert s.boundary(1) == ScheduleEdit(gamma=0.5)


def test_edits_against_the_rules_or_too_late_are_refused_and_stop_is_recorded(tmp_path):
    s, inbox, decisions = steering(tmp_path, epochs=3, epoch=3)
    inbox.put(EditRequest("late", ScheduleEdit(lr=0.1)))
    s.poll()
    assert decisions[-1].decision == "refused" and "no boundary left" in decisions[-1].reason
    s, inbox, decisions = steering(tmp_path / "b")
    (tmp_path / "b").mkdir()
    inbox.put(EditRequest("bad", ScheduleEdit(gamma=2.0)))
    inbox.put(StopRequest("s", "shell 9@h"))
    assert s.check() == "stopped by shell 9@h"
    assert decisions[0].reason == "gamma must be a number in (0, 1] (got 2.0)"
    assert decisions[1].action == "stop" and decisions[1].decision == "applied"
    s.end("the run stopped before its boundary")
    inbox.put(EditRequest("after", ScheduleEdit(lr=0.1)))
    s.poll()
    assert decisions[-1].reason == "the run had already ended"


def test_garbage_and_oversized_lines_are_refused_and_skipped_without_waiting(tmp_path):
    s, _inbox, decisions = steering(tmp_path)
    control = tmp_path / CONTROL_FILE
    with open(control, "ab") as fh:
        fh.write(b"\x00\xff garbage\n")
        fh.write(b"{" * (MAX_REQUEST_BYTES * 3))  # oversized, and no newline yet
    s.poll()
    assert [d.decision for d in decisions] == ["refused", "refused"]
    assert "over the 4096-byte limit" in decisions[1].reason
    with open(control, "ab") as fh:
        fh.write(b"}}}\n" + encode_request(StopRequest("s1", "x")))
    s.poll()
    # The oversized line's rest is skipped, not refused again; the stop after it is read.
    assert [d.request for d in decisions] == [None, None, "s1"] and s.stop_reason


def test_a_resumed_run_starts_reading_where_its_session_began(tmp_path):
    control = tmp_path / CONTROL_FILE
    append_line(control, encode_request(StopRequest("old", "x")))  # history: a stop long done
    offset = control.stat().st_size
    append_line(control, encode_request(EditRequest("new", ScheduleEdit(lr=0.01))))
    decisions: list[Decision] = []
    s = Steering(ControlReader(tmp_path, offset), decisions.append)
    s.poll()
    assert [(d.request, d.line) for d in decisions] == [("new", 2)] and s.stop_reason is None


def test_the_record_continues_its_sequence_and_writes_status_in_place_on_a_full_disk(
    tmp_path, monkeypatch
):
    record = RunRecord.create(
        tmp_path, {"optimizer": "adam", "lr": 0.1, "step_size": 1, "gamma": 0.5}, {}
    )
    record.mark_running()
    record.write(Notice("one"))
    record.write(Notice("two"))
    record.close()
    again = RunRecord(record.path)
    again.write(Notice("three"))
    again.close()
    seqs = [
        json.loads(line)["seq"] for line in (record.path / EVENTS_FILE).read_text().splitlines()
    ]
    assert seqs == [1, 2, 3]
    assert (record.path / "status.json").stat().st_size == STATUS_BYTES

    import steplr_tui.run.record as record_module

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(record_module, "write_atomic", full)
    write_status(record.path, {"status": "FAILED", "reason": "cannot write: disk full"})
    status, reason, _ = read_status(record.path)
    assert status is Status.FAILED and reason == "cannot write: disk full"
    with pytest.raises(RecordError, match="free some disk space"):
        again.truncate_metrics(0)
