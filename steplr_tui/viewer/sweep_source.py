"""Where the sweep view's trials come from: a watcher (a thread worker of the sweep
screen, which ends with it) that reads the sweep's study (every trial, from every box
that works on it) and the run folders of its trials on this
box, and posts what it found as one `SweepSnapshot` a second.

The study gives each trial's parameters, state and accuracy after every epoch; a local
run folder adds its training loss per epoch and its status as the folder says it (a
trial stopped for `--resume` is RUNNING in the study, STOPPED in its folder). Folders
are re-read only when their metrics file changed. The screen cannot tell a live sweep
from a finished one, or this source from a test's fixed snapshot.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.message import Message

from steplr_tui.runfolder import METRICS_FILE
from steplr_tui.runfolder.reader import read_metrics, read_status
from steplr_tui.study.engine import TrialRow
from steplr_tui.study.spec import SweepSpec
from steplr_tui.study.table import SweepState, sweep_state

POLL_S = 1.0


@dataclass(frozen=True)
class TrialCurves:
    """A local trial's per-epoch training loss and test accuracy, from its metrics.jsonl."""

    losses: tuple[float, ...] = ()
    accs: tuple[float, ...] = ()


@dataclass(frozen=True)
class SweepSnapshot:
    """Everything the sweep view shows, at one moment."""

    spec: SweepSpec
    folder: Path
    state: SweepState
    rows: list[TrialRow]
    curves: dict[int, TrialCurves] = field(default_factory=dict)  # by trial number
    local: dict[int, str] = field(default_factory=dict)  # a local folder's status
    error: str = ""  # the study could not be read (said, and tried again)


class SweepUpdate(Message):
    def __init__(self, snapshot: SweepSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


class SweepSource:
    """Reads a sweep every POLL_S in a daemon thread; posts SweepUpdate messages."""

    def __init__(self, folder: Path, spec: SweepSpec, post: Callable[[Message], Any]) -> None:
        self.folder, self.spec, self.post = folder, spec, post
        self._closing = threading.Event()
        self._cache: dict[str, tuple[tuple[int, int], TrialCurves]] = {}
        self._study: Any = None
        self.worker: Any = None

    def start(self, run_worker: Callable[..., Any]) -> None:
        """Watch the sweep in a thread worker of the screen that asked (`run_worker` is
        its), which ends with the screen."""
        self.worker = run_worker(
            self._watch, name="sweep-watch", group="watchers", thread=True, exit_on_error=False
        )

    def close(self) -> None:
        self._closing.set()
        if self.worker is not None:
            self.worker.cancel()

    def _watch(self) -> None:
        from textual.worker import get_current_worker

        worker = get_current_worker()
        while not self._closing.is_set() and not worker.is_cancelled:
            self.post(SweepUpdate(self.read()))
            self._closing.wait(POLL_S)

    def read(self) -> SweepSnapshot:
        from steplr_tui.study.engine import load_study, read_trials
        from steplr_tui.study.spec import storage_url

        state = sweep_state(self.folder)
        try:
            if self._study is None:
                self._study, _spec = load_study(self.spec.name, storage_url(self.spec, self.folder))
            rows = read_trials(self._study)
        except Exception as exc:  # StudyError, or a storage that went away: say so, retry
            self._study = None
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return SweepSnapshot(self.spec, self.folder, state, [], error=text[:200])
        curves: dict[int, TrialCurves] = {}
        local: dict[int, str] = {}
        for row in rows:
            if not row.run_folder:
                continue
            path = Path(row.run_folder)
            found = self._curves(path)
            if found is None:
                continue
            curves[row.number] = found
            status, _reason, _ = read_status(path)
            local[row.number] = status.value
        return SweepSnapshot(self.spec, self.folder, state, rows, curves, local)

    def _curves(self, path: Path) -> TrialCurves | None:
        file = path / METRICS_FILE
        try:
            stat = file.stat()
        except OSError:
            return None if not path.is_dir() else TrialCurves()
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(str(path))
        if cached is not None and cached[0] == key:
            return cached[1]
        metrics = sorted(read_metrics(path), key=lambda m: m["epoch"])
        found = TrialCurves(
            tuple(_number(m.get("train_loss")) for m in metrics),
            tuple(_number(m.get(self.spec.objective)) for m in metrics),
        )
        self._cache[str(path)] = (key, found)
        return found


def shown_status(snapshot: SweepSnapshot, row: TrialRow) -> str:
    """A trial's status as the view says it: the local folder's where the study has it
    RUNNING (a stopped trial waiting for --resume), else the study's."""
    from steplr_tui.study.table import status_of

    return status_of(row, snapshot.local.get(row.number))
