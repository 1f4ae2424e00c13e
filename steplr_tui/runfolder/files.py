"""The run folder's files: their names, the one-write append, the tail that waits for a
torn last line, and the atomic replace.

Every writer appends a line with a single `write` on an `O_APPEND` descriptor, so
lines from concurrent writers never interleave, and every reader treats a last
line without its newline as still being written. Plain Python.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
EVENTS_FILE = "events.jsonl"
CONTROL_FILE = "control.jsonl"
STATUS_FILE = "status.json"
CHECKPOINT_FILE = "checkpoint.pt"
OUTPUT_FILE = "output.log"  # stdout and stderr of a detached run
SUMMARY_FILE = "summary.json"  # the run's fold of its batch losses (summary.py)

# A request line longer than this is refused unread: requests are a few dozen bytes.
MAX_REQUEST_BYTES = 4096
# The most of control.jsonl one poll reads, so a flood of garbage cannot stall a run.
MAX_POLL_BYTES = 64 * 1024
LIVE_FIELDS = ("lr", "step_size", "gamma")  # the dashboard's live fields
# What an edit request may change (milestones: a MultiStepLR's; warmup: a SequentialLR's).
EDIT_FIELDS = (*LIVE_FIELDS, "milestones", "warmup")
# Dataset names as RunStarted reports them, to the --dataset value that loads them again.
DATASET_CHOICE = {
    "MNIST": "mnist",
    "Fashion-MNIST": "fashion-mnist",
    "KMNIST": "kmnist",
    "MNIST sample": "sample",
}


def append_line(path: Path, data: bytes) -> None:
    """Append one line with a single write on an O_APPEND descriptor, so lines from
    concurrent writers never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        if written != len(data):  # a full disk mid-line: the reader waits for a newline
            raise OSError(f"only {written} of {len(data)} bytes were written to {path}")
    finally:
        os.close(fd)


class LineTail:
    """Reads the complete lines added to a file since the last call.

    A torn last line (a writer mid-write, a kill) is kept back until its newline
    arrives; it is never an error. A file that shrank was rewritten: reading starts
    over from its beginning. `limit` bounds the bytes read per call.
    """

    def __init__(self, path: Path, offset: int = 0, limit: int | None = None) -> None:
        self.path = path
        self.offset = offset  # bytes consumed: the start of the next line
        self.limit = limit
        self.line_number = 0  # complete lines consumed (counted from `offset`)
        self._partial = b""

    def read(self) -> list[bytes]:
        try:
            with open(self.path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < self.offset:
                    self.offset, self._partial, self.line_number = 0, b"", 0
                start = self.offset + len(self._partial)
                if size <= start:
                    return []
                fh.seek(start)
                data = fh.read(self.limit if self.limit is not None else -1)
        except FileNotFoundError:
            return []
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        self.offset += len(data) - len(self._partial)
        self.line_number += len(lines)
        return lines

    @property
    def pending_bytes(self) -> int:
        """Bytes of a line not yet complete."""
        return len(self._partial)

    def drop_partial(self) -> None:
        """Skip the incomplete line held back (an oversized line is never waited for)."""
        self.offset += len(self._partial)
        self._partial = b""


def file_size(path: Path) -> int:
    with contextlib.suppress(OSError):
        return path.stat().st_size
    return 0


def write_atomic(path: Path, data: bytes, sync: bool = True) -> None:
    """Write via a temporary file in the same folder, fsync, then rename over `path`.

    Readers see the old file or the new one, never a mix; a kill leaves at most the
    temporary file, which the next write replaces. `sync=False` skips the fsyncs, for
    a file that is only a cache (a crash may then leave the old one).
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if sync:
        _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # The rename itself must reach the disk too; not every platform can open a folder.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
