"""Headless mode: the same trainer, no UI, the reference script's output on stdout.

stdout carries only the per-epoch lines, so it can be diffed against the classic
script or piped; everything else (device, notices, failures) goes to stderr.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import TextIO

from steplr_tui.events import (
    EpochEnd,
    Event,
    Notice,
    RecordOpened,
    RunEnded,
    RunStarted,
    epoch_report,
)
from steplr_tui.jobs import Job

# SIGHUP is how a dropped SSH session arrives; treat it like a polite stop.
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def run_headless(job: Job, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Train to the end; exit status 0 completed, 1 failed, 128+signal when stopped by one."""
    out = out or sys.stdout
    err = err or sys.stderr
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum, _frame) -> None:
        received.append(signum)
        stop.set()

    def should_stop() -> bool | str:
        return f"stopped by {signal.Signals(received[0]).name}" if stop.is_set() else False

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in _STOP_SIGNALS:
            previous[sig] = signal.signal(sig, on_signal)

    def emit(event: Event) -> None:
        if isinstance(event, EpochEnd):
            print(*epoch_report(event), sep="\n", file=out, flush=True)
        elif isinstance(event, RunStarted):
            print(
                f"steplr-tui: training on {event.device}, {event.dataset} "
                f"({event.n_train:,} train / {event.n_test:,} test) from {event.data_dir}",
                file=err,
                flush=True,
            )
        elif isinstance(event, Notice):
            print(f"steplr-tui: {event.level}: {event.text}", file=err, flush=True)
        elif isinstance(event, RecordOpened):
            print(f"steplr-tui: run record: {event.path}", file=err, flush=True)
        elif isinstance(event, RunEnded) and event.status != "completed":
            print(f"steplr-tui: run {event.status}: {event.message}", file=err, flush=True)
        elif isinstance(event, RunEnded):
            print(
                f"steplr-tui: completed {event.epochs_done} epochs in {event.elapsed:.2f}s",
                file=err,
                flush=True,
            )

    from steplr_tui.jobs import run_job  # torch is imported under this, not at startup

    try:
        end = run_job(job, should_stop, emit)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if end.status == "completed":
        return 0
    if end.status == "stopped" and received:
        return 128 + received[0]
    return 1
