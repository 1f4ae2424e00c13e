"""The record writer: the run's side of its folder, written so a crash or a kill loses
nothing done.

One writer per run (the run's process; under DDP, rank 0). It writes
- `config.json`: every parameter, the versions used, and what loading found;
- `events.jsonl`: every event, one line each, appended with a single write per
  line as the event happens (at least every progress interval), fsynced at each
  epoch's end and at the end of the run;
- `metrics.jsonl`: one line per completed epoch, fsynced as the epoch ends
  (the record of truth for epochs);
- `status.json`: RUNNING with the pid, host and where control.jsonl is read from,
  then the final status with its reason.

The writer holds the folder's lock (`lock()`, runfolder/lock.py) from before it
marks the run RUNNING until `close()`. When the disk fills (any write of the
record fails), the run ends FAILED with the reason at once, written over the
padded status.json in place (which needs no free space); later events are
dropped, and the final status keeps that first reason. A line appended after a
torn last line (a kill or a full disk mid-write) starts on a fresh line.

No torch and no Textual here: the launcher of a detached run creates the folder
with this before any torch import.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from steplr_tui.runfolder import (
    CONFIG_FILE,
    CONTROL_FILE,
    DATASET_CHOICE,
    EVENTS_FILE,
    FORMAT_VERSION,
    METRICS_FILE,
    STATUS_FILE,
    BatchProgress,
    EpochEnd,
    Event,
    RunEnded,
    RunStarted,
    Status,
    as_float32,
    encode_event,
    file_size,
)
from steplr_tui.runfolder.files import (
    SUMMARY_FILE,
    UnsafeFile,
    ends_torn,
    json_bytes,
    open_file,
    read_json,
    write_atomic,
)
from steplr_tui.runfolder.history import read_history
from steplr_tui.runfolder.lock import RunLock
from steplr_tui.runfolder.losses import LossFold
from steplr_tui.runfolder.reader import short_name
from steplr_tui.runfolder.summary import SUMMARY_INTERVAL_S, Summary, encode_summary

# status.json is padded to this size, so the final status can be written over it in
# place when the disk is too full for a new file.
STATUS_BYTES = 1024


class RecordError(OSError):
    """The record cannot be written; the message names the folder and what to do."""


def _status_bytes(status: dict[str, Any]) -> bytes:
    text = json.dumps(status, sort_keys=True)
    if len(text) > STATUS_BYTES - 1:  # an enormous reason: keep the file's size fixed
        status = {**status, "reason": str(status.get("reason", ""))[: STATUS_BYTES // 2] + "…"}
        text = json.dumps(status, sort_keys=True)
    return (text.ljust(STATUS_BYTES - 1) + "\n").encode()


def write_status(folder: Path, status: dict[str, Any]) -> None:
    """status.json, atomically; on a disk too full for that, over the old file in place."""
    data = _status_bytes(status)
    path = folder / STATUS_FILE
    try:
        write_atomic(path, data)
    except OSError:
        # Overwriting blocks the file already has needs no free space.
        fd = open_file(path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, 0)
            os.fsync(fd)
        finally:
            os.close(fd)


def folder_name(config: dict[str, Any], stamp: str | None = None) -> str:
    """A folder named by time and parameters: 20261128-210947-adam-lr0.001-s2-g0.1."""
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    try:
        return (
            f"{stamp}-{config['optimizer']}-lr{float(config['lr']):g}"
            f"-s{config['step_size']}-g{float(config['gamma']):g}"
        )
    except (KeyError, TypeError, ValueError):
        return f"{stamp}-run"


def unique_stamp(runs_dir: Path, stamp: str) -> str:
    """`stamp`, or `stamp.2`, `stamp.3`...: the first that no run in `runs_dir` has, so runs
    started in the same second (a sweep's parallel trials) have distinct short names."""
    try:
        taken = {short_name(e.name) for e in os.scandir(runs_dir) if e.name.startswith(stamp)}
    except OSError:
        return stamp
    unique, n = stamp, 2
    while unique in taken:
        unique, n = f"{stamp}.{n}", n + 1
    return unique


@contextlib.contextmanager
def _creating(runs_dir: Path):
    """The runs folder locked while a run's name is chosen and made: processes that start
    runs in the same second (parallel trials) take their stamps in turn."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: names stay distinct by their suffix
        yield
        return
    try:
        fd = os.open(runs_dir, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


class RunRecord:
    """Writes one run's folder as the run goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seq = _last_seq(path / EVENTS_FILE)
        self._events_fd: int | None = None
        self._fold: LossFold | None = None  # the losses written, as viewers fold them
        self._summary_at = time.monotonic()  # the first summary comes an interval in
        self._lock: RunLock | None = None
        self.failed: str | None = None  # the first write that failed (a full disk): why

    @property
    def name(self) -> str:
        return self.path.name

    def lock(self) -> RunLock | None:
        """Take the folder's lock (one trainer per folder) for as long as this record is
        open; raises FolderLocked naming the live writer. Under a torchrun agent that
        holds it for this job, rank 0 takes nothing."""
        if self._lock is None:
            self._lock = RunLock.acquire(self.path)
            self._seq = _last_seq(self.path / EVENTS_FILE)  # now that no one else writes
        return self._lock

    @classmethod
    def create(
        cls, runs_dir: Path, config: dict[str, Any], meta: dict[str, Any], name: str = ""
    ) -> RunRecord:
        """A new folder with config.json and an empty events.jsonl (no status yet: the
        process that runs marks itself RUNNING). `name` replaces the parameters in the
        folder's name (after its time stamp)."""
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
            with _creating(runs_dir):
                stamp = unique_stamp(runs_dir, time.strftime("%Y%m%d-%H%M%S"))
                base = folder_name(config, stamp) if not name else f"{stamp}-{name}"
                for suffix in range(1000):
                    path = runs_dir / (base if suffix == 0 else f"{base}-{suffix}")
                    try:
                        path.mkdir()
                        break
                    except FileExistsError:
                        continue
                else:  # pragma: no cover - a thousand runs in one second
                    raise OSError(f"cannot create a run folder in {runs_dir}")
            payload = {"config": config, "format": FORMAT_VERSION, **meta}
            write_atomic(path / CONFIG_FILE, json_bytes(payload))
            (path / EVENTS_FILE).touch()
        except OSError as exc:
            raise RecordError(
                f"cannot create a run folder in {runs_dir} ({exc.strerror or exc}): "
                "choose another --runs-dir (or runs_dir=), or set STEPLR_TUI_RUNS"
            ) from exc
        return cls(path)

    def mark_running(
        self, pid: int | None = None, control_offset: int | None = None, **extra: Any
    ) -> None:
        """status.json says RUNNING, with the process to check, and where in
        control.jsonl this session starts reading (requests before it are history)."""
        # A kill during an atomic write leaves its temporary file; it holds nothing
        # the real file lacks, so clear it when the run is (re)opened.
        for stray in self.path.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                stray.unlink()
        status = {
            "status": Status.RUNNING.value,
            "pid": os.getpid() if pid is None else pid,
            "host": socket.gethostname(),
            "started": time.time(),
            "control_offset": file_size(self.path / CONTROL_FILE)
            if control_offset is None
            else control_offset,
            **extra,
        }
        self._guard(write_status, self.path, status)

    def update_config(self, **values: Any) -> None:
        """Add what the run learns (versions, device and dataset used) to config.json."""
        path = self.path / CONFIG_FILE

        def update() -> None:
            data = read_json(path)
            if not isinstance(data, dict):
                raise OSError(f"{path} is damaged (not a JSON object)")
            data.update(values)
            write_atomic(path, json_bytes(data))

        self._guard(update)

    def write(self, event: Event) -> None:
        """Record one event: its line in events.jsonl, and what it means for the other files.

        A write that fails (a full disk) ends the run FAILED with the reason at once and
        raises RecordError; after that, events are dropped, and the final event only
        writes the final status (with the first failure's reason) without raising."""
        if self.failed is not None:
            if isinstance(event, RunEnded):
                self._fail(self.failed)
            return
        try:
            self._write(event)
        except RecordError as exc:
            self.failed = str(exc)
            self._fail(self.failed)
            if not isinstance(event, RunEnded):
                raise

    def _fail(self, reason: str) -> None:
        """status.json says FAILED with `reason`, in place if need be; a folder that
        cannot take even that is left as it is (readers then see INTERRUPTED)."""
        with contextlib.suppress(OSError):
            self.finish(Status.FAILED, reason)

    def _write(self, event: Event) -> None:
        if isinstance(event, EpochEnd):
            # metrics.jsonl first: it is the record of truth, and a checkpoint is saved
            # only after it.
            self._guard(self.append_epoch, epoch_line(event))
        elif isinstance(event, RunStarted):
            self.update_config(
                device_used=event.device,
                dataset_used=DATASET_CHOICE.get(event.dataset),
                dataset_name=event.dataset,
                data_dir_used=event.data_dir,
                n_train=event.n_train,
                n_test=event.n_test,
            )
        if self._fold is None:
            self._fold = _fold_of(self.path)  # before this session's first line
        self._seq += 1
        line = (encode_event(event, self._seq, time.time()) + "\n").encode()
        self._guard(self._append_event, line, isinstance(event, (EpochEnd, RunEnded)))
        if isinstance(event, BatchProgress):
            # What the line holds (float32), which is what every viewer folds.
            event = replace(event, losses=as_float32(event.losses))
        self._fold.apply(event)
        ended = isinstance(event, RunEnded)
        if self._fold.settled and (
            ended or time.monotonic() - self._summary_at >= SUMMARY_INTERVAL_S
        ):
            self._write_summary()
        if ended:
            self.finish(event.status, event.message)

    def _write_summary(self) -> None:
        """summary.json: the fold of every loss written so far, and where it stands.
        A cache: it is not fsynced, and a failure to write it is no failure of the run."""
        self._summary_at = time.monotonic()
        assert self._fold is not None and self._events_fd is not None
        offset = os.fstat(self._events_fd).st_size
        data = encode_summary(Summary(offset, self._seq, self._fold))
        with contextlib.suppress(OSError):
            write_atomic(self.path / SUMMARY_FILE, data, sync=False)

    def _append_event(self, line: bytes, sync: bool) -> None:
        if self._events_fd is None:
            self._events_fd = open_file(
                self.path / EVENTS_FILE, os.O_RDWR | os.O_APPEND | os.O_CREAT
            )
            if ends_torn(self._events_fd):
                line = b"\n" + line  # after a torn line (a kill mid-write): a fresh one
        written = os.write(self._events_fd, line)
        if written != len(line):
            raise OSError(
                28, f"No space left on device (only {written} of {len(line)} bytes written)"
            )
        if sync:
            os.fsync(self._events_fd)

    def append_epoch(self, metrics: dict[str, Any]) -> None:
        line = (json.dumps(metrics, sort_keys=True) + "\n").encode()
        fd = open_file(self.path / METRICS_FILE, os.O_RDWR | os.O_APPEND | os.O_CREAT)
        try:
            if ends_torn(fd):
                line = b"\n" + line  # never onto a torn line: that would lose this epoch too
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(
                    28, f"No space left on device (only {written} of {len(line)} bytes written)"
                )
            os.fsync(fd)
        finally:
            os.close(fd)

    def truncate_metrics(self, epochs: int) -> list[int]:
        """Keep only epochs 1..`epochs` (a resume recomputes what came after its checkpoint).
        An epoch among them whose line is missing (torn by a kill or a full disk) is
        restored from its event in events.jsonl; returns the epochs restored."""
        from steplr_tui.runfolder.reader import read_metrics

        kept = {m["epoch"]: m for m in read_metrics(self.path) if m["epoch"] <= epochs}
        missing = {e for e in range(1, epochs + 1) if e not in kept}
        restored: list[int] = []
        if missing:
            found: dict[int, dict[str, Any]] = {}
            for item in read_history(self.path, fill=False).events:
                if isinstance(item, EpochEnd) and item.epoch in missing:
                    found[item.epoch] = epoch_line(item)  # the last session's is the kept one
            kept.update(found)
            restored = sorted(found)
        lines = (json.dumps(kept[e], sort_keys=True) + "\n" for e in sorted(kept))
        self._guard(write_atomic, self.path / METRICS_FILE, "".join(lines).encode())
        return restored

    def finish(self, status: Status, reason: str = "") -> None:
        payload = {"status": status.value, "reason": reason, "finished": time.time()}
        self._guard(write_status, self.path, payload)

    def close(self) -> None:
        """Close the events file and let go of the folder's lock."""
        if self._events_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._events_fd)
            self._events_fd = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _guard(self, fn, *args) -> None:
        try:
            fn(*args)
        except RecordError:
            raise
        except UnsafeFile as exc:
            raise RecordError(f"cannot write the run record: {exc}") from None
        except OSError as exc:
            # No chained traceback: the message says all a user needs.
            raise RecordError(
                f"cannot write the run record in {self.path} ({exc.strerror or exc}); "
                "free some disk space or choose another --runs-dir"
            ) from None


