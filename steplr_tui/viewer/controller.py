"""The run controller: which run the dashboard shows, and the channel to it.

It owns the source (a run in this app's thread worker, or a run folder), starts
runs here or detached, attaches to folders, sends requests, stops, and lets go
when the app quits. The app and the screen ask it; nothing else reaches into a
worker or a watcher.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.message import Message

from steplr_tui.runfolder import Request, sender_name
from steplr_tui.runfolder.job import Job
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.requests import Inbox
from steplr_tui.viewer.sources import FolderSource, Source, SourceEvents, ThreadSource
from steplr_tui.viewer.starter import StartError, TrainFn, no_trainer

DetachFn = Callable[[TrainConfig, Path, "Path | None"], Path]


class RunController:
    """Starts, attaches to, steers and leaves the run on screen."""

    def __init__(
        self,
        post: Callable[[Message], Any],
        run_worker: Callable[..., Any],
        train_fn: TrainFn = no_trainer,
        detach: DetachFn | None = None,
    ) -> None:
        self.post = post
        self.run_worker = run_worker
        self.train_fn = train_fn
        self.detach = detach  # the command line's: a run in a process of its own
        self.source: Source | None = None
        self.sender = sender_name("viewer")
        self._ids = 0

    @property
    def source_id(self) -> int:
        return self.source.id if self.source is not None else 0

    @property
    def attached(self) -> bool:
        """The run on screen lives in another process (or has ended there)."""
        return isinstance(self.source, FolderSource)

    @property
    def busy(self) -> bool:
        """A run of this process is still stopping."""
        return isinstance(self.source, ThreadSource) and not self.source.finished

    @property
    def training_done(self) -> threading.Event:
        if isinstance(self.source, ThreadSource):
            return self.source.done
        done = threading.Event()
        done.set()
        return done

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _replace(self, source: Source) -> None:
        if isinstance(self.source, FolderSource):
            self.source.close()
        self.source = source
        source.start()

    def start_here(self, job: Job) -> None:
        """Train `job` in this app's thread worker (ctrl+r; a resume from the runs table)."""
        job = Job(
            job.config,
            job.runs_dir,
            job.resume,
            job.folder,
            job.control_offset,
            inbox=Inbox(),
        )
        self._replace(
            ThreadSource(
                self._next_id(), job, self.train_fn, self.post, self.run_worker, history=job.resume
            )
        )

    def attach(self, path: Path, wait_s: float = 0.0) -> SourceEvents | None:
        """Show the run in `path`: replayed, then followed live. With `wait_s`, its history
        is read ahead and returned if it is read within `wait_s`, for the caller to show
        before its first frame; else (and without) it comes as a message."""
        source = FolderSource(self._next_id(), path, self.post, self.run_worker)
        replay = source.read_ahead(wait_s) if wait_s else None
        self._replace(source)
        return replay

    def start_detached(
        self, config: TrainConfig, runs_dir: Path, resume: Path | None = None
    ) -> Path:
        """Start a run in a background process of its own, and attach to it (ctrl+n)."""
        if self.detach is None:
            raise StartError("this viewer has no run side: start runs with steplr-tui")
        path = self.detach(config, runs_dir, resume)
        self.attach(path)
        return path

    def send(self, request: Request) -> None:
        if self.source is not None:
            self.source.send(request)

    def stop(self) -> None:
        """ctrl+s: the run stops before its next batch, wherever it runs."""
        if self.source is not None:
            self.source.stop(self.sender)

    def leave(self, reason: str = "stopped: the app quit") -> None:
        """The app quits: a run in this process stops; a run elsewhere goes on."""
        if self.source is not None:
            self.source.close(reason)
