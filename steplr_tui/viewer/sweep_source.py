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

import contextlib
import csv
import io
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from textual.message import Message

from steplr_tui.runfolder import METRICS_FILE
from steplr_tui.runfolder.clean import clean_event, clean_text
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
    taken: float = 0.0  # when it was read (time.time()); 0: unknown
    note: str = ""  # how it was read, where that matters ("from trials.csv, …")


class SweepUpdate(Message):
    def __init__(self, snapshot: SweepSnapshot) -> None:
        super().__init__()
        # Nothing of a study or a trial's folder may drive the terminal.
        self.snapshot = replace(
            snapshot,
            rows=[clean_event(row) for row in snapshot.rows],
            state=clean_event(snapshot.state),
            error=clean_text(snapshot.error),
            local={n: clean_text(v) for n, v in snapshot.local.items()},
        )


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
        from textual.worker import NoActiveWorker, get_current_worker

        try:
            worker = get_current_worker()
        except NoActiveWorker:  # a plain thread (a test's): `close` alone ends it
            worker = None
        # The study takes seconds to open (Optuna and SQLAlchemy load first): the table
        # the sweep's workers last wrote is drawn meanwhile.
        first = self.read_written()
        if first is not None and not self._closing.is_set():
            self.post(SweepUpdate(first))
        while not self._closing.is_set() and not (worker is not None and worker.is_cancelled):
            self.post(SweepUpdate(self.read()))
            self._closing.wait(POLL_S)

    def read(self) -> SweepSnapshot:
        from steplr_tui.study.engine import load_study, read_trials
        from steplr_tui.study.spec import storage_url

        taken = time.time()
        state = sweep_state(self.folder)
        try:
            if self._study is None:
                self._study, _spec = load_study(self.spec.name, storage_url(self.spec, self.folder))
            rows = read_trials(self._study)
        except Exception as exc:  # StudyError, or a storage that went away: say so, retry
            self._study = None
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return SweepSnapshot(self.spec, self.folder, state, [], error=text[:200], taken=taken)
        curves, local = self._locals(rows)
        return SweepSnapshot(self.spec, self.folder, state, rows, curves, local, taken=taken)

    def read_written(self) -> SweepSnapshot | None:
        """The trials as trials.csv has them (written as the sweep ended, or by --show),
        with the local folders' curves: no Optuna, so in a fraction of a second. None
        without a readable trials.csv."""
        from steplr_tui.study.spec import TRIALS_CSV

        taken = time.time()
        try:
            text = (self.folder / TRIALS_CSV).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        rows = []
        for item in csv.DictReader(io.StringIO(text)):
            with contextlib.suppress(KeyError, TypeError, ValueError):
                rows.append(self._written_row(item))
        if not rows:
            return None
        curves, local = self._locals(rows)
        note = "as its trials.csv has them: reading its study…"
        state = sweep_state(self.folder)
        return SweepSnapshot(
            self.spec, self.folder, state, rows, curves, local, taken=taken, note=note
        )

    def _written_row(self, item: dict[str, str]) -> TrialRow:
        def number(key: str) -> float | None:
            value = (item.get(key) or "").strip()
            return float(value) if value else None

        params: dict[str, Any] = {}
        for name in ("lr", "step_size", "gamma"):
            value = number(name)
            if value is not None:
                params[name] = int(value) if name == "step_size" else value
        state = item["state"]
        epochs = int(number("epochs") or 0)
        peak, last = number("peak"), number("last")
        curve: dict[int, float] = {}
        folder = item.get("run") or ""
        metrics = read_metrics(Path(folder)) if folder else []
        for m in metrics:
            value = _number(m.get(self.spec.objective))
            if not math.isnan(value):
                curve[m["epoch"]] = value
        if not curve and epochs and last is not None:  # another box's trial: its figures
            if peak is not None and epochs > 1:
                curve[1] = peak
            curve[epochs] = last
        seconds = number("seconds")
        return TrialRow(
            number=int(item["trial"]),
            state=state,
            params=params,
            curve=curve,
            value=last if state == "COMPLETE" else None,
            status=item.get("status") or "",
            reason=item.get("reason") or "",
            run_folder=folder,
            host=item.get("host") or "",
            started=0.0 if seconds is not None else None,
            finished=seconds,
        )

    def _locals(self, rows: list[TrialRow]) -> tuple[dict[int, TrialCurves], dict[int, str]]:
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
        return curves, local

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
