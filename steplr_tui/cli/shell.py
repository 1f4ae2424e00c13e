"""The shell's side of a run folder: `stop`, `edit` and `--list-runs`.

They write requests to control.jsonl (one write per line, so any number of
viewers and shells can at once) and read the run's decisions back from
events.jsonl. No torch and no Textual: they answer in a fraction of a second.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from steplr_tui.runfolder import (
    CONTROL_FILE,
    EVENTS_FILE,
    Decision,
    EditRequest,
    FormatError,
    LineTail,
    Request,
    RunEnded,
    RunOpened,
    RunStarted,
    Status,
    StopRequest,
    append_line,
    decode_event,
    encode_request,
    file_size,
    new_request_id,
    sender_name,
)
from steplr_tui.runfolder.reader import (
    RunInfo,
    RunNotFound,
    list_runs,
    read_run,
    read_status,
    resume_hint,
)
from steplr_tui.runfolder.runs_table import (
    SUMMARY_COLUMNS,
    nest_branches,
    nested_name,
    process_text,
    summary_row,
)
from steplr_tui.runfolder.schedule import ScheduleEdit
from steplr_tui.runfolder.text import clean_text, describe_decision, plural

STOP_WAIT_S = 10.0
TAKEN_QUIET_S = 1.0  # a run that took the stop and ends within this says nothing more
DECISION_WAIT_S = 5.0


class CommandError(RuntimeError):
    """A command that cannot be done; the message says why and what to do."""


def send(path: Path, request: Request) -> int:
    """Append a request to the run's control.jsonl; returns events.jsonl's size before it,
    where the run's decision will be found."""
    before = file_size(path / EVENTS_FILE)
    try:
        append_line(path / CONTROL_FILE, encode_request(request))
    except OSError as exc:
        raise CommandError(
            f"cannot write {path / CONTROL_FILE} ({exc.strerror or exc}): "
            "check the folder's permissions and free space"
        ) from exc
    return before


def running(path: Path) -> RunInfo:
    """The run at `path`, which must be RUNNING with its process alive (it holds the
    folder's lock); its config.json need not be readable."""
    try:
        info = read_run(path)
    except RunNotFound as exc:
        raise CommandError(clean_text(exc)) from None
    name = clean_text(info.name)
    if info.status is Status.RUNNING:
        return info
    if info.status is Status.INTERRUPTED:
        raise CommandError(
            clean_text(
                f"run {name} is not running: {info.reason}; {resume_hint(info.name, info.kind)}"
            )
        )
    raise CommandError(f"run {name} is not running ({info.status.value}): nothing to do")


def _decision_in(tail: LineTail, request_id: str) -> Decision | None:
    """The run's first decision on `request_id` among the lines added since the last read."""
    for line in tail.read():
        try:
            decoded = decode_event(json.loads(line))
        except (ValueError, FormatError):
            continue
        if decoded and isinstance(decoded[1], Decision) and decoded[1].request == request_id:
            return decoded[1]
    return None


def wait_decision(
    path: Path, offset: int, request_id: str, timeout: float, clock: Callable[[], float]
) -> Decision | None:
    """The run's first decision on `request_id` (queued, applied or refused), if it comes."""
    tail = LineTail(path / EVENTS_FILE, offset)
    deadline = clock() + timeout
    while True:
        decision = _decision_in(tail, request_id)
        if decision is not None:
            return decision
        if clock() >= deadline:
            return None
        status, _, _ = read_status(path)
        if status.final:
            # Its last lines may have landed since this read.
            return _decision_in(tail, request_id)
        time.sleep(0.05)


def _say(text: str, file: TextIO, flush: bool = False) -> None:
    """A line for the terminal, with nothing of the run folder able to drive it."""
    print(clean_text(text), file=file, flush=flush)


