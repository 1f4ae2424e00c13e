"""A stall probe for the viewer's event loop: which asyncio step held it, and why.

Put this folder first on PYTHONPATH and name a log file; every Python process started
so (the viewer among them) then logs to it:

    PYTHONPATH=benchmarks/stallprobe:. STALL_LOG=/tmp/stalls.log \
        python benchmarks/key_latency.py --keys 40

- `STEP <wall> ms cpu <cpu> ms runqueue-wait <ms>`: one step of the event loop that took
  over 80 ms, the main thread's CPU time in it, and the time the kernel kept it waiting
  to run (from /proc/self/task/TID/schedstat): wall time that is neither is a wait for
  the GIL or a blocking call;
- `SAMPLE at <ms>` and a stack: where the main thread was, every 100 ms of a long step;
- `WATCHER LATE`: the probe's own thread woke late, with each thread's CPU ticks since.

It found the log pane rewriting its 1000 lines on every layout (2026-12-06). Not part of
the package; it does nothing without STALL_LOG.
"""

from __future__ import annotations

import asyncio.events
import os
import sys
import threading
import time
import traceback

STEP_S = 0.08  # a step longer than this is logged
SAMPLE_AFTER_S = 0.06
SAMPLE_EVERY_S = 0.1


def _install(path: str) -> None:
    out = open(path, "a", buffering=1)  # noqa: SIM115 (open for the process's life)
    original = asyncio.events.Handle._run
    main_ident = threading.get_ident()
    main_tid = threading.get_native_id()
    state: dict[str, float | None] = {"start": None}

    def runqueue_ns() -> int:
        with open(f"/proc/self/task/{main_tid}/schedstat") as f:
            return int(f.read().split()[1])

    def run(self: asyncio.events.Handle) -> None:
        if threading.get_ident() != main_ident:
            return original(self)
        start, cpu0, wait0 = time.perf_counter(), time.thread_time(), runqueue_ns()
        state["start"] = start
        try:
            return original(self)
        finally:
            state["start"] = None
            wall = time.perf_counter() - start
            if wall > STEP_S:
                cpu = time.thread_time() - cpu0
                wait = (runqueue_ns() - wait0) / 1e6
                out.write(
                    f"STEP {wall * 1000:.0f} ms cpu {cpu * 1000:.0f} ms "
                    f"runqueue-wait {wait:.0f} ms {self._callback!r:.80}\n"
                )

    def ticks_by_thread() -> dict[str, int]:
        ticks = {}
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                ticks[tid] = int(fields[11]) + int(fields[12])
            except OSError:
                pass
        return ticks

    def watch() -> None:
        last_sample = 0.0
        before = ticks_by_thread()
        while True:
            slept = time.perf_counter()
            time.sleep(0.03)
            late = time.perf_counter() - slept - 0.03
            now = ticks_by_thread()
            if late > 0.2:
                used = {t: n - before.get(t, 0) for t, n in now.items() if n - before.get(t, 0)}
                out.write(f"WATCHER LATE {late * 1000:.0f} ms; CPU ticks by thread {used}\n")
            before = now
            start = state["start"]
            at = time.perf_counter()
            if start is None or at - start < SAMPLE_AFTER_S or at - last_sample < SAMPLE_EVERY_S:
                continue
            last_sample = at
            frame = sys._current_frames().get(main_ident)
            if frame is not None:
                stack = "".join(traceback.format_stack(frame)[-14:])
                out.write(f"SAMPLE at {(at - start) * 1000:.0f} ms\n{stack}\n")

    asyncio.events.Handle._run = run  # type: ignore[method-assign]
    threading.Thread(target=watch, name="stall-probe", daemon=True).start()


if os.environ.get("STALL_LOG"):
    _install(os.environ["STALL_LOG"])
