"""The Textual application: a thin shell around the dashboard screen.

Importing this module imports Textual but not torch; torch loads in a background
thread after the first frame, so the dashboard appears at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.viewer.heap import SETTLE_AFTER_S, settle
from steplr_tui.viewer.screens.dashboard import DashboardScreen
from steplr_tui.viewer.starter import Starter, TrainFn
from steplr_tui.viewer.widgets.status_line import DeviceProbed

# After SIGTERM or SIGHUP: how long the run may take to stop and write its record,
# then how long Textual's own shutdown may take before the process ends anyway.
RECORD_WAIT_S = 15.0
EXIT_GRACE_S = 3.0
TERMINAL_CHECK_S = 1.0

# The dashboard's actions, as the command palette (ctrl+p) lists them.
PALETTE = (
    ("Start a run here", "start", "Train the fields in this app (ctrl+r)"),
    ("Start a detached run", "detach", "Train in a background process that outlives the terminal"),
    ("Stop the run", "stop", "Stop at the next batch; the checkpoint is kept (ctrl+s)"),
    ("Runs", "runs", "Recorded runs: compare, overlay, resume, attach (ctrl+o)"),
    ("Sweep", "sweeps", "Tune lr, step_size and gamma: the newest sweep, or a new one (ctrl+g)"),
    ("Help", "help", "Every key, and how steering works (f1)"),
    ("X axis: epochs or iterations", "toggle_x", "f2"),
    ("LR pane: log or linear", "toggle_lr_scale", "f3"),
    ("Loss pane: per batch or per epoch", "toggle_loss", "f4"),
    ("Phase table", "toggle_phases", "f5"),
    ("Export the run", "export", "metrics.csv and a PyTorch snippet (f6)"),
    ("Pin the run as an overlay", "pin", "f7"),
    ("Loss pane: log or linear y", "toggle_loss_log", "f8"),
    ("Loss smoothing", "smoothing", "off, 0.6, 0.9, 0.99 (f9)"),
    ("Branch the run", "branch", "From its checkpoint after an epoch, with an edit (ctrl+b)"),
)


class SteplrApp(App[int]):
    """steplr-tui: set StepLR, preview its staircase, watch MNIST train."""

    # The dialogs and the sweep view bring their own, read as they first open.
    CSS_PATH = ["app.tcss", "screens/dashboard.tcss"]
    TITLE = "steplr-tui"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True)]

    def __init__(
        self,
        config: TrainConfig | None = None,
        *,
        start: bool = False,
        train_fn: TrainFn | None = None,
        warm_up: bool = True,
        cursor_blink: bool = True,
        theme: str = "textual-dark",
        runs_dir: Path | None = None,
        resume: Path | None = None,
        attach: Path | None = None,
        notes: tuple[str, ...] = (),
        sweep: Path | None = None,
        starter: Starter | None = None,
    ) -> None:
        """`starter` is the run side (the command line's); `train_fn`, a trainer of the
        caller's own, takes the place of its `train`."""
        super().__init__()
        self.starter = starter
        self.config = config or TrainConfig()
        self.runs_dir = runs_dir
        self.resume = resume
        self.attach = attach
        self.sweep = sweep  # a sweep folder: its view opens at once
        self.start_at_launch = start
        self.train_fn = train_fn
        self.warm_up = warm_up
        self.cursor_blink = cursor_blink
        self.notes = notes
        self.theme = theme
        self.farewell = ""  # printed after the app exits (a run that goes on)
        self._hung_up = False
        self._after_display: list[Callable[[], object]] = []

    def call_after_display(self, callback: Callable[[], object]) -> None:
        """Call `callback` once the next frame has been written to the terminal."""
        self._after_display.append(callback)

    def post_display_hook(self) -> None:
        if self._after_display:
            callbacks, self._after_display = self._after_display, []
            for callback in callbacks:
                self.call_later(callback)

    def get_default_screen(self) -> Screen:
        return DashboardScreen(
            self.config,
            train_fn=self.train_fn,
            start=self.start_at_launch,
            warm_up=self.warm_up,
            cursor_blink=self.cursor_blink,
            runs_dir=self.runs_dir,
            resume=self.resume,
            attach=self.attach,
            sweep=self.sweep,
            notes=self.notes,
            starter=self.starter,
        )

    @property
    def dashboard(self) -> DashboardScreen | None:
        screen = self.screen_stack[0] if self.screen_stack else None
        return screen if isinstance(screen, DashboardScreen) else None

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        dashboard = self.dashboard
        if dashboard is not None:
            for title, action, help_text in PALETTE:
                method = getattr(dashboard, f"action_{action}")
                yield SystemCommand(title, help_text, method)
        yield from super().get_system_commands(screen)

    def on_mount(self) -> None:
        # What the first frame needed: after it, and after keys typed at once.
        self.call_after_display(lambda: self.set_timer(SETTLE_AFTER_S, lambda: settle(self)))
        if self.is_headless:
            return  # under tests the process's signals are not ours to take
        self._loop = asyncio.get_running_loop()
        # SIGHUP is a dropped SSH session: a run of this process stops cleanly and keeps
        # its checkpoint; a detached run goes on. Plain signal handlers, not the event
        # loop's: they run even when the loop is stuck writing to a dead terminal.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda signum, _frame: self._hang_up(signal.Signals(signum)))
        threading.Thread(target=self._watch_terminal, name="steplr-tty-watch", daemon=True).start()

    @on(DeviceProbed)
    def _torch_imported(self) -> None:
        settle(self)  # torch's objects, a few hundred thousand

    def _watch_terminal(self) -> None:
        """A terminal that went away without a SIGHUP (its pty closed under us) fails
        even an empty write: leave as after a hangup, instead of spinning on it."""
        fd = sys.__stderr__.fileno() if sys.__stderr__ is not None else 2
        while True:
            time.sleep(TERMINAL_CHECK_S)
            try:
                os.write(fd, b"")
            except OSError:
                self._hang_up(signal.SIGHUP)
                return

    def _leave(self, reason: str) -> threading.Event | None:
        """Let go of the run on screen: one of this process stops, another goes on."""
        dashboard = self.dashboard
        if dashboard is None:
            return None
        controller = dashboard.controller
        view = dashboard.view
        if controller.attached and view.active and view.opened is not None:
            name = Path(view.opened.path).name
            pid = f" (pid {view.opened.pid})" if view.opened.pid else ""
            self.farewell = (
                f"steplr-tui: {name} goes on in the background{pid}; "
                f"steplr-tui attach {name} watches it again"
            )
        controller.leave(reason)
        return controller.training_done

    def _hang_up(self, sig: signal.Signals) -> None:
        if self._hung_up:
            return
        self._hung_up = True
        done = self._leave(f"stopped by {sig.name}")
        code = 128 + sig.value
        threading.Thread(
            target=_exit_when_stuck, args=(done, code), name="steplr-exit-guard", daemon=True
        ).start()
        loop = getattr(self, "_loop", None)
        if loop is not None:
            loop.call_soon_threadsafe(lambda: self.exit(return_code=code))

    async def action_quit(self) -> None:
        # Stop a run of this process first, so it leaves at its next batch instead of
        # being waited on; a run in another process goes on.
        self._leave("stopped: the app quit")
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
