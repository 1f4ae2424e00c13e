"""The status line: the run's progress, speed, time, and why it is slow when it is."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from textual import on
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from steplr_tui.runfolder.reader import short_name
from steplr_tui.viewer.cpuwatch import CpuWatch
from steplr_tui.viewer.run_view import RunView, fit_parts, status_parts


class DeviceProbed(Message):
    """Background warm-up finished: torch is imported and the auto device is known."""

    def __init__(self, description: str) -> None:
        super().__init__()
        self.description = description


class StatusLine(Static):
    """One line, fitted to the width: its size never changes, so no layout pass."""

    def __init__(self, device_hint: str, **kwargs) -> None:
        super().__init__("", markup=False, **kwargs)  # paths and names, not markup
        self.device_hint = device_hint
        self.cpu = CpuWatch()
        self._parts: list[tuple[int, str]] = []
        self._fitted: tuple[int, Content] | None = None  # (width, the line at that width)

    def warm_up(self, probe: Callable[[], str]) -> None:
        """Import torch in a daemon thread (quitting never waits for it), to show the device
        'auto' picks (`probe` says it); a run started a few seconds later then begins at
        once."""
        threading.Thread(
            target=self._probe, args=(probe,), name="steplr-warm-up", daemon=True
        ).start()

    def _probe(self, probe: Callable[[], str]) -> None:
        try:
            text = probe()
        except Exception:
            return  # the run itself will report any real problem
        self.post_message(DeviceProbed(text))

    @on(DeviceProbed)
    def _on_probed(self, message: DeviceProbed) -> None:
        self.device_hint = f"auto: {message.description}"

    def show(self, view: RunView, data_hint: str, attached: bool) -> None:
        extra: list[tuple[int, str]] = []
        opened = view.opened
        if attached and opened is not None:
            where = f"pid {opened.pid}" if opened.pid else "a run folder"
            extra.append((2, f"attached to {short_name(Path(opened.path).name)} ({where})"))
        if view.active and opened is not None:
            pids = {os.getpid()} | ({opened.pid} if attached and opened.pid else set())
            note = self.cpu.sample(pids)
            if note:
                extra.append((1, note))
        parts = status_parts(view, self.device_hint, data_hint)
        parts[1:1] = extra
        self._parts = parts
        self._fitted = None
        self.refresh(layout=False)

    def render(self) -> Content:
        # Fitted as it is drawn, to the width it has then: known from the first frame
        # on (fitted when shown, the first frame had it cut to 20 columns, and the
        # next one redrew it).
        width = max(self.size.width - 2, 20)
        if self._fitted is None or self._fitted[0] != width:
            self._fitted = (width, Content(fit_parts(self._parts, width)))
        return self._fitted[1]
