"""Run the real steplr-tui in a pseudo-terminal, as a user's terminal would."""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path


def _controlling_terminal() -> None:
    """In the child: a session of its own whose controlling terminal is the pty, as a
    login shell over SSH has, so a terminal that goes away sends it SIGHUP."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyProcess:
    """steplr-tui (or another program) on a pty of a given size; output is collected in
    the background."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        size=(120, 40),
        program: list[str] | None = None,
    ) -> None:
        """`program` (default: `python -m steplr_tui`) runs with `args`."""
        master, slave = os.openpty()
        cols, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.master = master
        self.output = bytearray()
        self.proc = subprocess.Popen(
            [*(program or [sys.executable, "-m", "steplr_tui"]), *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**os.environ, "TERM": "xterm-256color", **env},
            preexec_fn=_controlling_terminal,
            close_fds=True,
        )
        os.close(slave)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        with contextlib.suppress(OSError):
            os.close(self.master)
        self._reader.join(2)


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def metrics_lines(runs_dir: Path) -> int:
    files = list(runs_dir.glob("*/metrics.jsonl"))
    if not files:
        return 0
    return sum(1 for line in files[0].read_text().splitlines() if line.strip())
