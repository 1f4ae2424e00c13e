"""Key-to-screen time, and how far the panes trail the run, in a viewer under load.

    python benchmarks/key_latency.py [--keys 40] [--hogs 2] [--json PATH]

A fast detached run (the bundled sample, small batches: an epoch in about a
second) is followed by `steplr-tui attach` in a pty while `--hogs` processes spin
on the CPU. Measured:

- key to screen: a digit typed in the lr field (never entered, so nothing is
  sent), from the write to the pty to the field's new text in the output (p95;
  goal: under 100 ms);
- panes behind the run: for each epoch, from its line in events.jsonl to the
  log pane's "Epoch N," on screen (p95, seconds and epochs);
- the floor: how late a plain process of its own session wakes from a 10 ms sleep
  meanwhile (it burns 5 ms of CPU between sleeps), under the same load.

Needs no MNIST. A benchmark, not a test: the machine's load is part of the figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import Figure, print_table
from run_folder import Viewer, _epochs, _wait

PY = sys.executable
GOAL_S = 0.100
# Textual redraws the changed cells only: the typed digit, drawn in the lr field (the
# panel's first row, left of the plots).
TYPED = re.compile(rb"\x1b\[2;(\d+)H(?:\x1b\[[0-9;]*m)*7")


def _detach(runs: Path, *args: str) -> Path:
    env = {**os.environ, "STEPLR_TUI_RUNS": str(runs), "STEPLR_TUI_DATA": str(runs / "none")}
    out = subprocess.run(
        [PY, "-m", "steplr_tui", "--detach", "--dataset", "sample", "--device", "cpu", *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    name = re.search(r"(started|resumed) (\S+)", out).group(2)
    return runs / name


def _hog() -> subprocess.Popen:
    return subprocess.Popen([PY, "-c", "while True: pass"])


# The floor under the same load: a process of its own session (as the viewer in its
# pty) that sleeps 10 ms and burns 5 ms of CPU in turn, timing how late it wakes.
WAKER = """
import sys, time
late = []
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    t = time.perf_counter(); time.sleep(0.01); late.append(time.perf_counter() - t - 0.01)
    b = time.thread_time() + 0.005
    while time.thread_time() < b: pass
late.sort()
print(late[len(late) // 2], late[int(len(late) * 0.95)], len(late))
"""


def _waker(seconds: float) -> subprocess.Popen:
    return subprocess.Popen(
        [PY, "-c", WAKER, str(seconds)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )


def first_time(viewer: Viewer, needle: bytes, after: float) -> float | None:
    """When `needle` was first on screen after `after` (the chunks since then only)."""
    text, times = b"", []
    for t, _chunk in reversed(viewer.chunks):
        if t < after:
            break
        times.append(t)
    for t, chunk in viewer.chunks[len(viewer.chunks) - len(times) :]:
        text += chunk
        if needle in text:
            return t
    return None


def typed_at(viewer: Viewer, after: float) -> float | None:
    """When the typed digit was first drawn in the lr field after `after`."""
    text = b""
    for t, chunk in viewer.chunks:
        if t < after:
            continue
        text += chunk
        if any(int(m.group(1)) < 40 for m in TYPED.finditer(text)):
            return t
    return None


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1] if len(xs) > 1 else xs[0]


def measure(keys: int, hogs: int) -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        path = _detach(
            Path(tmp), "--epochs", "400", "--batch-size", "32", "--lr", "0.005",
            "--step-size", "1000", "--threads", "1",
        )  # fmt: skip
        _wait(lambda: len(_epochs(path)) >= 1, 120, "an epoch")
        spinning = [_hog() for _ in range(hogs)]
        viewer = Viewer(path)
        latencies: list[float] = []
        try:
            _wait(lambda: viewer.live(), 60, "the viewer to show the run")
            time.sleep(2.0)
            waker = _waker(keys * 0.4)
            start = time.time()
            for _ in range(keys):
                sent = time.time()
                # The field's text is selected on focus: "7" replaces it, and the
                # backspace below empties the field (the errors line comes and goes).
                viewer.proc.send(b"7")
                _wait(lambda s=sent: typed_at(viewer, s) is not None, 10, "the key")
                latencies.append(typed_at(viewer, sent) - sent)
                viewer.proc.send(b"\x7f")  # back to 0.005
                time.sleep(0.4)
            end = time.time()
        finally:
            viewer.close()
            for hog in spinning:
                hog.kill()
                hog.wait()
            subprocess.run([PY, "-m", "steplr_tui", "stop", str(path)], capture_output=True)
        written = {e["epoch"]: e["time"] for e in _epochs(path)}
        behind_s, behind_epochs = [], []
        for epoch, at in written.items():
            if not start <= at <= end - 3.0:
                continue
            shown = first_time(viewer, b"Epoch %d," % epoch, at - 0.05)
            if shown is None:
                continue
            behind_s.append(max(shown - at, 0.0))
            behind_epochs.append(sum(1 for t in written.values() if at < t <= shown))
        epoch_s = statistics.median(
            b - a
            for a, b in zip(sorted(written.values()), sorted(written.values())[1:], strict=False)
        )
    key_p95 = p95(latencies)
    woke = waker.communicate(timeout=60)[0].split()
    return [
        Figure(
            f"key to screen in the lr field, {hogs} CPU hogs (p95)",
            key_p95 * 1000,
            "ms",
            "< 100 ms",
            key_p95 < GOAL_S,
            f"median {statistics.median(latencies) * 1000:.0f} ms, max "
            f"{max(latencies) * 1000:.0f} ms over {len(latencies)} keys",
        ),
        Figure(
            f"the floor: a sleeping process's wake-up under the same load, {hogs} hogs (p95)",
            float(woke[1]) * 1000,
            "ms",
            "",
            None,
            f"median {float(woke[0]) * 1000:.1f} ms over {woke[2]} wake-ups, while the keys "
            "were typed",
        ),
        Figure(
            f"log pane behind the run, {hogs} CPU hogs (p95)",
            p95(behind_s) if behind_s else float("nan"),
            "s",
            "",
            None,
            f"p95 {p95(behind_epochs) if behind_epochs else float('nan'):.0f} epoch(s) behind, "
            f"epochs of {epoch_s:.2f}s, over {len(behind_s)} epochs",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=40)
    parser.add_argument("--hogs", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures = measure(args.keys, args.hogs)
    print_table(figures)
    if args.json:
        with contextlib.suppress(OSError):
            args.json.write_text(json.dumps([f.__dict__ for f in figures], indent=2))


if __name__ == "__main__":
    main()
