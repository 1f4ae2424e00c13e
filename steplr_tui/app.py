"""The Textual application: a thin shell around the dashboard screen.

Importing this module imports Textual but not torch; torch loads in a background
thread after the first frame, so the dashboard appears at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from steplr_tui.config import TrainConfig
from steplr_tui.screens.dashboard import DashboardScreen, TrainFn, real_train

# After SIGTERM or SIGHUP: how long the run may take to stop and write its record,
# then how long Textual's own shutdown may take before the process ends anyway.
RECORD_WAIT_S = 15.0
EXIT_GRACE_S = 3.0


class SteplrApp(App[int]):
    """steplr-tui: set StepLR, preview its staircase, watch MNIST train."""

    CSS_PATH = ["app.tcss", "screens/dashboard.tcss", "screens/runs.tcss"]
    TITLE = "steplr-tui"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True)]

    def __init__(
        self,
        config: TrainConfig | None = None,
        *,
        start: bool = False,
        train_fn: TrainFn = real_train,
        warm_up: bool = True,
        cursor_blink: bool = True,
        theme: str = "textual-dark",
        runs_dir: Path | None = None,
        resume: Path | None = None,
    ) -> None:
        super().__init__()
        self.config = config or TrainConfig()
        self.runs_dir = runs_dir
        self.resume = resume
        self.start_at_launch = start
        self.train_fn = train_fn
        self.warm_up = warm_up
        self.cursor_blink = cursor_blink
        self.theme = theme

    def get_default_screen(self) -> Screen:
        return DashboardScreen(
            self.config,
            train_fn=self.train_fn,
            start=self.start_at_launch,
            warm_up=self.warm_up,
            cursor_blink=self.cursor_blink,
            runs_dir=self.runs_dir,
            resume=self.resume,
        )

    def on_mount(self) -> None:
        if self.is_headless:
            return  # under tests the event loop's signal handlers are not ours to take
        loop = asyncio.get_running_loop()
        # SIGHUP is a dropped SSH session: stop the run cleanly, keep its checkpoint, leave.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        screen = self.screen_stack[0] if self.screen_stack else None
        done = screen.training_done if isinstance(screen, DashboardScreen) else None
        if isinstance(screen, DashboardScreen):
            screen.stop_training(f"stopped by {sig.name}")
        code = 128 + sig.value
        threading.Thread(
            target=_exit_when_stuck, args=(done, code), name="steplr-exit-guard", daemon=True
        ).start()
        self.exit(return_code=code)

    async def action_quit(self) -> None:
        # Stop the worker first so it leaves at its next batch instead of being waited on.
        screen = self.screen_stack[0] if self.screen_stack else None
        if isinstance(screen, DashboardScreen):
            screen.stop_training("stopped: the app quit")
        self.exit(0)


def _exit_when_stuck(training_done: threading.Event | None, code: int) -> None:
    """End the process if the normal exit does not, once the run's record is final.

    A hung-up terminal (a dropped SSH session) sends SIGHUP and then SIGCONT;
    Textual answers SIGCONT by restarting its output thread on the dead terminal,
    and its shutdown can then wait forever for that thread. Normally the process
    has exited long before this fires.
    """
    if training_done is not None:
        training_done.wait(RECORD_WAIT_S)
    threading.Event().wait(EXIT_GRACE_S)
    os._exit(code)
