"""Reading run folders back: parameters, metrics and status, for any viewer or command.

No torch and no Textual: the runs table, `--list-runs`, `attach`, `stop`, `edit`
and `--resume` lookups all read records through this. Whether a run lives is asked
of its folder's lock (lock.py), never of a pid: a RUNNING status whose writer let
go of the lock reads as INTERRUPTED everywhere, and a held lock reads RUNNING even
when status.json was emptied. A folder whose config.json is damaged is still read
(with what is known), so a live run in it can be listed, stopped and edited.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steplr_tui.runfolder import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    EVENTS_FILE,
    METRICS_FILE,
    STATUS_FILE,
    Status,
)
from steplr_tui.runfolder.files import UnsafeFile, read_file, read_json
from steplr_tui.runfolder.lock import LOCK_FILE, lock_state
from steplr_tui.runfolder.paths import resolve_runs_dir
from steplr_tui.runfolder.schedule import ScheduleEdit

__all__ = ["resolve_runs_dir"]  # re-exported: callers look runs up here


_STAMP = re.compile(r"\d{8}-\d{6}(?:\.\d+)?")


def short_name(name: str) -> str:
    """A run's time stamp alone, where the parameters are shown beside it: 20261206-101500,
    or 20261206-101500.2 for the second run started in that second. Every command taking
    a RUN accepts it."""
    match = _STAMP.match(name)
    return match.group(0) if match else name


class RunNotFound(LookupError):
    """A RUN given to a command that names no run folder; the message says how to find one."""


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Every readable epoch line; a torn or garbled line (a kill mid-write) is skipped
    (`read_metrics_counted` says how many)."""
    return read_metrics_counted(path)[0]


def read_metrics_counted(path: Path) -> tuple[list[dict[str, Any]], int]:
    """(every readable epoch line, how many non-empty lines could not be read).

    Only a regular file is read (never a device, a pipe or a link put in its place)."""
    try:
        text = read_file(path / METRICS_FILE).decode("utf-8", errors="replace")
    except OSError:
        return [], 0
    metrics = []
    skipped = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if isinstance(item, dict) and isinstance(item.get("epoch"), int):
            metrics.append(item)
        else:
            skipped += 1
    return metrics, skipped


def recorded_edit(metrics: dict[str, Any]) -> ScheduleEdit | None:
    """The live edit one metrics line records, if any (malformed values are dropped)."""
    raw = metrics.get("edit")
    return (ScheduleEdit.from_dict(raw) or None) if isinstance(raw, dict) else None


@dataclass
class RunInfo:
    """A run folder as read back: parameters, metrics and status."""

    path: Path
    config: dict[str, Any]
    meta: dict[str, Any]
    metrics: list[dict[str, Any]]
    status: Status
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # status.json as written
    # What is wrong with the record, for every reader to say: a damaged config.json,
    # unreadable metrics lines (empty when the record is whole).
    damage: list[str] = field(default_factory=list)
    config_damaged: bool = False

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def epochs_done(self) -> int:
        return max((m["epoch"] for m in self.metrics), default=0)

    @property
    def kind(self) -> str:
        """'builtin' for the MNIST trainer, 'script' for a user's script (steplr_tui.track)."""
        return "script" if self.meta.get("kind") == "script" else "builtin"

    @property
    def pid(self) -> int | None:
        pid = self.extra.get("pid")
        return pid if isinstance(pid, int) and not isinstance(pid, bool) else None

    @property
    def host(self) -> str:
        return str(self.extra.get("host", ""))

    def metrics_without_time(self) -> list[dict[str, Any]]:
        """Metrics less wall-clock seconds: what must match between equivalent runs."""
        return [{k: v for k, v in m.items() if k != "seconds"} for m in self.metrics]

    @property
    def edits(self) -> dict[int, ScheduleEdit]:
        """Live schedule edits, by the epoch after which each was applied."""
        return {m["epoch"]: e for m in self.metrics if (e := recorded_edit(m)) is not None}

    @property
    def has_checkpoint(self) -> bool:
        return (self.path / CHECKPOINT_FILE).is_file()


