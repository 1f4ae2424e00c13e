"""Where a viewer's events come from: a run in this process, or a run folder.

A source delivers the run's events to the screen as `SourceEvents` messages and
carries the viewer's requests (edits, withdraws, a stop) to the run. The panes
fold the same events either way:

- `ThreadSource` trains in a Textual thread worker of this app; events arrive as
  they are emitted, and requests go through the job's in-memory inbox (decided
  by the run exactly as control.jsonl's lines are). Its run writes a folder too,
  so other viewers can attach to it.
- `FolderSource` follows a folder written by another process (a detached run, a
  user's script, rank 0 of a DDP job) or a finished run: a watcher (a thread
  worker of the screen, which ends with it)
  replays events.jsonl, then tails it (toolong-style) every `POLL_S`, waits for
  a torn last line, and checks the run's process: a RUNNING status whose
  process is gone becomes INTERRUPTED within `LIVENESS_S`. Requests are
  appended to control.jsonl.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol

from textual.message import Message

from steplr_tui.runfolder import (
    CONTROL_FILE,
    Event,
    LineTail,
    Notice,
    Request,
    RunEnded,
    RunOpened,
    Status,
    StopRequest,
    append_line,
    encode_request,
    new_request_id,
)
from steplr_tui.runfolder.clean import clean_event
from steplr_tui.runfolder.history import History, decode_lines, read_history
from steplr_tui.runfolder.job import Job
from steplr_tui.runfolder.reader import (
    RunNotFound,
    read_metrics,
    read_run,
    read_status,
    resume_hint,
)
from steplr_tui.viewer.starter import TrainFn

POLL_S = 0.1  # how often a watcher reads new events: the lag a viewer adds
LIVENESS_S = 1.0  # how often it checks that the run's process lives


class SourceEvents(Message):
    """Events from source number `source_id`, in order (a replay brings many at once).

    Live events come through a `Mailbox`: whatever arrived until the screen reads the
    message is in it, so a screen that fell behind catches up in one step."""

    def __init__(
        self,
        source_id: int,
        events: list[Event],
        replay: bool = False,
        mailbox: Mailbox | None = None,
    ) -> None:
        super().__init__()
        self.source_id = source_id
        # Nothing a run folder holds may drive the terminal (an escape sequence in a
        # reason, a folder name, a config value).
        self._events = [clean_event(e) for e in events]
        self.replay = replay
        self.mailbox = mailbox

    @property
    def events(self) -> list[Event]:
        if self.mailbox is not None:
            self._events = self._events + [clean_event(e) for e in self.mailbox.take()]
            self.mailbox = None
        return self._events


class Mailbox:
    """Live events waiting for the screen, with at most one message on its way: a viewer
    that falls behind (a loaded machine) takes everything new at once and draws the newest
    state, instead of working through a queue of messages epochs old."""

    def __init__(self, source_id: int, post: Callable[[Message], Any]) -> None:
        self.source_id = source_id
        self.post = post
        self._events: list[Event] = []
        self._waiting = False
        self._lock = threading.Lock()

    def deliver(self, events: list[Event]) -> None:
        with self._lock:
            self._events.extend(events)
            if self._waiting:
                return  # the message on its way will carry them
            self._waiting = True
        self.post(SourceEvents(self.source_id, [], mailbox=self))

    def take(self) -> list[Event]:
        with self._lock:
            events, self._events = self._events, []
            self._waiting = False
        return events


class Source(Protocol):
    """What the run controller asks of a source, whichever it is."""

    id: int
    attached: bool  # the run lives in another process (or has ended there)
    done: threading.Event  # set once nothing of the run lives in this process

    @property
    def path(self) -> Path | None:
        """The run's folder, where there is one to show."""
        ...

    def start(self) -> None:
        """Begin delivering the run's events (its past first, where it has one)."""

    def send(self, request: Request) -> None:
        """Carry a viewer's request to the run."""

    def stop(self, sender: str) -> None:
        """Ask the run to stop before its next batch."""

    def close(self, reason: str = ...) -> None:
        """The viewer lets go: a run of this process stops, a run elsewhere goes on."""


class ThreadSource:
    """A run trained in this app's own thread worker."""

    attached = False

    def __init__(
        self,
        source_id: int,
        job: Job,
        train_fn: TrainFn,
        post: Callable[[Message], Any],
        run_worker: Callable[..., Any],
        history: Path | None = None,
    ) -> None:
        self.id = source_id
        self.job = job
        self.train_fn = train_fn
        self.post = post
        self.run_worker = run_worker
        self.history = history  # a resumed run's folder: its past is shown first
        self.done = threading.Event()
        self._quit: str | None = None
        self.worker: Any = None

    @property
    def path(self) -> Path | None:
        return self.history

    def start(self) -> None:
        if self.history is not None:
            self.post(SourceEvents(self.id, read_history(self.history).items, replay=True))
        job, train_fn = self.job, self.train_fn
        mailbox = Mailbox(self.id, self.post)

        def emit(event: Event) -> None:
            mailbox.deliver([event])

        def work() -> None:
            from textual.worker import get_current_worker

            worker = get_current_worker()

            def should_stop() -> bool | str:
                # An app that exits cancels its workers: the run must not hold it open.
                return self._quit or ("stopped: the app quit" if worker.is_cancelled else False)

            try:
                train_fn(job, emit, should_stop)
            except Exception as exc:  # a trainer that raised instead of reporting
                text = str(exc).splitlines()[0] if str(exc) else ""
                emit(RunEnded(Status.FAILED, f"{type(exc).__name__}: {text}", 0, 0.0))
            finally:
                self.done.set()

        self.worker = self.run_worker(
            work, name=f"train-{self.id}", group="training", thread=True, exit_on_error=False
        )

    @property
    def finished(self) -> bool:
        return self.done.is_set()

    def send(self, request: Request) -> None:
        if self.job.inbox is not None:
            self.job.inbox.put(request)

    def stop(self, sender: str) -> None:
        self.send(StopRequest(new_request_id(), sender, ""))

    def close(self, reason: str = "stopped: the app quit") -> None:
        """The app quits: the run stops at its next batch (it lives in this process). The
        first reason stays (a SIGHUP's, not the unmount's that follows it)."""
        self._quit = self._quit or reason


