"""The dashboard's figures: its cost to a run (tmux, against headless), a key's way to the
screen, bytes to the terminal, the first frame against a bare Textual app's, and the
plot panes' redraw."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from harness import (
    PY,
    ROOT,
    Figure,
    data_root,
    epoch_seconds,
    first_frame_seconds,
    median,
    metrics_count,
    tmux_child,
    wait_epochs,
    wait_gone,
    wait_status,
)

# ---- figure 2 and 5: the running TUI under tmux against headless -----------------------


def figure_ui_overhead(slices: int, slice_s: float = 1.5) -> list[Figure]:
    """Epoch time in the TUI (tmux, 120x40, all panes live) over headless, interleaved.

    Both runs are started, then take turns: one is paused (SIGSTOP) while the
    other trains for `slice_s` seconds. Each of the TUI's slices is compared
    with the headless slices either side of it, so the shared machine's slow
    spells, which last seconds to minutes, land on both sides of every ratio.
    Epochs that straddle a pause are left out (they hold the pause).
    """
    name = "UI overhead (TUI epoch time / headless)"
    if shutil.which("tmux") is None:
        return [Figure(name, float("nan"), "x", "<= 1.05x", False, "tmux not installed")]
    env = {**os.environ, "STEPLR_TUI_DATA": str(data_root())}
    args = "--epochs 1000 --dataset mnist --no-download --device cpu"
    session = f"steplr-bench-{os.getpid()}"
    with tempfile.TemporaryDirectory() as h_dir, tempfile.TemporaryDirectory() as t_dir:
        h_runs, t_runs = Path(h_dir), Path(t_dir)
        headless = subprocess.Popen(
            [PY, "-m", "steplr_tui", "--headless", *args.split()],
            env={**env, "STEPLR_TUI_RUNS": h_dir},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Textual answers SIGCONT by re-entering application mode (its ctrl+z
        # support), a full repaint that a run never does; the pauses here are the
        # benchmark's, so the launcher turns that answer off.
        launcher = (
            "import sys; from textual.drivers.linux_driver import LinuxDriver; "
            "LinuxDriver._sigcont_application = lambda self, *a: None; "
            "from steplr_tui.cli import main; sys.exit(main(sys.argv[1:]))"
        )
        # Not exec'd: tmux resumes its pane's own process when it stops, so the
        # shell stays that process and the app is its child.
        command = (
            f"env STEPLR_TUI_RUNS={t_dir} STEPLR_TUI_DATA={env['STEPLR_TUI_DATA']} "
            f"{PY} -c {shlex.quote(launcher)} --start {args}; exit"
        )
        tui_pid = None
        try:
            # Two runs at once on two cores are ruinous (each one's OpenMP threads
            # spin waiting for the other's): headless pauses while the TUI starts.
            wait_epochs(h_runs, 2)
            os.kill(headless.pid, signal.SIGSTOP)
            subprocess.run(
                ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command],
                check=True,
            )
            tui_pid = tmux_child(session)
            wait_epochs(t_runs, 2)
            os.kill(tui_pid, signal.SIGSTOP)
            # A slice holds several epochs, and an epoch that straddles a pause
            # (so holds a whole slice) is told apart by its length.
            slice_s = max(slice_s, 6 * epoch_seconds(h_runs)[1])
            # Slice k of a run holds its epochs from bounds[k] up to bounds[k + 1].
            pids = {"headless": headless.pid, "tui": tui_pid}
            dirs = {"headless": h_runs, "tui": t_runs}
            bounds: dict[str, list[int]] = {"headless": [], "tui": []}
            bounds["headless"].append(metrics_count(h_runs) + 1)  # the epoch in flight straddles
            bounds["tui"].append(metrics_count(t_runs) + 1)
            for turn in range(2 * slices):
                mode = "headless" if turn % 2 == 0 else "tui"
                os.kill(pids[mode], signal.SIGCONT)
                time.sleep(slice_s)
                os.kill(pids[mode], signal.SIGSTOP)
                bounds[mode].append(metrics_count(dirs[mode]))
            seconds = {mode: epoch_seconds(dirs[mode])[: bounds[mode][-1]] for mode in dirs}
        finally:
            for pid in (headless.pid, tui_pid):
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGCONT)
            headless.kill()
            headless.wait()
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
            wait_gone(tui_pid)

    def slice_medians(mode: str) -> list[float]:
        b = bounds[mode]
        out = []
        for first, last in itertools.pairwise(b):
            # Epochs numbered from 1; a slice's first epoch began before its resume.
            kept = [t for t in seconds[mode][first:last] if t < slice_s / 2]
            out.append(median(kept) if kept else float("nan"))
        return out

    h, t = slice_medians("headless"), slice_medians("tui")
    # TUI slice k ran between headless slices k and k + 1.
    ratios = [
        tk / ((h[k] + h[k + 1]) / 2)
        for k, tk in enumerate(t)
        if k + 1 < len(h) and not any(math.isnan(v) for v in (tk, h[k], h[k + 1]))
    ]
    if not ratios:
        return [Figure(name, float("nan"), "x", "<= 1.05x", False, "no slice held an epoch")]
    ratio = median(ratios)
    good_h = [v for v in h if not math.isnan(v)]
    good_t = [v for v in t if not math.isnan(v)]
    low, high = statistics.quantiles(ratios, n=4)[::2] if len(ratios) > 1 else (ratio, ratio)
    return [
        Figure(
            name,
            ratio,
            "x",
            "<= 1.05x",
            ratio <= 1.05,
            f"headless {median(good_h):.3f}s, TUI {median(good_t):.3f}s per epoch; "
            f"{len(ratios)} interleaved {slice_s:.1f}s slices, ratios "
            f"{min(ratios):.2f}-{max(ratios):.2f} (quartiles {low:.2f}, {high:.2f})",
        )
    ]


def figure_key_latency(presses: int) -> list[Figure]:
    """How long a key takes to show on screen while training saturates the CPU: f5
    swaps the log for the phase table, in tmux at 120x40, timed until the pane
    shows the change (the polling adds a few ms)."""
    if shutil.which("tmux") is None:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        session = f"steplr-keys-{os.getpid()}"
        command = (
            f"STEPLR_TUI_RUNS={tmp} STEPLR_TUI_DATA={data_root()} {PY} -m steplr_tui --start "
            "--epochs 100 --dataset mnist --no-download --device cpu"
        )
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command],
            check=True,
        )

        def screen() -> str:
            out = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
            )
            return out.stdout

        latencies = []
        try:
            deadline = time.monotonic() + 120
            while metrics_count(Path(tmp)) < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            for _ in range(presses):
                before = "─ Phases" in screen()
                t0 = time.monotonic()
                subprocess.run(["tmux", "send-keys", "-t", session, "F5"], check=True)
                while ("─ Phases" in screen()) == before:
                    if time.monotonic() - t0 > 10:
                        raise SystemExit("a key press did not show within 10 s")
                latencies.append(time.monotonic() - t0)
                time.sleep(0.3)
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    return [
        Figure(
            "key to screen while training (tmux, 120x40)",
            median(latencies) * 1000,
            "ms",
            "reported",
            None,
            f"worst {max(latencies) * 1000:.0f} ms of {len(latencies)} presses",
        )
    ]


def figure_bytes(epochs: int) -> list[Figure]:
    from tests.helpers import PtyProcess

    with tempfile.TemporaryDirectory() as tmp:
        env = {"STEPLR_TUI_RUNS": tmp, "STEPLR_TUI_DATA": str(data_root())}
        app = PtyProcess(
            [
                "--start",
                "--epochs",
                str(epochs),
                "--dataset",
                "mnist",
                "--no-download",
                "--device",
                "cpu",
            ],
            env,
            size=(120, 40),
        )
        try:
            deadline = time.monotonic() + 120
            while not list(Path(tmp).glob("*/config.json")) and time.monotonic() < deadline:
                time.sleep(0.05)
            while metrics_count(Path(tmp)) < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            start_bytes, start = len(app.output), time.monotonic()
            # While training: up to the end of the next-to-last epoch, before the
            # run's end repaints every pane once more.
            wait_epochs(Path(tmp), epochs - 1)
            used, took = len(app.output) - start_bytes, time.monotonic() - start
            wait_status(Path(tmp), 600)
        finally:
            app.send(b"\x11")
            app.wait_exit(5)
            app.close()
    rate = used / took / 1024
    return [
        Figure(
            "bytes to the terminal while training",
            rate,
            "KB/s",
            "<= 20 KB/s",
            rate <= 20,
            f"{used / 1024:.0f} KB in {took:.1f}s at 120x40",
        )
    ]


# ---- figure 3: time to first frame -------------------------------------------------------


def _import_seconds(code: str) -> float:
    t0 = time.monotonic()
    subprocess.run([PY, "-c", code], check=True)
    return time.monotonic() - t0


# What `steplr-tui` imports before its first frame (the dashboard's path).
DASHBOARD_IMPORTS = "import steplr_tui.cli.main, steplr_tui.viewer.app"
TEXTUAL_IMPORTS = "import textual.app, textual.widgets"


def figure_first_frame(runs: int) -> list[Figure]:
    """The dashboard's first frame against a bare Textual app's with three widgets
    (benchmarks/bare_app.py), alternated in the same pty, so a slow spell of the shared
    machine lands on both; and each one's import alone."""
    frames, bare, floor, imports, textual_imports = [], [], [], [], []
    bare_app = [PY, str(ROOT / "benchmarks" / "bare_app.py")]
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            bare.append(first_frame_seconds([], {}, program=bare_app))
            frames.append(first_frame_seconds([], {"STEPLR_TUI_RUNS": tmp}))
            floor.append(
                first_frame_seconds(
                    ["--dashboard-imports"], {"PYTHONPATH": str(ROOT)}, program=bare_app
                )
            )
        textual_imports.append(_import_seconds(TEXTUAL_IMPORTS))
        imports.append(_import_seconds(DASHBOARD_IMPORTS))
    value, ratio = median(frames), median(frames) / median(bare)
    return [
        Figure(
            "time to first frame",
            value,
            "s",
            "<= 1.0 s",
            value <= 1.0,
            f"runs {', '.join(f'{t:.2f}' for t in frames)} s",
        ),
        Figure(
            "first frame, dashboard / bare Textual app",
            ratio,
            "x",
            "<= 1.5x",
            ratio <= 1.5,
            f"bare app {median(bare):.2f}s; import alone {median(imports):.2f}s "
            f"against Textual's {median(textual_imports):.2f}s",
        ),
        Figure(
            "first frame, the bare app after the dashboard's imports / bare app",
            median(floor) / median(bare),
            "x",
            "",
            None,
            f"{median(floor):.2f}s: the floor of any first frame of the dashboard's",
        ),
    ]


