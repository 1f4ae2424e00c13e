"""A sweep's trials as rows of text, and its state: the sweep view and the shell show these.

Plain Python: no Optuna here (the rows come from `engine.read_trials`), no torch, no
Textual.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steplr_tui.runfolder import Status
from steplr_tui.runfolder.files import write_atomic
from steplr_tui.runfolder.reader import process_alive, read_status
from steplr_tui.runfolder.schedule import format_lr
from steplr_tui.runfolder.text import format_duration
from steplr_tui.study.engine import TrialRow
from steplr_tui.study.spec import SweepSpec

# "last": the last epoch's accuracy, the objective the study maximises (★ marks the
# best of it); "peak": the highest accuracy after any epoch.
COLUMNS = ("", "trial", "status", "lr", "step", "gamma", "epochs", "peak", "last", "time")
SORTS = ("trial", "last", "peak", "status", "time")
BEST_MARK = "★"
WORKERS_DIR = "workers"
# How a trial's state reads: the run's status where the study knows it.
STATES = {"COMPLETE": "COMPLETED", "PRUNED": "PRUNED", "FAIL": "FAILED", "WAITING": "WAITING"}


def status_of(row: TrialRow, local: str | None = None) -> str:
    """The trial as its run's status says it: INTERRUPTED, STOPPED (by hand, or with its
    sweep) and PRUNED included. `local`: the status its folder on this box reads, which
    tells a stopped trial waiting for --resume from a running one."""
    if row.state == "RUNNING":
        if local and local != Status.RUNNING.value:
            return local
        return row.status if row.status and row.status != "RUNNING" else "RUNNING"
    if row.status and row.status != Status.COMPLETED.value:
        return row.status
    return STATES.get(row.state, row.state)


def local_status(row: TrialRow) -> str | None:
    """The status of the trial's run folder, when it is on this box."""
    if not row.run_folder or (row.host and row.host != socket.gethostname()):
        return None
    path = Path(row.run_folder)
    if not path.is_dir():
        return None
    return read_status(path)[0].value


def _pct(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def trial_cells(
    spec: SweepSpec,
    row: TrialRow,
    best: int | None,
    local: str | None = None,
    now: float | None = None,
) -> tuple[str, ...]:
    """One trial as a row of COLUMNS (`local`: its folder's status, see status_of). A
    running trial's time is its time so far, at `now` (a wall-clock time)."""
    params = {**spec.space.fixed, **row.params}
    lr = params.get("lr")
    gamma = params.get("gamma")
    status = status_of(row, local)
    seconds = row.seconds
    if seconds is None and status == "RUNNING" and row.started is not None and now is not None:
        seconds = max(now - row.started, 0.0)
    return (
        BEST_MARK if row.number == best else "",
        str(row.number),
        status,
        format_lr(float(lr)) if isinstance(lr, (int, float)) else "-",
        str(params.get("step_size", "-")),
        f"{float(gamma):.3g}" if isinstance(gamma, (int, float)) else "-",
        f"{row.epochs}/{spec.fixed.get('epochs', '?')}",
        _pct(row.best),
        _pct(row.last),
        format_duration(seconds) if seconds is not None else "",
    )


def best_number(rows: list[TrialRow]) -> int | None:
    done = [r for r in rows if r.state == "COMPLETE" and r.value is not None]
    return max(done, key=lambda r: r.value).number if done else None  # type: ignore[arg-type,return-value]


def sort_rows(rows: list[TrialRow], key: str) -> list[TrialRow]:
    """Rows by one of SORTS: best first; a trial without the figure goes last."""
    if key == "trial":
        return sorted(rows, key=lambda r: r.number)
    if key == "status":
        return sorted(rows, key=lambda r: (status_of(r), r.number))
    if key == "time":
        return sorted(rows, key=lambda r: (r.seconds is None, -(r.seconds or 0.0)))
    figure = (lambda r: r.best) if key == "peak" else (lambda r: r.last)
    return sorted(rows, key=lambda r: (figure(r) is None, -(figure(r) or 0.0), r.number))


@dataclass(frozen=True)
class SweepState:
    """How the sweep stands on this box: its workers, and whether any of them lives."""

    status: Status
    reason: str
    workers: list[dict[str, Any]]

    @property
    def live_pids(self) -> list[int]:
        return [w["pid"] for w in self.workers if w.get("alive")]


def worker_file(folder: Path, pid: int) -> Path:
    return folder / WORKERS_DIR / f"{socket.gethostname()}-{pid}.json"


def sweep_state(folder: Path) -> SweepState:
    """RUNNING while a worker of this box lives; else how the last one ended."""
    workers: list[dict[str, Any]] = []
    for file in sorted((folder / WORKERS_DIR).glob("*.json")):
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        alive = data.get("status") == "RUNNING" and process_alive(data.get("pid"), data.get("host"))
        workers.append({**data, "alive": alive})
    if any(w["alive"] for w in workers):
        return SweepState(Status.RUNNING, "", workers)
    ended = [w for w in workers if w.get("status") not in (None, "RUNNING")]
    if ended:
        last = max(ended, key=lambda w: w.get("finished") or 0.0)
        try:
            return SweepState(Status(last["status"]), str(last.get("reason", "")), workers)
        except ValueError:
            pass
    if workers:
        return SweepState(Status.INTERRUPTED, "its worker died without a final status", workers)
    return SweepState(Status.STOPPED, "no worker has run it on this box", workers)


def mark_worker(
    folder: Path, pid: int, status: Status, reason: str = "", parallel: int = 0
) -> None:
    """This box's worker `pid` in the sweep's folder; `parallel`: its trials at a time."""
    body: dict[str, Any] = {"status": status.value, "reason": reason, "pid": pid}
    body["host"] = socket.gethostname()
    if parallel > 0:
        body["parallel"] = parallel
    body["started" if status is Status.RUNNING else "finished"] = time.time()
    path = worker_file(folder, pid)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, (json.dumps(body) + "\n").encode())


def sweep_parallel(state: SweepState) -> int:
    """The trials at a time of this box's latest worker (what `--parallel` was), else 1."""
    known = [w for w in state.workers if isinstance(w.get("parallel"), int) and w["parallel"] > 0]
    if not known:
        return 1
    latest = max(known, key=lambda w: (w.get("started") or 0.0, w.get("finished") or 0.0))
    return int(latest["parallel"])
