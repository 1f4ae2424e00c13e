"""The run folder's costs and speeds, each as a ratio or a figure measured in one run.

    STEPLR_TUI_DATA=../shared/data python benchmarks/run_folder.py [--quick]

- viewer cost: a detached run's epoch time with one viewer attached, over the
  same run's with the viewer paused (SIGSTOP), in interleaved slices;
- events.jsonl: a headless epoch writing its events, over one that does not,
  alternating epoch by epoch in one run;
- attach to a finished 1,000-epoch run: from the command to the full first frame;
- live lag: from an epoch's line in events.jsonl to the viewer's status line
  showing it (p95);
- bytes to the terminal while attached;
- events.jsonl's size per epoch of the reference run.

Prints a table and returns the figures (run_all.py includes them).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness import PY, Figure, data_root, first_frame_seconds, median, print_table


def _env(runs: Path) -> dict[str, str]:
    return {**os.environ, "STEPLR_TUI_RUNS": str(runs), "STEPLR_TUI_DATA": str(data_root())}


def _detach(runs: Path, *args: str) -> Path:
    out = subprocess.run(
        [PY, "-m", "steplr_tui", "--detach", "--dataset", "mnist", "--no-download", *args],
        capture_output=True,
        text=True,
        env=_env(runs),
        check=True,
    ).stdout
    name = re.search(r"(started|resumed) (\S+)", out).group(2)
    return runs / name


def _epochs(path: Path) -> list[dict]:
    """Each finished epoch's event (with the wall time its line was written)."""
    out = []
    for line in (path / "events.jsonl").read_text().splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if event.get("type") == "epoch":
                out.append(event)
    return out


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def _stop(path: Path) -> None:
    subprocess.run([PY, "-m", "steplr_tui", "stop", str(path)], capture_output=True, timeout=30)


class Viewer:
    """`steplr-tui attach` in a pty, its output read with time stamps."""

    def __init__(self, path: Path, size=(120, 40)) -> None:
        from tests.helpers import PtyProcess

        self.chunks: list[tuple[float, bytes]] = []
        self.proc = PtyProcess(["attach", str(path)], {"STEPLR_TUI_RUNS": str(path.parent)}, size)
        self._stop = threading.Event()
        self._seen = 0
        threading.Thread(target=self._stamp, daemon=True).start()

    def _stamp(self) -> None:
        while not self._stop.is_set():
            n = len(self.proc.output)
            if n > self._seen:
                self.chunks.append((time.time(), bytes(self.proc.output[self._seen : n])))
                self._seen = n
            time.sleep(0.002)

    def first_time(self, needle: bytes, after: float = 0.0) -> float | None:
        text, times = b"", []
        for t, chunk in self.chunks:
            text += chunk
            times.append((len(text), t))
            if t >= after and needle in text:
                end = text.index(needle) + len(needle)
                return next(t for n, t in times if n >= end)
        return None

    def live(self) -> bool:
        """The viewer draws the run's status line (its width may leave out 'attached to')."""
        return re.search(rb"epoch \d+/\d+", bytes(self.proc.output)) is not None

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.proc.send(b"\x11")
        self.proc.wait_exit(5)
        self.proc.close()


def figure_viewer_cost(slices: int, slice_s: float = 3.0) -> list[Figure]:
    """A detached run's epochs with a viewer attached against with it paused, in turns."""
    name = "viewer cost (detached run's epoch with a viewer / without)"
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        path = _detach(runs, "--epochs", "1000")
        viewer = None
        try:
            _wait(lambda: len(_epochs(path)) >= 2, 120, "two epochs")
            viewer = Viewer(path)
            _wait(lambda: viewer.live(), 60, "the viewer to show the run")
            windows: list[tuple[str, float, float]] = []
            for turn in range(2 * slices):
                mode = "on" if turn % 2 == 0 else "off"
                os.kill(viewer.proc.proc.pid, signal.SIGCONT if mode == "on" else signal.SIGSTOP)
                start = time.time()
                time.sleep(slice_s)
                windows.append((mode, start, time.time()))
            os.kill(viewer.proc.proc.pid, signal.SIGCONT)
        finally:
            _stop(path)
            if viewer is not None:
                viewer.close()
        epochs = _epochs(path)

    def inside(mode: str) -> list[list[float]]:
        out = []
        for m, start, end in windows:
            if m == mode:
                out.append(
                    [
                        e["seconds"]
                        for e in epochs
                        if start <= e["time"] - e["seconds"] and e["time"] <= end
                    ]
                )
        return out

    on, off = inside("on"), inside("off")
    ratios = [
        median(on[k]) / ((median(off[k]) + median(off[min(k, len(off) - 1)])) / 2)
        for k in range(min(len(on), len(off)))
        if on[k] and off[k]
    ]
    ratio = median(ratios)
    return [
        Figure(
            name,
            ratio,
            "x",
            "<= 1.03x",
            ratio <= 1.03,
            f"{len(ratios)} interleaved {slice_s:.0f}s slices, ratios "
            f"{min(ratios):.2f}-{max(ratios):.2f}",
        )
    ]