def epoch_line(event: EpochEnd) -> dict[str, Any]:
    """An epoch's line in metrics.jsonl."""
    line: dict[str, Any] = {
        "epoch": event.epoch,
        "lr": event.lr,
        "train_loss": event.train_loss,
        "seconds": event.seconds,
    }
    if event.test_acc == event.test_acc:  # not NaN: a script may give no accuracy
        line["test_acc"] = event.test_acc
    line.update(event.metrics)
    if event.edit:
        # In the epoch's own line, so the edit and its epoch reach the disk together.
        line["edit"] = event.edit.as_dict()
    return line


def _fold_of(folder: Path) -> LossFold:
    """The losses already in a folder's events.jsonl (a resumed run's earlier sessions),
    folded as a viewer replaying the file folds them."""
    fold = LossFold()
    if file_size(folder / EVENTS_FILE) == 0:
        return fold
    for item in read_history(folder, fill=False).items:
        if isinstance(item, Summary):
            fold = item.losses
        else:
            fold.apply(item)
    return fold


def _last_seq(path: Path) -> int:
    """The sequence number of the last complete event (a resumed run continues from it)."""
    try:
        with os.fdopen(open_file(path), "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            fh.seek(max(size - 65536, 0))
            tail = fh.read()
    except OSError:
        return 0
    for line in reversed(tail.split(b"\n")):
        try:
            seq = json.loads(line).get("seq")
        except (ValueError, AttributeError):
            continue
        if isinstance(seq, int):
            return seq
    return 0


def torn_notice(skipped: int, restored: list[int], missing: list[int]) -> str:
    """What a resume found wrong in metrics.jsonl (a line torn by a kill or a full disk),
    and what it did about it."""

    def epochs(numbers: list[int]) -> str:
        shown = ", ".join(map(str, numbers[:10])) + ("…" if len(numbers) > 10 else "")
        return f"epoch{'s' if len(numbers) != 1 else ''} {shown}"

    parts = []
    if skipped:
        parts.append(
            f"{skipped} unreadable line{'s' if skipped != 1 else ''} of metrics.jsonl skipped "
            "(a write cut by a kill or a full disk)"
        )
    if restored:
        parts.append(f"{epochs(restored)} restored from events.jsonl")
    if missing:
        parts.append(f"{epochs(missing)} missing from the record (in no file)")
    return "; ".join(parts)