def read_status(path: Path, own_lock: bool = False) -> tuple[Status, str, dict[str, Any]]:
    """(status, reason, status.json) with liveness asked of the folder's lock: RUNNING
    whose writer let go of the lock (or, in a folder from before locks, whose pid is
    gone on this host) reads INTERRUPTED; a held lock reads RUNNING even when
    status.json is unreadable. `own_lock`: the caller (a writer about to take over)
    holds the lock itself, so no one else is alive in the folder."""
    held = False if own_lock else lock_state(path)
    try:
        data = read_json(path / STATUS_FILE)
        if not isinstance(data, dict):
            raise TypeError("status.json is not an object")
        status = Status(str(data["status"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if held:
            return (
                Status.RUNNING,
                f"its status.json cannot be read ({_why(exc)}), but its process holds the "
                "folder's lock",
                {},
            )
        if isinstance(exc, UnsafeFile):
            return Status.INTERRUPTED, f"the run's status cannot be trusted: {exc}", {}
        return Status.INTERRUPTED, "the run ended without a final status", {}
    if status is Status.RUNNING:
        if own_lock:
            alive = False
        elif held is not None:
            alive = held
        else:
            alive = process_alive(data.get("pid"), data.get("host"))
        if not alive:
            return (
                Status.INTERRUPTED,
                f"its process (pid {data.get('pid')}) ended without a final status "
                "(killed, out of memory, or a crash)",
                data,
            )
    return status, str(data.get("reason", "")), data


def _why(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "it is missing"
    if isinstance(exc, OSError):
        return str(exc.strerror or exc)
    return "it is damaged"


def process_alive(pid: Any, host: Any) -> bool:
    """Whether a run's process lives, for a folder written before run locks (no
    run.lock): a run on another host is believed alive."""
    if host not in (None, "") and host != socket.gethostname():
        return True  # another machine's run: no way to tell, so believe it
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is gone for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0:1] != ["Z"]


def resume_hint(name: str, kind: str) -> str:
    """How to continue a run: the built-in trainer's command, or a script's own resume."""
    if kind == "script":
        return "continue it from your script (load its checkpoint, then track(..., resume=RUN))"
    return f"steplr-tui --resume {name} --detach continues it"


def is_run_folder(path: Path) -> bool:
    """A folder a run wrote: its config.json, or (config.json damaged or gone) its
    status, lock or events."""
    return path.is_dir() and any(
        (path / name).is_file() for name in (CONFIG_FILE, STATUS_FILE, LOCK_FILE, EVENTS_FILE)
    )


def read_run(path: Path, own_lock: bool = False) -> RunInfo:
    """Read a run folder; raise RunNotFound if it is not one. A run folder whose
    config.json is damaged reads with an empty config and says so in `damage`.
    `own_lock` as for `read_status`."""
    damage: list[str] = []
    damaged = False
    try:
        raw = read_json(path / CONFIG_FILE)
        if not isinstance(raw, dict):
            raise ValueError("config.json is not an object")
        config = raw.pop("config")
        if not isinstance(config, dict):
            raise ValueError("config is not an object")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        if not is_run_folder(path) or not any(
            (path / name).is_file() for name in (STATUS_FILE, LOCK_FILE, EVENTS_FILE)
        ):
            raise RunNotFound(
                f"{path} is not a steplr-tui run folder (no readable {CONFIG_FILE})"
            ) from exc
        what = "missing" if isinstance(exc, FileNotFoundError) else "damaged"
        damage.append(f"its {CONFIG_FILE} is {what} ({_short(exc)})")
        raw, config, damaged = {}, {}, True
    status, reason, extra = read_status(path, own_lock)
    metrics, skipped = read_metrics_counted(path)
    if skipped:
        damage.append(
            f"{skipped} unreadable line{'s' if skipped != 1 else ''} of {METRICS_FILE} "
            "skipped (a write cut by a kill or a full disk)"
        )
    return RunInfo(path, config, raw, metrics, status, reason, extra, damage, damaged)


def _short(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, UnsafeFile):
        return str(exc.strerror or type(exc).__name__)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]


def list_runs(runs_dir: Path) -> list[RunInfo]:
    """Every run folder in `runs_dir`, newest first; unreadable folders are left out
    (a live run with a damaged config.json is kept, with what is known)."""
    if not runs_dir.is_dir():
        return []
    runs = []
    for child in runs_dir.iterdir():
        if is_run_folder(child):
            try:
                runs.append(read_run(child))
            except RunNotFound:
                continue
    runs.sort(key=lambda r: r.name, reverse=True)
    return runs


def find_run(spec: str, runs_dir: Path) -> Path:
    """RUN as a folder path, or as a run's name (or unique name prefix) in `runs_dir`."""
    as_path = Path(spec).expanduser()
    if is_run_folder(as_path) and ((as_path / CONFIG_FILE).is_file() or "/" in spec):
        return as_path
    if runs_dir.is_dir() and "/" not in spec and spec not in ("", ".", ".."):
        exact = runs_dir / spec
        if is_run_folder(exact):
            return exact
        matches = sorted(p for p in runs_dir.iterdir() if p.name.startswith(spec) and p.is_dir())
        if len(matches) == 1:
            return matches[0]
        # A run's short name names it, though a later run of the same second
        # (20261206-101500.2-...) starts with it too.
        named = [p for p in matches if short_name(p.name) == spec]
        if len(named) == 1:
            return named[0]
        if len(matches) > 1:
            names = ", ".join(p.name for p in matches[:3])
            raise RunNotFound(
                f"'{spec}' matches {len(matches)} runs in {runs_dir} ({names}…): "
                "give more of the name"
            )
    raise RunNotFound(
        f"no run '{spec}': give a run folder, or a run name from {runs_dir} "
        "(steplr-tui --list-runs shows them)"
    )


def newest_running(runs_dir: Path) -> RunInfo | None:
    """The newest run whose process is alive (what `attach` with no RUN picks)."""
    for run in list_runs(runs_dir):
        if run.status is Status.RUNNING:
            return run
    return None


def control_offset(path: Path) -> int:
    """Where a launched run starts reading control.jsonl: the byte offset its launcher put
    in status.json, or 0 when there is none or it is not a count of bytes."""
    _status, _reason, data = read_status(path)
    offset = data.get("control_offset", 0)
    return offset if isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0 else 0