def figure_events_cost(epochs: int) -> list[Figure]:
    """Headless epochs with events.jsonl written against without, epoch by epoch."""
    from steplr_tui.run import record as record_module
    from steplr_tui.run.jobs import Job, run_job
    from steplr_tui.runfolder import EpochEnd
    from steplr_tui.runfolder.params import TrainConfig

    real = record_module.RunRecord._append_event
    state = {"write": True}
    seconds: dict[bool, list[float]] = {True: [], False: []}

    def switch(self, line, sync):
        if state["write"]:
            real(self, line, sync)

    def emit(event) -> None:
        if isinstance(event, EpochEnd):
            if event.epoch > 1:  # the first warms caches up
                seconds[state["write"]].append(event.seconds - event.eval_seconds)
            state["write"] = not state["write"]

    record_module.RunRecord._append_event = switch
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = TrainConfig(epochs=epochs, dataset="mnist", download=False, device="cpu")
            run_job(Job(config, Path(tmp)), emit)
            path = next(Path(tmp).iterdir())
            size = (path / "events.jsonl").stat().st_size
            written = sum(1 for _ in (path / "events.jsonl").open())
    finally:
        record_module.RunRecord._append_event = real
    ratio = median(seconds[True]) / median(seconds[False])
    return [
        Figure(
            "events.jsonl: epoch writing it / not writing it",
            ratio,
            "x",
            "<= 1.02x",
            ratio <= 1.02,
            f"{len(seconds[True])} epochs each, alternating; "
            f"{median(seconds[True]) * 1000:.0f} ms vs {median(seconds[False]) * 1000:.0f} ms",
        ),
        Figure(
            "events.jsonl per epoch of the reference run",
            size / (epochs / 2) / 1024,
            "KB",
            "reported",
            None,
            f"{written} lines for {epochs // 2} epochs written (every progress report "
            "carries its batch losses)",
        ),
    ]


def _finished_run(runs: Path, epochs: int) -> Path:
    """A finished run of `epochs` reference epochs, written as the trainer writes it:
    two progress reports an epoch (0.1 s apart, 469 batches), its end, the run's end."""
    from steplr_tui.run.record import RunRecord
    from steplr_tui.runfolder import (
        BatchProgress,
        EpochEnd,
        RunEnded,
        RunOpened,
        RunStarted,
        Status,
    )
    from steplr_tui.runfolder.params import TrainConfig
    from steplr_tui.runfolder.schedule import step_lrs

    config = TrainConfig(epochs=epochs, step_size=100, gamma=0.5)
    record = RunRecord.create(runs, config.as_dict(), {})
    record.mark_running()
    record.write(RunOpened(str(record.path), config.as_dict(), pid=os.getpid()))
    record.write(
        RunStarted(
            "cpu (2 threads)", "MNIST", "/data", 60000, 10000, epochs, 938, 64, global_batch=64
        )
    )
    lrs = step_lrs(config.lr, 100, 0.5, epochs)
    for e in range(1, epochs + 1):
        for half in (469, 938):
            losses = tuple(0.3 + 2.0 / (e + (half - 469 + i) / 938) for i in range(469))
            record.write(BatchProgress(e, half, 938, losses, 60000.0, e * 0.16))
        record.write(EpochEnd(e, lrs[e - 1], 0.3 + 2 / e, 92 - 1 / e, 0.16, e * 0.16, steps=938))
    record.write(RunEnded(Status.COMPLETED, "", epochs, epochs * 0.16))
    record.close()
    return record.path


def figure_attach_finished(
    runs_count: int, epochs: int = 1000, target: float = 0.5
) -> list[Figure]:
    name = f"attach to a finished {epochs:,}-epoch run: command to full first frame"
    times, size = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        path = _finished_run(Path(tmp), epochs)
        size = (path / "events.jsonl").stat().st_size
        shown = f"epoch {epochs}/{epochs}".encode()
        for _ in range(runs_count):
            start = time.time()
            viewer = Viewer(path)
            try:
                _wait(
                    lambda v=viewer: shown in v.proc.output and b"done" in v.proc.output,
                    60,
                    "the replayed run",
                )
                time.sleep(0.1)
                times.append(viewer.first_time(shown) - start)
            finally:
                viewer.close()
    value = median(times)
    return [
        Figure(
            name,
            value,
            "s",
            f"<= {target:g} s",
            value <= target,
            f"events.jsonl of {size / 1e6:.1f} MB; runs {', '.join(f'{t:.2f}' for t in times)} s",
        )
    ]