def stop_run(path: Path, out: TextIO, timeout: float = STOP_WAIT_S) -> int:
    """`steplr-tui stop RUN`: ask, then wait for the final status (at most `timeout`).

    A run takes a stop before its next batch (a "stop applied" decision in
    events.jsonl), but a script ends its epoch's own way first: its evaluation
    after the batch loop may take longer than the wait. A run that took the stop
    answers, so that is no failure: the command says it is finishing its epoch
    and exits 0. Only a run that never read the stop is a problem.
    """
    info = running(path)
    earlier = _stop_taken_before(path)
    request = StopRequest(new_request_id(), sender_name("shell"), "")
    offset = send(path, request)
    _say(f"steplr-tui: asked {info.name} to stop at its next batch…", file=out, flush=True)
    if timeout <= 0:
        _say(f"steplr-tui: steplr-tui --list-runs shows when {info.name} ends", file=out)
        return 0
    tail = LineTail(path / EVENTS_FILE, offset)
    # A run that took a stop already (its evaluation outlasted an earlier `stop`) reads
    # no more requests before it ends: that earlier answer is this one's too.
    taken: Decision | None = None
    if earlier is not None:
        taken = earlier
        _say(
            f"steplr-tui: {info.name} took a stop already, in epoch {earlier.epoch}; waiting "
            "for it to end…",
            file=out,
            flush=True,
        )
    deadline = time.monotonic() + timeout
    taken_at, told = 0.0, earlier is not None
    while True:
        now = time.monotonic()
        if taken is None:
            taken = _decision_in(tail, request.id)
            taken_at = now
        # A run that ends at once (the built-in trainer) needs no word on it.
        quiet = now - taken_at < TAKEN_QUIET_S and now < deadline
        if taken is not None and taken.decision == "applied" and not told and not quiet:
            told = True
            _say(
                f"steplr-tui: {info.name} took the stop in epoch {taken.epoch}; waiting "
                "for it to end (what its loop does after the batches, such as an "
                "evaluation, comes first)…",
                file=out,
                flush=True,
            )
        after = read_run(path)
        if after.status.final:
            return _say_ended(info, after, out)
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if taken is not None and taken.decision == "applied":
        _say(
            f"steplr-tui: {info.name} took the stop and is finishing epoch {taken.epoch} "
            f"(its evaluation, say); it ends STOPPED when that is done. "
            f"steplr-tui --list-runs shows when; steplr-tui stop {info.name} --wait 300 "
            "waits for it",
            file=out,
        )
        return 0
    if taken is not None:  # refused: only when the run was ending anyway
        raise CommandError(f"{info.name} did not take the stop: {taken.reason}")
    busy = file_size(path / EVENTS_FILE) > offset
    why = (
        "it is writing its record but has not read the stop: does its loop call "
        "run.should_stop() before each batch?"
        if busy
        else "a run reads requests before each batch and at the end of each epoch, so one "
        "busy in between (a long evaluation, a slow first batch) reads it later"
    )
    raise CommandError(
        f"{info.name} has not read the stop within {timeout:g} s; {why}. The stop stays "
        f"asked: steplr-tui attach {info.name} shows when it ends (pid {info.pid})"
    )


def _stop_taken_before(path: Path, window: int = 256 * 1024) -> Decision | None:
    """The last stop the run took, if one is among events.jsonl's last `window` bytes (a run
    goes quiet after a stop: a stop it took is near the end of its events)."""
    events = path / EVENTS_FILE
    start = max(file_size(events) - window, 0)
    lines = LineTail(events, start).read()
    if start > 0:
        lines = lines[1:]  # the first may be the end of a line cut at the window's edge
    found = None
    for line in lines:
        try:
            decoded = decode_event(json.loads(line))
        except (ValueError, FormatError):
            continue
        event = decoded[1] if decoded else None
        if isinstance(event, (RunOpened, RunStarted, RunEnded)):
            found = None  # a session of a resumed run starts afresh
        elif isinstance(event, Decision) and event.action == "stop" and event.decision == "applied":
            found = event
    return found


def _say_ended(info: RunInfo, after: RunInfo, out: TextIO) -> int:
    if after.status is Status.STOPPED:
        kept = "its checkpoint is kept: " if after.kind == "builtin" else ""
        _say(
            f"steplr-tui: {info.name} STOPPED after epoch {after.epochs_done}; "
            f"{kept}{resume_hint(info.name, after.kind)}",
            file=out,
        )
        return 0
    _say(f"steplr-tui: {info.name} ended {after.status.value}: {after.reason}", file=out)
    return 0 if after.status is Status.COMPLETED else 1


def edit_run(path: Path, edit: ScheduleEdit, out: TextIO, timeout: float = DECISION_WAIT_S) -> int:
    """`steplr-tui edit RUN --lr X ...`: queue it, and say where it applies."""
    info = running(path)
    request = EditRequest(new_request_id(), edit, sender_name("shell"))
    offset = send(path, request)
    decision = wait_decision(path, offset, request.id, timeout, time.monotonic)
    if decision is None:
        _say(
            f"steplr-tui: sent {edit.describe()} to {info.name}; it has not answered within "
            f"{timeout:.0f} s (a run reads requests between batches): "
            f"steplr-tui attach {info.name} shows when it applies",
            file=out,
        )
        return 1
    _say(f"steplr-tui: {info.name}: {describe_decision(decision)}", file=out)
    return 0 if decision.decision in ("queued", "applied") else 1


def print_runs(runs_dir: Path, out: TextIO) -> int:
    """`--list-runs`: one line per recorded run, newest first; running ones with their
    process and whether it lives."""
    runs = list_runs(runs_dir)
    if not runs:
        print(f"no runs in {runs_dir}", file=out)
        return 0
    header = (*SUMMARY_COLUMNS[:2], "process", *SUMMARY_COLUMNS[2:])
    rows = [header]
    for run, depth in nest_branches(runs):
        name, *rest = summary_row(run)
        rows.append((nested_name(name, depth), rest[0], process_text(run), *rest[1:]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
    for run in runs:
        for damage in run.damage:
            _say(f"  {run.name}: {damage}", out)
    live = sum(1 for r in runs if r.status is Status.RUNNING)
    _say(f"({plural(len(runs), 'run')} in {runs_dir}, {live} running)", out)
    return 0