# ---- figure 4 and 7c: render cost of the plot panes ---------------------------------------


RENDER_EPOCHS = (5, 50, 200, 1000)


def figure_render(epochs_list: tuple[int, ...] = RENDER_EPOCHS) -> tuple[list[Figure], dict]:
    """Each pane's redraw at 120x40 after runs of growing length (1000 is the
    longest run the epochs field accepts): figure 4 at 200 epochs, and how the
    cost grows with the run, which downsampling to the pane's width keeps flat."""
    from steplr_tui.runfolder import EpochEnd
    from steplr_tui.runfolder.losses import MinMaxSeries
    from steplr_tui.runfolder.params import TrainConfig
    from steplr_tui.viewer.app import SteplrApp
    from steplr_tui.viewer.widgets.plots import LossPlot, LrPlot, MetricPlot

    def run_of(epochs: int) -> tuple[MinMaxSeries, list, list[float]]:
        steps = 938
        series = MinMaxSeries()
        for i in range(epochs * steps):
            series.append(i / steps, 2.3 / (1 + i / steps) + (0.3 if i % 97 == 0 else 0.0))
        ends = [
            EpochEnd(e, 1e-3 * 0.1 ** (e // 2), 0.3, 90 + e / epochs, 0.4, e * 0.4)
            for e in range(1, epochs + 1)
        ]
        return series, ends, [e.lr for e in ends]

    async def measure() -> dict[int, dict[str, float]]:
        app = SteplrApp(TrainConfig(), train_fn=lambda *a: None, warm_up=False, cursor_blink=False)
        runs = {epochs: run_of(epochs) for epochs in epochs_list}
        times: dict[int, dict[str, list[float]]] = {e: {} for e in epochs_list}
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            panes = {
                "lr": app.screen.query_one(LrPlot),
                "loss": app.screen.query_one(LossPlot),
                "acc": app.screen.query_one(MetricPlot),
            }
            # Round-robin over run lengths and panes, so a slow spell on the shared
            # machine lands on all of them rather than on one run length.
            for _ in range(15):
                for epochs, (series, ends, lrs) in runs.items():
                    for name, pane in panes.items():
                        t0 = time.perf_counter()
                        if name == "lr":
                            pane.planned, pane.actual = lrs, lrs
                        elif name == "loss":
                            pane.series, pane.epochs, pane.span = series, ends, epochs
                        else:
                            pane.epochs, pane.span = ends, epochs
                        pane.plt.clear_figure()
                        pane.draw()
                        text = pane.render()  # textual-plotext builds and parses the plot
                        options = app.console.options.update_width(pane.size.width)
                        list(app.console.render(text, options))  # and into segments
                        times[epochs].setdefault(name, []).append(time.perf_counter() - t0)
        return {e: {n: median(ts) * 1000 for n, ts in by.items()} for e, by in times.items()}

    results = asyncio.run(measure())
    figures = []
    for name, ms in results[200].items():
        figures.append(
            Figure(
                f"redraw of the {name} pane, 200-epoch run",
                ms,
                "ms",
                "<= 15 ms",
                ms <= 15,
                ", ".join(
                    f"{e} epochs: {results[e][name]:.1f} ms" for e in epochs_list if e != 200
                ),
            )
        )
    # Flat: the longest run costs a redraw no more than a short one of a few
    # columns' worth of epochs (5 epochs draw fewer points than a full pane).
    base, longest = 50, max(epochs_list)
    growth = {name: results[longest][name] / results[base][name] for name in results[base]}
    worst = max(growth, key=growth.get)
    figures.append(
        Figure(
            f"redraw growth, {longest} / {base} epochs (worst pane)",
            growth[worst],
            "x",
            "<= 1.5x (flat)",
            growth[worst] <= 1.5,
            f"{worst} pane; " + ", ".join(f"{n} {g:.2f}x" for n, g in growth.items()),
        )
    )
    return figures, {str(e): results[e] for e in epochs_list}