class FolderSource:
    """A run folder written by another process, or a finished run, replayed then followed."""

    attached = True

    def __init__(
        self,
        source_id: int,
        path: Path,
        post: Callable[[Message], Any],
        run_worker: Callable[..., Any],
    ) -> None:
        self.id = source_id
        self.path = path
        self.post = post
        self.run_worker = run_worker  # the screen's: its watcher ends when the screen does
        self._closing = threading.Event()
        self.worker: Any = None
        self.done = threading.Event()
        self.done.set()  # nothing of the run lives in this process
        self.finished = True
        self._history: Future[History] | None = None  # read ahead, for a first frame
        self._replay_taken = False

    def read_ahead(self, wait_s: float) -> SourceEvents | None:
        """Read the history in a thread of its own, before `start`, and wait for it up to
        `wait_s`: a viewer that starts on this run draws its first frame with the record
        (one frame, not "loading" and then the run). None: it took longer, and comes as
        a message once read."""
        future: Future[History] = Future()

        def read() -> None:
            try:
                future.set_result(read_history(self.path))
            except BaseException as exc:  # the watcher raises it, as it would have
                future.set_exception(exc)

        threading.Thread(target=read, name=f"history-{self.id}", daemon=True).start()
        self._history = future
        try:
            history = future.result(wait_s)
        except Exception:  # not yet (or it failed: the watcher reports that)
            return None
        self._replay_taken = True
        return self._replay(history)

    def _replay(self, history: History) -> SourceEvents:
        events = history.items
        if history.bad:
            events.append(Notice(f"{history.bad} unreadable line(s) in events.jsonl were skipped"))
        return SourceEvents(self.id, events, replay=True)

    def start(self) -> None:
        """Watch the folder in a thread worker of the screen that asked."""
        self.worker = self.run_worker(
            self._watch, name=f"watch-{self.id}", group="watchers", thread=True, exit_on_error=False
        )

    def _watch(self) -> None:
        from textual.worker import get_current_worker

        worker = get_current_worker()
        history = self._history.result() if self._history else read_history(self.path)
        tail = history.tail
        ended = isinstance(_last_session_end(history.items), RunEnded)
        if not self._replay_taken:
            self.post(self._replay(history))
        self._mailbox = mailbox = Mailbox(self.id, self.post)
        since_check = LIVENESS_S  # check at once: a run may be dead already
        while not self._closing.wait(POLL_S) and not worker.is_cancelled:
            new, bad = decode_lines(tail.read())
            if bad:
                new.append(Notice(f"{bad} unreadable line(s) in events.jsonl were skipped"))
            for event in new:
                if isinstance(event, RunOpened):
                    ended = False
                elif isinstance(event, RunEnded):
                    ended = True
            if new:
                mailbox.deliver(new)
            since_check += POLL_S
            if ended or since_check < LIVENESS_S:
                continue
            since_check = 0.0
            end = self._check_process(tail)
            if end is not None:
                ended = True
                mailbox.deliver([end])

    def _check_process(self, tail: LineTail) -> RunEnded | None:
        """An end the run could not write: its process died, or the disk was full."""
        status, reason, _data = read_status(self.path)
        if not status.final:
            return None
        # Lines may have landed since the last read: deliver them first.
        late, _bad = decode_lines(tail.read())
        if late:
            self._mailbox.deliver(late)
            if any(isinstance(e, RunEnded) for e in late):
                return None
        name = self.path.name
        if status is Status.INTERRUPTED:
            try:
                kind = read_run(self.path).kind
            except RunNotFound:
                kind = "builtin"
            reason = f"{reason}; every completed epoch is kept: {resume_hint(name, kind)}"
        metrics = read_metrics(self.path)
        done = max((m["epoch"] for m in metrics), default=0)
        return RunEnded(status, reason, done, 0.0)

    def send(self, request: Request) -> None:
        try:
            append_line(self.path / CONTROL_FILE, encode_request(request))
        except OSError as exc:  # a refused control.jsonl (a link, another user's), a full disk
            why = exc.strerror or str(exc)
            text = f"the request was not sent: cannot write {CONTROL_FILE} ({why})"
            self.post(SourceEvents(self.id, [Notice(text, "error", persistent=True)]))

    def stop(self, sender: str) -> None:
        self.send(StopRequest(new_request_id(), sender, ""))

    def close(self, reason: str = "") -> None:
        """Stop watching; the run goes on."""
        self._closing.set()
        if self.worker is not None:
            self.worker.cancel()


def _last_session_end(events: list[Event]) -> Event | None:
    for event in reversed(events):
        if isinstance(event, (RunEnded, RunOpened)):
            return event
    return None
