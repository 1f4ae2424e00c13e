"""Headless mode: the same trainer, no UI, the reference script's output on stdout.

stdout carries only the per-epoch lines, in the seed script's exact format
(`LR: 0.000000` for a tiny lr included), so it can be diffed against the classic
script or piped; everything else (device, notices, failures) goes to stderr. A
closed stdout (`| head -5`) ends the run as STOPPED, 'output closed', the way
Unix tools end. Under torchrun, rank 0 prints and every rank trains.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import TextIO

from steplr_tui.run.jobs import Job
from steplr_tui.runfolder import (
    Decision,
    EpochEnd,
    Event,
    Notice,
    RunEnded,
    RunOpened,
    RunStarted,
    Status,
    epoch_report,
)
from steplr_tui.runfolder.text import describe_decision, plural

# SIGHUP is how a dropped SSH session arrives; treat it like a polite stop.
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
OUTPUT_CLOSED = "output closed"


def run_headless(
    job: Job,
    out: TextIO | None = None,
    err: TextIO | None = None,
    *,
    dist: object = None,
    device: str | None = None,
) -> int:
    """Train to the end; exit status 0 completed, 1 failed, 128+signal when stopped by one
    (141, as SIGPIPE, when stdout was closed)."""
    out = out or sys.stdout
    err = err or sys.stderr
    stop = threading.Event()
    received: list[int] = []
    closed: list[str] = []

    def on_signal(signum, _frame) -> None:
        received.append(signum)
        stop.set()

    def should_stop() -> bool | str:
        if closed:
            return OUTPUT_CLOSED
        return f"stopped by {signal.Signals(received[0]).name}" if stop.is_set() else False

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in _STOP_SIGNALS:
            previous[sig] = signal.signal(sig, on_signal)

    def say(text: str, stream: TextIO) -> None:
        if closed and stream is out:
            return
        try:
            print(text, file=stream, flush=True)
        except BrokenPipeError:
            if stream is out:
                closed.append(OUTPUT_CLOSED)
                _silence(out)
        except (OSError, ValueError):
            pass  # stderr gone too: nothing more to say

    def emit(event: Event) -> None:
        if isinstance(event, EpochEnd):
            say("\n".join(epoch_report(event)), out)
        elif isinstance(event, RunStarted):
            world = f", {event.world_size} ranks ({event.backend})" if event.world_size > 1 else ""
            say(
                f"steplr-tui: training {event.model or 'the model'} on {event.device}{world}, "
                f"{event.dataset} ({event.n_train:,} train / {event.n_test:,} test) "
                f"from {event.data_dir}",
                err,
            )
        elif isinstance(event, Notice):
            say(f"steplr-tui: {event.level}: {event.text}", err)
        elif isinstance(event, RunOpened) and event.path:
            say(f"steplr-tui: run record: {event.path}", err)
        elif isinstance(event, Decision):
            say(f"steplr-tui: {describe_decision(event)}", err)
        elif isinstance(event, RunEnded) and event.status is not Status.COMPLETED:
            if event.message != OUTPUT_CLOSED:
                say(f"steplr-tui: run {event.status.value.lower()}: {event.message}", err)
        elif isinstance(event, RunEnded):
            say(
                f"steplr-tui: completed {plural(event.epochs_done, 'epoch')} "
                f"in {event.elapsed:.2f}s",
                err,
            )

    from steplr_tui.run.jobs import run_job  # torch is imported under this, not at startup

    try:
        end = run_job(job, emit, should_stop, dist=dist, device=device)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if end.status is Status.COMPLETED:
        return 0
    if end.status is Status.STOPPED and end.message == OUTPUT_CLOSED:
        return 128 + signal.SIGPIPE
    if end.status is Status.STOPPED and received:
        return 128 + received[0]
    return 0 if end.status in (Status.STOPPED, Status.PRUNED) else 1


def _silence(stream: TextIO) -> None:
    """Point a closed stdout at /dev/null, so the interpreter's last flush is quiet."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
