"""The control reader: requests from viewers and the shell, decided by the run.

Requests arrive as lines of `control.jsonl` (appended by any number of viewers
and `steplr-tui stop/edit`) and, for a run in the dashboard's own process, through
an in-memory `Inbox` of the very same lines. `Steering` reads them at safe
points (before batches, at most every `POLL_INTERVAL_S`), and records every
decision as an event: an edit is `queued` as soon as it is read and `applied` at
the next epoch boundary; a stop takes effect before the next batch; a withdraw
takes queued values back; anything malformed, unknown, oversized or against the
fields' rules is `refused`, with the reason. Each request is decided once, in
order. Nothing here can stop or slow the run: a poll reads at most
`MAX_POLL_BYTES` of the file.

Plain Python, no torch and no Textual.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from steplr_tui.runfolder import (
    CONTROL_FILE,
    MAX_POLL_BYTES,
    MAX_REQUEST_BYTES,
    Decision,
    EditRequest,
    Event,
    LineTail,
    Notice,
    Request,
    RequestError,
    StopRequest,
    WithdrawRequest,
    decode_request,
)
from steplr_tui.runfolder.files import open_file
from steplr_tui.runfolder.params import SPECS, FieldError, check_milestones
from steplr_tui.runfolder.requests import Inbox
from steplr_tui.runfolder.schedule import ScheduleEdit

# How often the run looks at control.jsonl while it trains (a stat and, rarely, a read).
POLL_INTERVAL_S = 0.05


class ControlReader:
    """New request lines, in arrival order: the inbox's, then control.jsonl's from `offset`.

    Yields (line number in control.jsonl, or 0 for the inbox; the raw line, or None
    for a line over MAX_REQUEST_BYTES, which is skipped unread).
    """

    def __init__(self, folder: Path | None, offset: int = 0, inbox: Inbox | None = None) -> None:
        self.inbox = inbox
        self.tail = LineTail(folder / CONTROL_FILE, offset, MAX_POLL_BYTES) if folder else None
        if self.tail is not None and offset:
            self.tail.line_number = _count_lines(self.tail.path, offset)
        self._skipping = False  # inside an oversized line, until its newline

    def read(self) -> list[tuple[int, bytes | None]]:
        out: list[tuple[int, bytes | None]] = []
        if self.inbox:
            out += [(0, line) for line in self.inbox.drain()]
        tail = self.tail
        if tail is None:
            return out
        if self._skipping:  # still inside an oversized line already refused
            if not tail.skip_line():
                return out
            self._skipping = False
        first = tail.line_number + 1
        for n, line in enumerate(tail.read(), start=first):
            if not line.strip():
                continue
            out.append((n, line if len(line) <= MAX_REQUEST_BYTES else None))
        if tail.pending_bytes > MAX_REQUEST_BYTES:
            # Never wait for, or hold, an oversized line: refuse it now, and jump to its
            # end in large blocks (however long it is, the requests after it are read
            # at this same poll).
            tail.drop_partial()
            tail.line_number += 1
            out.append((tail.line_number, None))
            if tail.skip_line():
                after = tail.line_number + 1
                for n, line in enumerate(tail.read(), start=after):
                    if line.strip():
                        out.append((n, line if len(line) <= MAX_REQUEST_BYTES else None))
            else:
                self._skipping = True
        return out


def _count_lines(path: Path, offset: int) -> int:
    try:
        with os.fdopen(open_file(path), "rb") as fh:
            return fh.read(offset).count(b"\n")
    except OSError:
        return 0


Emit = Callable[[Event], None]


class Steering:
    """Decides a run's requests; the run asks it at safe points.

    `check()` before batches (a stop), `boundary(epoch)` after each epoch's
    `scheduler.step()` (the edits), `end()` when the run ends (what never applied
    is withdrawn). `epoch` is the epoch in progress and `epochs` the run's last
    (None when a script did not say): an edit read during the last epoch has no
    boundary left and is refused at once.
    """

    def __init__(
        self,
        reader: ControlReader,
        emit: Emit,
        *,
        epoch: int = 1,
        epochs: int | None = None,
        poll_interval: float = POLL_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reader = reader
        self.emit = emit
        self.epoch = epoch
        self.epochs = epochs
        self.poll_interval = poll_interval
        self.clock = clock
        self.stop_reason: str | None = None
        self._queued: list[tuple[EditRequest, int]] = []  # (request, line), in order
        self._applied: list[Decision] = []  # decided at a boundary, recorded after its epoch
        self._decided: set[str] = set()
        self._next_poll = 0.0
        self._ended: str | None = None
        self._problem: str | None = None  # why control.jsonl is refused, once said
        # The run's own check of an edit against its scheduler (which fields it has, a
        # warmup that has not ended): a reason to refuse, or None. Set by the tracker.
        self.check_edit: Callable[[ScheduleEdit, int], str | None] | None = None
        # Told of each edit queued, with everything queued merged (a plan to preview).
        self.on_queued: Callable[[ScheduleEdit | None], None] | None = None

    @property
    def queued(self) -> ScheduleEdit | None:
        """Every queued edit merged in order: what the next boundary will apply."""
        merged = ScheduleEdit()
        for request, _ in self._queued:
            merged = merged.merged(request.edit)
        return merged or None

    def check(self, force: bool = False) -> str | None:
        """Read new requests if it is time (or an in-process one waits); the stop reason, if any."""
        inbox = self.reader.inbox
        now = self.clock()
        if force or now >= self._next_poll or inbox:
            if now >= self._next_poll or force:
                self._next_poll = now + self.poll_interval
            self.poll()
        return self.stop_reason

    def poll(self) -> None:
        for line_no, raw in self.reader.read():
            self._decide(line_no, raw)
        tail = self.reader.tail
        problem = tail.problem if tail is not None else None
        if problem != self._problem:
            self._problem = problem
            if problem:  # said once, not at every poll
                self.emit(Notice(f"requests are not read: {problem}", "error", persistent=True))

    def _decide(self, line_no: int, raw: bytes | None) -> None:
        if raw is None:
            self._refuse(None, "?", f"the line is over the {MAX_REQUEST_BYTES}-byte limit", line_no)
            return
        try:
            request = decode_request(raw)
        except RequestError as exc:
            self._refuse(exc.request_id, exc.action, str(exc), line_no)
            return
        if request.id in self._decided:
            self._refuse(request.id, _action(request), "this id was already decided", line_no)
            return
        self._decided.add(request.id)
        if self._ended is not None:
            self._refuse(request.id, _action(request), self._ended, line_no, request.sender)
            return
        if isinstance(request, StopRequest):
            reason = request.reason or f"stopped by {request.sender or 'a stop request'}"
            if self.stop_reason is None:
                self.stop_reason = reason
            self.emit(
                Decision(
                    request.id,
                    "stop",
                    "applied",
                    self.epoch,
                    reason=reason,
                    sender=request.sender,
                    line=line_no,
                )
            )
        elif isinstance(request, EditRequest):
            problem = self._edit_problem(request.edit)
            if problem:
                self._refuse(request.id, "edit", problem, line_no, request.sender, request.edit)
                return
            self._queued.append((request, line_no))
            self.emit(
                Decision(
                    request.id,
                    "edit",
                    "queued",
                    self.epoch,
                    edit=request.edit,
                    sender=request.sender,
                    line=line_no,
                )
            )
            if self.on_queued is not None:
                self.on_queued(self.queued)
        else:
            self._withdraw(request, line_no)

    def _edit_problem(self, edit: ScheduleEdit) -> str | None:
        for name, value in edit.as_dict().items():
            try:
                if name == "milestones":
                    check_milestones(tuple(value))
                elif name == "warmup":
                    if value < 1:
                        return f"warmup must be a whole number of epochs from 1 (got {value})"
                else:
                    SPECS[name].check_value(value)
            except (FieldError, ValueError) as exc:
                return str(exc)
        if self.stop_reason is not None:
            return "the run is stopping"
        if self.epochs is not None and self.epoch >= self.epochs:
            return f"the run ends with epoch {self.epochs}: no boundary left to apply it at"
        if self.check_edit is not None:
            return self.check_edit(edit, self.epoch)
        return None

    def _withdraw(self, request: WithdrawRequest, line_no: int) -> None:
        fields = set(request.fields)
        kept: list[tuple[EditRequest, int]] = []
        took: list[str] = []
        for queued, queued_line in self._queued:
            values = queued.edit.as_dict()
            gone = tuple(name for name in values if name in fields)
            if gone:
                took += gone
                self.emit(
                    Decision(
                        queued.id,
                        "edit",
                        "withdrawn",
                        self.epoch,
                        edit=queued.edit,
                        fields=gone,
                        reason=f"withdrawn by {request.sender or 'a withdraw request'}",
                        sender=queued.sender,
                        line=queued_line,
                    )
                )
            rest = {k: v for k, v in values.items() if k not in fields}
            if rest:
                kept.append(
                    (EditRequest(queued.id, ScheduleEdit(**rest), queued.sender), queued_line)
                )
        self._queued = kept
        if took:
            self.emit(
                Decision(
                    request.id,
                    "withdraw",
                    "applied",
                    self.epoch,
                    fields=tuple(dict.fromkeys(took)),
                    sender=request.sender,
                    line=line_no,
                )
            )
        else:
            names = ", ".join(request.fields)
            self._refuse(
                request.id, "withdraw", f"nothing queued for {names}", line_no, request.sender
            )

    def _refuse(
        self,
        request_id: str | None,
        action: str,
        reason: str,
        line_no: int,
        sender: str = "",
        edit: ScheduleEdit | None = None,
    ) -> None:
        self.emit(
            Decision(
                request_id,
                action,
                "refused",
                self.epoch,
                edit=edit,
                reason=reason,
                sender=sender,
                line=line_no,
            )
        )

    def boundary(self, epoch: int) -> ScheduleEdit | None:
        """The edits to apply after `epoch` (its scheduler.step() done), merged in order.
        Their decisions wait for `record_applied`, so the epoch's own line is written
        first. Then the next epoch is in progress."""
        self.poll()
        merged = self.queued
        self._applied += [
            Decision(
                request.id,
                "edit",
                "applied",
                epoch,
                edit=request.edit,
                sender=request.sender,
                line=line_no,
            )
            for request, line_no in self._queued
        ]
        self._queued = []
        self.epoch = epoch + 1
        return merged

    def record_applied(self) -> None:
        """Record the last boundary's edits as applied, after the epoch's line (a log
        then reads: epoch 3, then the edit applied after it)."""
        applied, self._applied = self._applied, []
        for decision in applied:
            self.emit(decision)

    def end(self, why: str) -> None:
        """The run is over: withdraw what never applied, and refuse what comes late."""
        self._ended = "the run had already ended"
        self.poll()
        for request, line_no in self._queued:
            self.emit(
                Decision(
                    request.id,
                    "edit",
                    "withdrawn",
                    self.epoch,
                    edit=request.edit,
                    fields=tuple(request.edit.as_dict()),
                    reason=why,
                    sender=request.sender,
                    line=line_no,
                )
            )
        self._queued = []


def _action(request: Request) -> str:
    if isinstance(request, StopRequest):
        return "stop"
    return "edit" if isinstance(request, EditRequest) else "withdraw"
