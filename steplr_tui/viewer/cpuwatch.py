"""Why a run is slow: other processes taking the cores, read from /proc (Linux).

Plain Python. Elsewhere, or when /proc can't be read, it says nothing.
"""

from __future__ import annotations

import os
import time

BUSY_SHARE = 0.85  # the machine counts as busy above this share of all its cores
OTHERS_CORES = 0.5  # and others as competing above this many cores' worth


def _cpu_ticks() -> tuple[int, int] | None:
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields), idle


def _proc_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            rest = fh.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])
    except (OSError, ValueError, IndexError):
        return None


class CpuWatch:
    """Samples the machine and the run's processes at most every `interval` seconds."""

    def __init__(self, interval: float = 2.0) -> None:
        self.interval = interval
        self.cores = os.cpu_count() or 1
        self._last: tuple[float, tuple[int, int], dict[int, int]] | None = None
        self.note = ""

    def sample(self, pids: set[int]) -> str:
        """'' or, when other processes compete for the cores, a short note saying so."""
        now = time.monotonic()
        if self._last is not None and now - self._last[0] < self.interval:
            return self.note
        cpu = _cpu_ticks()
        procs = {pid: t for pid in pids if (t := _proc_ticks(pid)) is not None}
        if cpu is None:
            return ""
        last, self._last = self._last, (now, cpu, procs)
        if last is None:
            return self.note
        total = cpu[0] - last[1][0]
        if total <= 0:
            return self.note
        busy = (total - (cpu[1] - last[1][1])) / total * self.cores
        ours = sum(procs[p] - last[2][p] for p in procs if p in last[2]) / total * self.cores
        others = busy - ours
        if busy >= BUSY_SHARE * self.cores and others >= OTHERS_CORES:
            self.note = f"slow: other processes use {others:.1f} of {self.cores} cores"
        else:
            self.note = ""
        return self.note