def figure_attach_vs_dashboard(runs_count: int, epochs: int = 1000) -> list[Figure]:
    """Attach to a finished run (its whole history replayed, its end shown) against the
    dashboard's own first frame, alternated in the same pty."""
    attach, dashboard = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = _finished_run(Path(tmp), epochs)
        env = {"STEPLR_TUI_RUNS": tmp}
        shown = (b"Quit", f"epoch {epochs}/{epochs}".encode(), b"done")
        for _ in range(runs_count):
            dashboard.append(first_frame_seconds([], env))
            attach.append(first_frame_seconds(["attach", str(path)], env, shown=shown))
    ratio = median(attach) / median(dashboard)
    return [
        Figure(
            f"attach to a finished {epochs:,}-epoch run / the dashboard's first frame",
            ratio,
            "x",
            "<= 1.2x",
            ratio <= 1.2,
            f"attach {median(attach):.2f}s, dashboard {median(dashboard):.2f}s",
        )
    ]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def figure_viewer_cpu(seconds: float) -> list[Figure]:
    """The CPU an attached viewer takes while it follows a live run, from one second after
    its first frame, for `seconds` (user and system time of its process, from /proc)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = _detach(Path(tmp), "--epochs", "1000")
        viewer = None
        try:
            _wait(lambda: len(_epochs(path)) >= 2, 120, "two epochs")
            viewer = Viewer(path)
            _wait(lambda: viewer.live(), 60, "the viewer to show the run")
            pid = viewer.proc.proc.pid
            time.sleep(1.0)
            cpu0, t0 = _cpu_seconds(pid), time.monotonic()
            time.sleep(seconds)
            share = (_cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        finally:
            _stop(path)
            if viewer is not None:
                viewer.close()
    return [
        Figure(
            "viewer's CPU while following a live run, after its first second",
            share * 100,
            "% of a core",
            "<= 10%",
            share <= 0.10,
            f"over {seconds:.0f} s at 120x40, the run at about 5 epochs a second",
        )
    ]


def figure_live(epochs: int) -> list[Figure]:
    """Lag from an epoch's line in events.jsonl to the viewer's status line, and the
    bytes the viewer writes to its terminal meanwhile."""
    with tempfile.TemporaryDirectory() as tmp:
        path = _detach(Path(tmp), "--epochs", str(epochs), "--batch-size", "256")
        _wait(lambda: len(_epochs(path)) >= 1, 120, "an epoch")
        viewer = Viewer(path)
        try:
            _wait(lambda: viewer.live(), 60, "the viewer to show the run")
            time.sleep(1.0)
            start_bytes, start = len(viewer.proc.output), time.time()
            first = len(_epochs(path)) + 1
            _wait(lambda: len(_epochs(path)) >= epochs - 1, 600, "the run")
            used, took = len(viewer.proc.output) - start_bytes, time.time() - start
            time.sleep(1.0)
        finally:
            viewer.close()
            _stop(path)
        # When the screen first showed each epoch (or a later one): the status line.
        shown = [
            (t, int(m.group(1)))
            for t, chunk in viewer.chunks
            for m in re.finditer(rb"epoch (\d+)/%d" % epochs, chunk)
        ]
        written = {}
        for line in (path / "events.jsonl").read_text().splitlines():
            event = json.loads(line)
            if event["type"] == "progress" and event["epoch"] not in written:
                written[event["epoch"]] = event["time"]
        lags = []
        for epoch, at in written.items():
            if first < epoch < epochs - 1:
                later = [t for t, e in shown if e >= epoch and t >= at - 0.05]
                if later:
                    lags.append(max(min(later) - at, 0.0))
    p95 = statistics.quantiles(lags, n=20)[-1] if len(lags) > 1 else lags[0]
    rate = used / took / 1024
    return [
        Figure(
            "live lag, events.jsonl to the viewer's screen (p95)",
            p95,
            "s",
            "<= 0.5 s",
            p95 <= 0.5,
            f"median {median(lags):.2f}s over {len(lags)} epochs",
        ),
        Figure(
            "bytes to the terminal while attached",
            rate,
            "KB/s",
            "<= 20 KB/s",
            rate <= 20,
            f"{used / 1024:.0f} KB in {took:.1f}s at 120x40",
        ),
    ]


def figure_detach(runs_count: int) -> list[Figure]:
    """`steplr-tui --detach` from the command to its return (the run goes on)."""
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs_count):
            start = time.perf_counter()
            path = _detach(Path(tmp), "--epochs", "3")
            times.append(time.perf_counter() - start)
            _stop(path)
    value = median(times)
    return [
        Figure(
            "steplr-tui --detach: command to its return",
            value,
            "s",
            "<= 2 s",
            value <= 2.0,
            f"runs {', '.join(f'{t:.2f}' for t in times)} s",
        )
    ]


def figures(quick: bool) -> list[Figure]:
    out: list[Figure] = []
    out += figure_detach(3 if quick else 5)
    out += figure_events_cost(8 if quick else 24)
    out += figure_attach_finished(2 if quick else 5)
    out += figure_attach_finished(2 if quick else 5, 10_000, 1.5)
    out += figure_attach_vs_dashboard(3 if quick else 7)
    out += figure_viewer_cpu(4 if quick else 10)
    out += figure_live(20 if quick else 60)
    out += figure_viewer_cost(3 if quick else 10)
    return out


if __name__ == "__main__":
    print_table(figures("--quick" in sys.argv))
