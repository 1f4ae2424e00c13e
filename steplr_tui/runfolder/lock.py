"""One trainer per run folder: the folder's lock, and whether a run is alive.

A process that writes a run's record (the built-in trainer, a detached run, a
sweep's trial, a `track()` script, rank 0 of a DDP job; later a branch) holds an
exclusive `flock` on the folder's `run.lock` for its whole life. The kernel lets
go of it when the process ends however it ends (a kill -9 included), so "is the
run alive" is asked of the lock, never of a pid (pid namespaces and containers
reuse pids). A writer that finds the lock held refuses, naming who holds it.

The launcher of a detached run takes the lock before it starts the run's process
and hands its descriptor down (`STEPLR_TUI_LOCK_FD`), so the folder is never
unlocked between the launch and the run. Plain Python (Unix `fcntl`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time
from pathlib import Path

from steplr_tui.runfolder.files import open_file

LOCK_FILE = "run.lock"
LOCK_ENV = "STEPLR_TUI_LOCK_FD"  # a descriptor of run.lock a launcher holds locked for us
# A reader's probe holds the lock for microseconds; a writer retries this long before
# it believes another writer holds it.
ACQUIRE_WAIT_S = 1.0

try:
    import fcntl
except ImportError:  # pragma: no cover - not Unix: no locks, liveness unknown
    fcntl = None  # type: ignore[assignment]


# flock errors of a filesystem that has no locks (some FUSE and network mounts).
_UNSUPPORTED = {
    getattr(errno, name)
    for name in ("ENOLCK", "EOPNOTSUPP", "ENOTSUP", "ENOSYS", "EINVAL")
    if hasattr(errno, name)
}


class FolderLocked(OSError):
    """Another live process writes this run folder; the message says which and what to do."""


class RunLock:
    """The exclusive lock on one run folder, held until `release` (or the process ends)."""

    def __init__(self, folder: Path, fd: int | None) -> None:
        self.folder = folder
        self.fd = fd

    @classmethod
    def acquire(cls, folder: Path, wait: float = ACQUIRE_WAIT_S) -> RunLock:
        """Take the folder's lock, or raise FolderLocked naming its holder. A descriptor
        handed down by this run's launcher (STEPLR_TUI_LOCK_FD) is adopted."""
        if fcntl is None:  # pragma: no cover
            return cls(folder, None)
        inherited = _inherited(folder)
        if inherited is not None:
            _note(inherited)
            return cls(folder, inherited)
        if held_by_parent(folder):  # rank 0 under the torchrun agent that holds it
            return cls(folder, None)
        fd = open_file(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno in _UNSUPPORTED:
                    # A filesystem without locks: no lock to hold; readers, finding it
                    # unsupported too, fall back to the pid in status.json.
                    os.close(fd)
                    return cls(folder, None)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    holder = _holder(fd)
                    os.close(fd)
                    raise FolderLocked(
                        f"run {folder.name} is being written by another live process"
                        f"{holder}: one trainer per run folder. Watch it with "
                        f"`steplr-tui attach {folder.name}`, or stop it with "
                        f"`steplr-tui stop {folder.name}` first"
                    ) from None
                time.sleep(0.02)
        _note(fd)
        return cls(folder, fd)

    def inheritable(self) -> dict[str, str]:
        """Hand the lock to a child process: its environment entry (the descriptor is
        made inheritable; pass it in `pass_fds`)."""
        if self.fd is None:
            return {}
        os.set_inheritable(self.fd, True)
        return {LOCK_ENV: str(self.fd)}

    def handed_to(self, pid: int) -> None:
        """Name the process the lock was handed down to (a launched run) as its holder."""
        if self.fd is not None:
            _note(self.fd, pid)

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)  # closing the last descriptor lets go of the flock
            self.fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def _note(fd: int, pid: int | None = None) -> None:
    """Who holds the lock, for messages (the lock itself is the flock, not this text)."""
    note = f"{os.getpid() if pid is None else pid} {socket.gethostname()}\n".encode()
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, note, 0)


def _inherited(folder: Path) -> int | None:
    """The locked descriptor this run's launcher handed down for this very folder."""
    value = os.environ.get(LOCK_ENV, "")
    if not value.isdigit():
        return None
    fd = int(value)
    try:
        mine = os.fstat(fd)
        there = os.stat(folder / LOCK_FILE, follow_symlinks=False)
    except OSError:
        return None
    if (mine.st_dev, mine.st_ino) != (there.st_dev, there.st_ino):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the same open file: already ours
    except OSError:
        return None
    os.environ.pop(LOCK_ENV, None)  # our own children hold nothing
    os.set_inheritable(fd, False)
    return fd


def held_by_parent(folder: Path) -> bool:
    """Whether our parent process holds the folder's locked descriptor that a launcher
    handed down (a torchrun agent, whose ranks are not given the descriptor itself)."""
    value = os.environ.get(LOCK_ENV, "")
    if not value.isdigit() or lock_state(folder) is not True:
        return False
    try:
        theirs = os.stat(f"/proc/{os.getppid()}/fd/{value}")
        there = os.stat(folder / LOCK_FILE, follow_symlinks=False)
    except OSError:
        return False
    return (theirs.st_dev, theirs.st_ino) == (there.st_dev, there.st_ino)


def lock_state(folder: Path) -> bool | None:
    """True when a live process holds the folder's lock, False when none does, None when
    the folder has no lock file (written before locks, or not a run at all)."""
    if fcntl is None:  # pragma: no cover
        return None
    try:
        fd = open_file(folder / LOCK_FILE)
    except FileNotFoundError:
        return None
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:
            return None  # no locks on this filesystem: liveness is the pid's
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
    finally:
        os.close(fd)  # our probe's shared lock goes with it
    return False


def lock_holder(folder: Path) -> str:
    """What the lock file says of its holder ('pid 123 on box'), for messages."""
    try:
        fd = open_file(folder / LOCK_FILE)
    except OSError:
        return ""
    try:
        return _holder(fd).strip(" ()")
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
    except OSError:
        return ""
    if len(text) >= 2 and text[0].isdigit():
        return f" (pid {text[0]} on {''.join(c for c in text[1] if c.isprintable())[:64]})"
    return ""
