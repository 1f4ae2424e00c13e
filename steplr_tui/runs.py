"""Run records: one folder per run, written so that a crash or a kill loses nothing done.

A run folder holds
- `config.json`: every parameter, dataset, device, seed and the versions used;
- `metrics.jsonl`: one JSON object per completed epoch, appended, flushed and
  fsynced as the epoch ends, so `kill -9` leaves every finished epoch on disk;
- `status.json`: RUNNING (with the pid) while the run goes, then COMPLETED,
  STOPPED or FAILED with the reason. A RUNNING run whose process is gone, or a
  folder without a status, reads back as INTERRUPTED;
- `checkpoint.pt`: written by the trainer (see `checkpoint.py`).

No torch here: the runs table and `--resume` lookups read records without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steplr_tui.paths import resolve_runs_dir
from steplr_tui.run_view import format_duration
from steplr_tui.schedule import ScheduleEdit, format_lr

__all__ = ["resolve_runs_dir"]  # re-exported: callers look runs up here

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
STATUS_FILE = "status.json"
CHECKPOINT_FILE = "checkpoint.pt"

RUNNING, COMPLETED, STOPPED, FAILED, INTERRUPTED = (
    "RUNNING",
    "COMPLETED",
    "STOPPED",
    "FAILED",
    "INTERRUPTED",
)
# Dataset names as RunStarted reports them, to the --dataset value that loads them again.
DATASET_CHOICE = {
    "MNIST": "mnist",
    "Fashion-MNIST": "fashion-mnist",
    "KMNIST": "kmnist",
    "MNIST sample": "sample",
}
STATUS_OF_END = {"completed": COMPLETED, "stopped": STOPPED, "failed": FAILED}


class RunNotFound(LookupError):
    """A RUN given to --resume (or export) that names no run folder."""


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, fsync, then rename over `path`.

    Readers see the old file or the new one, never a mix; a kill leaves at most the
    temporary file, which the next write replaces.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # The rename itself must reach the disk too; not every platform can open a folder.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


class RunRecord:
    """Writes one run's folder as the run goes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def name(self) -> str:
        return self.path.name

    @classmethod
    def create(cls, runs_dir: Path, config: dict[str, Any], meta: dict[str, Any]) -> RunRecord:
        """A new folder named by time and parameters, with config.json and a RUNNING status."""
        runs_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = (
            f"{stamp}-{config['optimizer']}-lr{config['lr']:g}"
            f"-s{config['step_size']}-g{config['gamma']:g}"
        )
        for suffix in range(1000):
            path = runs_dir / (base if suffix == 0 else f"{base}-{suffix}")
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - a thousand runs in one second
            raise OSError(f"cannot create a run folder in {runs_dir}")
        record = cls(path)
        write_atomic(path / CONFIG_FILE, _json_bytes({"config": config, **meta}))
        record.mark_running()
        return record

    def mark_running(self) -> None:
        # A kill during an atomic write leaves its temporary file; it holds nothing
        # the real file lacks, so clear it when the run is (re)opened.
        for stray in self.path.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                stray.unlink()
        status = {"status": RUNNING, "pid": os.getpid(), "host": socket.gethostname()}
        status["started"] = time.time()
        write_atomic(self.path / STATUS_FILE, _json_bytes(status))

    def note_started(self, event: Any) -> None:
        """Add what loading found (device in words, dataset used, sizes) to config.json."""
        path = self.path / CONFIG_FILE
        data = json.loads(path.read_text(encoding="utf-8"))
        data["device_used"] = event.device
        data["dataset_used"] = DATASET_CHOICE.get(event.dataset)
        data["dataset_name"] = event.dataset
        data["data_dir_used"] = event.data_dir
        data["n_train"], data["n_test"] = event.n_train, event.n_test
        write_atomic(path, _json_bytes(data))

    def append_epoch(self, metrics: dict[str, Any]) -> None:
        line = json.dumps(metrics, sort_keys=True) + "\n"
        with open(self.path / METRICS_FILE, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def truncate_metrics(self, epochs: int) -> None:
        """Keep only epochs 1..`epochs` (a resume recomputes what came after its checkpoint)."""
        kept = [m for m in read_metrics(self.path) if m.get("epoch", 0) <= epochs]
        data = "".join(json.dumps(m, sort_keys=True) + "\n" for m in kept).encode()
        write_atomic(self.path / METRICS_FILE, data)

    def finish(self, status: str, reason: str = "") -> None:
        payload = {"status": status, "reason": reason, "finished": time.time()}
        write_atomic(self.path / STATUS_FILE, _json_bytes(payload))


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Every readable epoch line; a torn or garbled line (a kill mid-write) is skipped."""
    try:
        text = (path / METRICS_FILE).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
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


@dataclass
class RunInfo:
    """A run folder as read back: parameters, metrics and status."""

    path: Path
    config: dict[str, Any]
    meta: dict[str, Any]
    metrics: list[dict[str, Any]]
    status: str
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def epochs_done(self) -> int:
        return max((m["epoch"] for m in self.metrics), default=0)

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


SUMMARY_COLUMNS = (
    "run",
    "status",
    "parameters",
    "epochs",
    "best acc",
    "last acc",
    "last loss",
    "time",
)
SORT_KEYS = ("newest", "best acc", "last acc", "last loss", "time")


_STAMP = re.compile(r"\d{8}-\d{6}")


def short_name(name: str) -> str:
    """A run's time stamp alone, where the parameters are shown beside it; the
    stamp is a prefix that --resume and export accept."""
    match = _STAMP.match(name)
    return match.group(0) if match else name


def describe_params(config: dict[str, Any]) -> str:
    """A run named by what distinguishes it: 'adam lr 1e-03 s2 g0.1 b64'."""
    try:
        return (
            f"{config['optimizer']} lr {format_lr(float(config['lr']))} "
            f"s{config['step_size']} g{float(config['gamma']):g} b{config['batch_size']}"
        )
    except (KeyError, TypeError, ValueError):
        return "unknown parameters"


def _series(run: RunInfo, key: str) -> list[float]:
    return [m[key] for m in run.metrics if isinstance(m.get(key), (int, float))]


def run_seconds(run: RunInfo) -> float:
    """Training time summed over recorded epochs (a resumed run's sessions add up)."""
    return float(sum(_series(run, "seconds")))


def summary_row(run: RunInfo) -> tuple[str, ...]:
    """One run as a row of text: the runs screen and --list-runs both show this."""
    accs, losses = _series(run, "test_acc"), _series(run, "train_loss")
    edited = " (edited)" if run.edits else ""
    return (
        run.name,
        run.status,
        describe_params(run.config) + edited,
        f"{run.epochs_done}/{run.config.get('epochs', '?')}",
        f"{max(accs):.2f}%" if accs else "-",
        f"{accs[-1]:.2f}%" if accs else "-",
        f"{losses[-1]:.4f}" if losses else "-",
        format_duration(run_seconds(run)),
    )


def sort_runs(runs: list[RunInfo], key: str) -> list[RunInfo]:
    """Runs ordered by one of SORT_KEYS: best first; runs without the figure go last."""
    if key == "newest":
        return sorted(runs, key=lambda r: r.name, reverse=True)
    missing = float("inf")

    def value(run: RunInfo) -> float:
        if key == "time":
            return run_seconds(run)
        series = _series(run, "train_loss" if key == "last loss" else "test_acc")
        if not series:
            return missing
        if key == "last loss":
            return series[-1]
        # Higher accuracy first: negate, so one ascending sort serves every key.
        return -(max(series) if key == "best acc" else series[-1])

    return sorted(runs, key=value)


def recorded_edit(metrics: dict[str, Any]) -> ScheduleEdit | None:
    """The live edit one metrics line records, if any (malformed values are dropped)."""
    raw = metrics.get("edit")
    return (ScheduleEdit.from_dict(raw) or None) if isinstance(raw, dict) else None


def read_run(path: Path) -> RunInfo:
    """Read a run folder; raise RunNotFound if it is not one."""
    try:
        raw = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        config = raw.pop("config")
        if not isinstance(config, dict):
            raise ValueError("config is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunNotFound(
            f"{path} is not a steplr-tui run folder (no readable {CONFIG_FILE})"
        ) from exc
    status, reason, extra = _read_status(path)
    return RunInfo(path, config, raw, read_metrics(path), status, reason, extra)


def _read_status(path: Path) -> tuple[str, str, dict[str, Any]]:
    try:
        data = json.loads((path / STATUS_FILE).read_text(encoding="utf-8"))
        status = str(data["status"])
    except (OSError, ValueError, KeyError, TypeError):
        return INTERRUPTED, "the run ended without a final status", {}
    if status == RUNNING and not _alive(data.get("pid"), data.get("host")):
        return INTERRUPTED, "the process ended without a final status (killed or crashed)", data
    return status, str(data.get("reason", "")), data


def _alive(pid: Any, host: Any) -> bool:
    if host != socket.gethostname():
        return True  # another machine's run: no way to tell, so believe it
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
