"""Headless mode: the same trainer, no UI, the reference script's output on stdout.

stdout carries only the per-epoch lines, so it can be diffed against the classic
script or piped; everything else (device, notices, failures) goes to stderr.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import TextIO

from steplr_tui.config import TrainConfig
from steplr_tui.events import EpochEnd, Event, Notice, RunEnded, RunStarted, epoch_report

# SIGHUP is how a dropped SSH session arrives; treat it like a polite stop.
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def run_headless(config: TrainConfig, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Train to the end; exit status 0 completed, 1 failed, 128+signal when stopped by one."""
    out = out or sys.stdout
    err = err or sys.stderr
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum, _frame) -> None:
        received.append(signum)
        stop.set()

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
        elif isinstance(event, RunEnded) and event.status != "completed":
            print(f"steplr-tui: run {event.status}: {event.message}", file=err, flush=True)

    from steplr_tui.trainer import train  # torch is imported here, not at startup

    try:
        end = train(config, stop.is_set, emit)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if end.status == "completed":
        return 0
    if end.status == "stopped" and received:
        return 128 + received[0]
    return 1
