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
    Status,
    StopRequest,
    append_line,
    decode_event,
    encode_request,
    file_size,
    new_request_id,
    sender_name,
)
from steplr_tui.runfolder.reader import RunInfo, list_runs, read_run, read_status, resume_hint
from steplr_tui.runfolder.runs_table import (
    SUMMARY_COLUMNS,
    nest_branches,
    nested_name,
    process_text,
    summary_row,
)
from steplr_tui.runfolder.schedule import ScheduleEdit
from steplr_tui.runfolder.text import describe_decision

STOP_WAIT_S = 10.0
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
    """The run at `path`, which must be RUNNING with its process alive."""
    info = read_run(path)
    if info.status is Status.RUNNING:
        return info
    if info.status is Status.INTERRUPTED:
        raise CommandError(
            f"run {info.name} is not running: {info.reason}; {resume_hint(info.name, info.kind)}"
        )
    raise CommandError(f"run {info.name} is not running ({info.status.value}): nothing to do")


def wait_decision(
    path: Path, offset: int, request_id: str, timeout: float, clock: Callable[[], float]
) -> Decision | None:
    """The run's first decision on `request_id` (queued, applied or refused), if it comes."""
    tail = LineTail(path / EVENTS_FILE, offset)
    deadline = clock() + timeout
    while True:
        for line in tail.read():
            try:
                decoded = decode_event(json.loads(line))
            except (ValueError, FormatError):
                continue
            if decoded and isinstance(decoded[1], Decision) and decoded[1].request == request_id:
                return decoded[1]
        if clock() >= deadline:
            return None
        status, _, _ = read_status(path)
        if status.final:
            # Its last lines may have landed since this read.
            for line in tail.read():
                try:
                    decoded = decode_event(json.loads(line))
                except (ValueError, FormatError):
                    continue
                if (
                    decoded
                    and isinstance(decoded[1], Decision)
                    and decoded[1].request == request_id
                ):
                    return decoded[1]
            return None
        time.sleep(0.05)


def stop_run(path: Path, out: TextIO, timeout: float = STOP_WAIT_S) -> int:
    """`steplr-tui stop RUN`: ask, then wait for the final status (at most `timeout`)."""
    info = running(path)
    send(path, StopRequest(new_request_id(), sender_name("shell"), ""))
    print(f"steplr-tui: asked {info.name} to stop at its next batch…", file=out, flush=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        after = read_run(path)
        if after.status.final:
            if after.status is Status.STOPPED:
                kept = "its checkpoint is kept: " if after.kind == "builtin" else ""
                print(
                    f"steplr-tui: {info.name} STOPPED after epoch {after.epochs_done}; "
                    f"{kept}{resume_hint(info.name, after.kind)}",
                    file=out,
                )
                return 0
            print(f"steplr-tui: {info.name} ended {after.status.value}: {after.reason}", file=out)
            return 0 if after.status is Status.COMPLETED else 1
        time.sleep(0.05)
    raise CommandError(
        f"{info.name} did not stop within {timeout:.0f} s (it stops before its next batch; "
        f"is pid {info.pid} stuck?): try again, or kill {info.pid}"
    )


def edit_run(path: Path, edit: ScheduleEdit, out: TextIO, timeout: float = DECISION_WAIT_S) -> int:
    """`steplr-tui edit RUN --lr X ...`: queue it, and say where it applies."""
    info = running(path)
    request = EditRequest(new_request_id(), edit, sender_name("shell"))
    offset = send(path, request)
    decision = wait_decision(path, offset, request.id, timeout, time.monotonic)
    if decision is None:
        print(
            f"steplr-tui: sent {edit.describe()} to {info.name}; it has not answered within "
            f"{timeout:.0f} s (a run reads requests between batches): "
            f"steplr-tui attach {info.name} shows when it applies",
            file=out,
        )
        return 1
    print(f"steplr-tui: {info.name}: {describe_decision(decision)}", file=out)
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
    live = sum(1 for r in runs if r.status is Status.RUNNING)
    print(f"({len(runs)} runs in {runs_dir}, {live} running)", file=out)
    return 0
