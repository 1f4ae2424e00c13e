"""A run's history read back from its folder, fast: every event of `events.jsonl`, with the
batch losses the run already folded (`summary.json`) taken from its summary.

Viewers replay a run with this before they follow it, and a resumed run rebuilds
its own loss fold with it. A 10,000-epoch run writes about 55 MB of events, nine
tenths of it batch losses: the progress lines that the summary covers are skipped
without being decoded, so reading the history costs little more than reading its
epochs. Plain Python.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from steplr_tui.runfolder.codec import FormatError
from steplr_tui.runfolder.events import (
    BatchProgress,
    EpochEnd,
    Event,
    Notice,
    RunEnded,
    RunOpened,
    decode_event,
)
from steplr_tui.runfolder.files import EVENTS_FILE, LineTail, read_file
from steplr_tui.runfolder.reader import read_metrics, read_run, read_status, recorded_edit
from steplr_tui.runfolder.status import Status
from steplr_tui.runfolder.summary import Summary, read_summary

# How every progress line this package writes begins (codec.dumps, type first).
_PROGRESS = b'{"type":"progress"'

Item = Event | Summary


@dataclass
class History:
    """`items`: the events in order, with the summary in place of the progress lines it
    covers; `tail` continues after the last complete line; `bad` unreadable lines."""

    items: list[Item]
    tail: LineTail
    bad: int = 0

    @property
    def events(self) -> list[Event]:
        return [e for e in self.items if not isinstance(e, Summary)]


def decode_lines(lines: list[bytes]) -> tuple[list[Event], int]:
    """Events from complete lines of events.jsonl, and how many lines were unreadable."""
    events: list[Event] = []
    bad = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            decoded = decode_event(json.loads(line))
        except (ValueError, FormatError):
            bad += 1
            continue
        if decoded is not None:
            events.append(decoded[1])
    return events, bad


def read_history(folder: Path, use_summary: bool = True, fill: bool = True) -> History:
    """Everything `events.jsonl` holds now (a folder without one: its metrics).

    With `fill`, epochs that metrics.jsonl records beyond the last in events.jsonl (a
    cut or restored events.jsonl) are added from metrics.jsonl, with a notice that
    says what was missing and why."""
    path = folder / EVENTS_FILE
    try:
        data = read_file(path)
    except OSError:
        data = b""
    end = data.rfind(b"\n") + 1  # a torn last line waits for the tail
    tail = LineTail(path, end)
    summary = read_summary(folder) if use_summary else None
    cut = summary.offset if summary is not None and _fits(summary, data, end) else 0
    items: list[Item] = []
    bad = 0
    if cut:
        before = [line for line in data[:cut].split(b"\n") if not line.startswith(_PROGRESS)]
        events, bad = decode_lines(before)
        # A progress line another writer spelled otherwise is still the summary's.
        items += [e for e in events if not isinstance(e, BatchProgress)]
        items.append(summary)  # type: ignore[arg-type]
    events, more = decode_lines(data[cut:end].split(b"\n"))
    items += events
    if not items:
        items = history_from_metrics(folder)
    elif fill:
        items += _beyond_events(folder, items)
    return History(items, tail, bad + more)


def _beyond_events(folder: Path, items: list[Item]) -> list[Item]:
    """The epochs metrics.jsonl records past events.jsonl's last, and a notice saying so.

    None while the run is alive: its writer puts an epoch in metrics.jsonl first, then
    its line in events.jsonl, so a viewer reading between the two saw the epoch in
    metrics.jsonl alone, added it, and then had it again from events.jsonl."""
    if any(isinstance(e, RunEnded) for e in items[-3:]):
        # The run ended after its last event: its lines are all there, so metrics past
        # them are not this record's (nothing to add, and metrics.jsonl is not read).
        return []
    if read_status(folder)[0] is Status.RUNNING:
        return []
    last = max((e.epoch for e in items if isinstance(e, EpochEnd)), default=0)
    later = [m for m in read_metrics(folder) if m["epoch"] > last]
    if not later:
        return []
    top = max(m["epoch"] for m in later)
    added: list[Item] = [
        e for e in history_from_metrics(folder) if isinstance(e, EpochEnd) and e.epoch > last
    ]
    added.append(
        Notice(
            f"events.jsonl ends at epoch {last}, but metrics.jsonl records epochs up to {top}: "
            "events.jsonl was cut (truncated, or restored from an older copy); epochs "
            f"{last + 1}-{top} are shown from metrics.jsonl, without their batches",
            level="warning",
            persistent=True,
        )
    )
    return added


def _fits(summary: Summary, data: bytes, end: int) -> bool:
    """The summary stands for this very file: the line ending at its offset is its seq."""
    offset = summary.offset
    if not 0 < offset <= end or data[offset - 1 : offset] != b"\n":
        return False
    start = data.rfind(b"\n", 0, offset - 1) + 1
    try:
        seq = json.loads(data[start : offset - 1]).get("seq")
    except (ValueError, AttributeError):
        return False
    return seq == summary.seq


def history_from_metrics(path: Path) -> list[Item]:
    """A folder written before events.jsonl existed: its epochs and final status."""
    try:
        info = read_run(path)
    except LookupError:
        return []
    events: list[Item] = [RunOpened(str(path), info.config, kind=info.kind)]  # type: ignore[arg-type]
    for m in info.metrics:
        try:
            events.append(
                EpochEnd(
                    epoch=int(m["epoch"]),
                    lr=float(m.get("lr", 0.0)),
                    train_loss=float(m.get("train_loss", float("nan"))),
                    test_acc=float(m.get("test_acc", float("nan"))),
                    seconds=float(m.get("seconds", 0.0)),
                    elapsed=0.0,
                    edit=recorded_edit(m),
                )
            )
        except (TypeError, ValueError):
            continue
    if info.status.final:
        events.append(RunEnded(info.status, info.reason, info.epochs_done, 0.0))
    return events
