"""The run folder's files: their names, the one-write append, the tail that waits for a
torn last line, and the atomic replace.

Every writer appends a line with a single `write` on an `O_APPEND` descriptor, so
lines from concurrent writers never interleave, and every reader treats a last
line without its newline as still being written; a writer that finds a torn last
line (a kill or a full disk mid-write) starts its own line on a fresh one.

Every file of a run folder is opened through `open_file`: never through a link
(`O_NOFOLLOW`), only a regular file with one name, and only a file owned by the
folder's owner (the run's user), so a folder another user can write cannot turn
a command against a file elsewhere. Plain Python.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
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


class UnsafeFile(OSError):
    """A run-folder file steplr-tui refuses to use (a link, not a regular file, or owned
    by another user than the folder's); the message names it and why."""


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def folder_owner(folder: Path) -> int | None:
    """The uid that owns a run folder: the run's user (None where it cannot be told)."""
    try:
        return os.stat(folder).st_uid
    except (OSError, AttributeError):
        return None


def open_file(path: Path, flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
    """Open a file of a run folder: never through a link, only a regular file with one
    name, owned by the folder's owner. A file this (root) process creates in another
    user's folder is given to that user. Raises FileNotFoundError, UnsafeFile (with
    what to do), or another OSError."""
    base = flags | _NOFOLLOW | _CLOEXEC
    creating = bool(flags & os.O_CREAT)
    if creating and not path.exists():
        _may_create(path)
    try:
        if creating and not flags & os.O_EXCL:
            try:
                fd, created = os.open(path, base | os.O_EXCL, mode), True
            except FileExistsError:
                fd, created = os.open(path, base & ~os.O_CREAT, mode), False
        else:
            # Never block on a FIFO put in a file's place: it is refused below.
            fd, created = os.open(path, base | (0 if creating else os.O_NONBLOCK), mode), creating
            if not creating:
                _blocking(fd)
    except OSError as exc:
        raise _unsafe_link(path, exc) from None
    try:
        _check_opened(path, fd, created, writing=bool(flags & (os.O_WRONLY | os.O_RDWR)))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _may_create(path: Path) -> None:
    """Only the run's user (or root, on their behalf) adds a file to a run folder: a file
    of another user in it would be refused by the run."""
    owner = folder_owner(path.parent)
    euid = os.geteuid() if hasattr(os, "geteuid") else None
    if owner is None or euid is None or euid in (0, owner):
        return
    raise UnsafeFile(
        f"{path.parent} belongs to uid {owner}: only that user (or root) can write into "
        f"this run folder, and {path.name} would be yours (uid {euid})"
    )


def _unsafe_link(path: Path, exc: OSError) -> OSError:
    """ELOOP from O_NOFOLLOW: the name is a symbolic link."""
    import errno

    if exc.errno == errno.ELOOP:
        return UnsafeFile(
            f"{path} is a symbolic link: steplr-tui never follows links in a run folder "
            "(someone who can write the folder may have put it there); remove it",
        )
    return exc


def _blocking(fd: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        os.set_blocking(fd, True)


def _check_opened(path: Path, fd: int, created: bool, writing: bool) -> None:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFile(f"{path} is not a regular file: remove it from the run folder")
    if writing and info.st_nlink > 1:
        # Writing would change the file under its other names too (a planted link, or a
        # folder copied with `cp -al`).
        raise UnsafeFile(
            f"{path} has {info.st_nlink} names (a hard link to a file elsewhere): "
            "steplr-tui does not write to it; copy the run folder with `cp -a`, or "
            "remove the link"
        )
    owner = folder_owner(path.parent)
    if owner is None or info.st_uid == owner:
        return
    euid = os.geteuid() if hasattr(os, "geteuid") else None
    if created and info.st_uid == euid == 0:
        os.fchown(fd, owner, -1)  # root answering another user's run: the file is theirs
        return
    raise UnsafeFile(
        f"{path} is owned by uid {info.st_uid}, but the run folder by uid {owner}: another "
        "user has written into this run folder, so steplr-tui refuses to use it; "
        "check who did, and remove the file"
    )


def read_file(path: Path, limit: int | None = None) -> bytes:
    """A run-folder file's bytes (at most `limit`), opened as `open_file` does."""
    fd = open_file(path)
    with os.fdopen(fd, "rb") as fh:
        return fh.read(limit if limit is not None else -1)


def read_json(path: Path) -> object:
    """A run-folder JSON file, opened as `open_file` does (ValueError if not JSON)."""
    return json.loads(read_file(path).decode("utf-8"))


def ends_torn(fd: int) -> bool:
    """Whether the file's last line lacks its newline (a write cut by a kill or a full disk)."""
    size = os.fstat(fd).st_size
    try:
        return size > 0 and os.pread(fd, 1, size - 1) != b"\n"
    except OSError:  # not readable: nothing to tell
        return False


def _flock(fd: int) -> None:
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)  # released when the descriptor closes
    except (ImportError, OSError):
        pass


def append_line(path: Path, data: bytes) -> None:
    """Append one line with a single write on an O_APPEND descriptor, so lines from
    concurrent writers never interleave; after a torn last line, on a fresh line."""
    fd = open_file(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    try:
        # Writers of one file take turns for the check and the write: another's append
        # in flight must not read as a torn line.
        _flock(fd)
        if ends_torn(fd):
            data = b"\n" + data
        written = os.write(fd, data)
        if written != len(data):  # a full disk mid-line: the reader waits for a newline
            raise OSError(
                28,
                f"No space left on device (only {written} of {len(data)} bytes written to {path})",
            )
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
        self.problem: str | None = None  # why the file is refused (a link, another owner)

    def read(self) -> list[bytes]:
        try:
            with os.fdopen(open_file(self.path), "rb") as fh:
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
        except UnsafeFile as exc:
            self.problem = str(exc)
            return []
        self.problem = None
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

    def skip_line(self, budget: int = 256 * 1024 * 1024) -> bool:
        """Move past the rest of the line the tail is in, without keeping it: scans up to
        `budget` bytes in large blocks (a 50 MB line takes milliseconds). True when its
        newline was found (the next read starts on the following line)."""
        self._partial = b""
        try:
            with os.fdopen(open_file(self.path), "rb") as fh:
                fh.seek(self.offset)
                scanned = 0
                while scanned < budget:
                    block = fh.read(1 << 20)
                    if not block:
                        return False
                    cut = block.find(b"\n")
                    if cut >= 0:
                        self.offset += cut + 1
                        return True
                    self.offset += len(block)
                    scanned += len(block)
        except OSError:
            return False
        return False


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
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a kill's leftover, or a link someone put there: never written through
    try:
        with os.fdopen(open_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "wb") as fh:
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
