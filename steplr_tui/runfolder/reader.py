"""Reading run folders back: parameters, metrics and status, for any viewer or command.

No torch and no Textual: the runs table, `--list-runs`, `attach`, `stop`, `edit`
and `--resume` lookups all read records through this. A RUNNING status whose
process is gone reads as INTERRUPTED everywhere.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steplr_tui.runfolder import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    STATUS_FILE,
    Status,
)
from steplr_tui.runfolder.paths import resolve_runs_dir
from steplr_tui.runfolder.schedule import ScheduleEdit

__all__ = ["resolve_runs_dir"]  # re-exported: callers look runs up here


class RunNotFound(LookupError):
    """A RUN given to a command that names no run folder; the message says how to find one."""


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Every readable epoch line; a torn or garbled line (a kill mid-write) is skipped.

    Only a regular file is read (never a device or a pipe put in its place)."""
    file = path / METRICS_FILE
    try:
        if not file.is_file():
            return []
        text = file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    metrics = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and isinstance(item.get("epoch"), int):
            metrics.append(item)
    return metrics


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


def read_status(path: Path) -> tuple[Status, str, dict[str, Any]]:
    """(status, reason, status.json) with liveness applied: RUNNING with a dead pid on
    this host, or no readable status at all, reads INTERRUPTED."""
    try:
        data = json.loads((path / STATUS_FILE).read_text(encoding="utf-8"))
        status = Status(str(data["status"]))
    except (OSError, ValueError, KeyError, TypeError):
        return Status.INTERRUPTED, "the run ended without a final status", {}
    if status is Status.RUNNING and not process_alive(data.get("pid"), data.get("host")):
        return (
            Status.INTERRUPTED,
            f"its process (pid {data.get('pid')}) ended without a final status "
            "(killed, out of memory, or a crash)",
            data,
        )
    return status, str(data.get("reason", "")), data


def process_alive(pid: Any, host: Any) -> bool:
    """Whether a run's process lives; a run on another host is believed alive."""
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


def read_run(path: Path) -> RunInfo:
    """Read a run folder; raise RunNotFound if it is not one."""
    try:
        raw = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        config = raw.pop("config")
        if not isinstance(config, dict):
            raise ValueError("config is not an object")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RunNotFound(
            f"{path} is not a steplr-tui run folder (no readable {CONFIG_FILE})"
        ) from exc
    status, reason, extra = read_status(path)
    return RunInfo(path, config, raw, read_metrics(path), status, reason, extra)


def list_runs(runs_dir: Path) -> list[RunInfo]:
    """Every run folder in `runs_dir`, newest first; unreadable folders are left out."""
    if not runs_dir.is_dir():
        return []
    runs = []
    for child in runs_dir.iterdir():
        if child.is_dir() and (child / CONFIG_FILE).is_file():
            try:
                runs.append(read_run(child))
            except RunNotFound:
                continue
    runs.sort(key=lambda r: r.name, reverse=True)
    return runs


def find_run(spec: str, runs_dir: Path) -> Path:
    """RUN as a folder path, or as a run's name (or unique name prefix) in `runs_dir`."""
    as_path = Path(spec).expanduser()
    if (as_path / CONFIG_FILE).is_file():
        return as_path
    if runs_dir.is_dir() and "/" not in spec and spec not in ("", ".", ".."):
        exact = runs_dir / spec
        if (exact / CONFIG_FILE).is_file():
            return exact
        matches = sorted(p for p in runs_dir.iterdir() if p.name.startswith(spec) and p.is_dir())
        if len(matches) == 1:
            return matches[0]
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
