"""Every steplr-tui benchmark, measured side by side, as a table and as JSON.

Usage:
    STEPLR_TUI_DATA=../shared/data python benchmarks/run_all.py [--quick] [--device cpu|cuda]
        [--json PATH]

Each comparison is a ratio of two things measured in the same run, repeated, with
the median reported: the machines are shared and noisy, so absolute seconds alone
mean little. Needs full MNIST (STEPLR_TUI_DATA) and tmux for the UI figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PY = sys.executable


@dataclass
class Figure:
    """One measured figure, its target and whether it meets it."""

    name: str
    value: float
    unit: str
    target: str
    ok: bool | None  # None: reported, no target
    detail: str = ""


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def data_root() -> Path:
    root = os.environ.get("STEPLR_TUI_DATA")
    if not root or not (Path(root) / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        raise SystemExit("set STEPLR_TUI_DATA to a folder holding MNIST/raw/ (full MNIST)")
    return Path(root)


# ---- figure 1: training speed against the reference pipeline --------------------------


def ours(epochs: int, device: str, **overrides) -> list:
    from steplr_tui.run.trainer import train
    from steplr_tui.runfolder import EpochEnd
    from steplr_tui.runfolder.params import TrainConfig

    events = []
    config = TrainConfig(epochs=epochs, device=device, dataset="mnist", download=False, **overrides)
    end = train(config, events.append)
    if end.status.value != "COMPLETED":
        raise SystemExit(f"steplr-tui run failed: {end.message}")
    return [e for e in events if isinstance(e, EpochEnd)]


def figure_speed(runs: int, device: str) -> list[Figure]:
    from benchmarks.reference import run as reference_run

    root = str(data_root())
    ref_train, ref_eval, ref_acc, our_train, our_eval, our_acc = [], [], [], [], [], []
    for _ in range(runs):  # alternate, so drift on a shared machine hits both alike
        ref = reference_run(root, 5, device=device)
        ref_train += [r["train_s"] for r in ref]
        ref_eval += [r["eval_s"] for r in ref]
        ref_acc.append(ref[-1]["acc"])
        # A reference run takes about 20 s and ours about 1.5 s, so a short slow
        # spell on this shared machine can swallow one of ours whole: three of
        # ours per reference run give its median as many seconds to settle in.
        for _ in range(3):
            mine = ours(5, device)
            our_train += [e.seconds - e.eval_seconds for e in mine]
            our_eval += [e.eval_seconds for e in mine]
            our_acc.append(mine[-1].test_acc)
    train_ratio = median(ref_train) / median(our_train)
    eval_ratio = median(ref_eval) / median(our_eval)
    acc_gap = abs(median(ref_acc) - median(our_acc))
    cpu = device == "cpu"
    return [
        Figure(
            "train epoch speed-up vs DataLoader+ToTensor",
            train_ratio,
            "x",
            ">= 12x" if cpu else "reported",
            train_ratio >= 12 if cpu else None,
            f"reference {median(ref_train):.2f}s, steplr-tui {median(our_train):.3f}s per epoch",
        ),
        Figure(
            "test evaluation speed-up",
            eval_ratio,
            "x",
            ">= 100x" if cpu else "reported",
            eval_ratio >= 100 if cpu else None,
            f"reference {median(ref_eval) * 1000:.0f} ms, "
            f"steplr-tui {median(our_eval) * 1000:.1f} ms",
        ),
        Figure(
            "final accuracy gap after 5 epochs",
            acc_gap,
            "points",
            "<= 0.5",
            acc_gap <= 0.5,
            f"reference {median(ref_acc):.2f}%, steplr-tui {median(our_acc):.2f}%",
        ),
    ]


# ---- figure 2 and 5: the running TUI under tmux against headless -----------------------


def _epoch_seconds(runs_dir: Path) -> list[float]:
    (metrics,) = list(runs_dir.glob("*/metrics.jsonl"))
    lines = metrics.read_text().split("\n")[:-1]  # whole lines only
    return [json.loads(line)["seconds"] for line in lines]


def _wait_status(runs_dir: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for status in runs_dir.glob("*/status.json"):
            if json.loads(status.read_text()).get("status") in ("COMPLETED", "FAILED"):
                return
        time.sleep(0.2)
    raise SystemExit("timed out waiting for the run to finish")


def _wait_gone(pid: int | None, timeout: float = 10.0) -> None:
    """Until the process has exited (it still writes its record as it quits)."""
    deadline = time.monotonic() + timeout
    while pid is not None and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def _metrics_count(runs_dir: Path) -> int:
    files = list(runs_dir.glob("*/metrics.jsonl"))
    # Whole lines only: a run paused mid-write has half a line.
    return files[0].read_text().count("\n") if files else 0


def _wait_epochs(runs_dir: Path, epochs: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while _metrics_count(runs_dir) < epochs:
        if time.monotonic() > deadline:
            raise SystemExit(f"no {epochs} epochs in {runs_dir} after {timeout:g}s")
        time.sleep(0.05)


def _tmux_child(session: str, timeout: float = 10.0) -> int:
    """The pid of the process that the shell of a tmux session's pane started."""
    shell = subprocess.run(
        ["tmux", "display-message", "-p", "-t", session, "#{pane_pid}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-P", shell], capture_output=True, text=True).stdout
        if found.split():
            return int(found.split()[0])
        time.sleep(0.05)
    raise SystemExit(f"tmux session {session} started no process")


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
            _wait_epochs(h_runs, 2)
            os.kill(headless.pid, signal.SIGSTOP)
            subprocess.run(
                ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command],
                check=True,
            )
            tui_pid = _tmux_child(session)
            _wait_epochs(t_runs, 2)
            os.kill(tui_pid, signal.SIGSTOP)
            # A slice holds several epochs, and an epoch that straddles a pause
            # (so holds a whole slice) is told apart by its length.
            slice_s = max(slice_s, 6 * _epoch_seconds(h_runs)[1])
            # Slice k of a run holds its epochs from bounds[k] up to bounds[k + 1].
            pids = {"headless": headless.pid, "tui": tui_pid}
            dirs = {"headless": h_runs, "tui": t_runs}
            bounds: dict[str, list[int]] = {"headless": [], "tui": []}
            bounds["headless"].append(_metrics_count(h_runs) + 1)  # the epoch in flight straddles
            bounds["tui"].append(_metrics_count(t_runs) + 1)
            for turn in range(2 * slices):
                mode = "headless" if turn % 2 == 0 else "tui"
                os.kill(pids[mode], signal.SIGCONT)
                time.sleep(slice_s)
                os.kill(pids[mode], signal.SIGSTOP)
                bounds[mode].append(_metrics_count(dirs[mode]))
            seconds = {mode: _epoch_seconds(dirs[mode])[: bounds[mode][-1]] for mode in dirs}
        finally:
            for pid in (headless.pid, tui_pid):
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGCONT)
            headless.kill()
            headless.wait()
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
            _wait_gone(tui_pid)

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
            while _metrics_count(Path(tmp)) < 1 and time.monotonic() < deadline:
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
            while _metrics_count(Path(tmp)) < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            start_bytes, start = len(app.output), time.monotonic()
            # While training: up to the end of the next-to-last epoch, before the
            # run's end repaints every pane once more.
            _wait_epochs(Path(tmp), epochs - 1)
            used, took = len(app.output) - start_bytes, time.monotonic() - start
            _wait_status(Path(tmp), 600)
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


def first_frame_seconds(
    args: list[str], env: dict[str, str], program=None, shown: tuple[bytes, ...] = (b"Quit",)
) -> float:
    """From the command to its first full screen in a 120x40 pty: the footer is drawn
    last, and its "Quit" means the whole screen is out (and so do `shown`'s texts)."""
    from tests.helpers import PtyProcess

    start = time.monotonic()
    app = PtyProcess(args, env, size=(120, 40), program=program)
    try:
        while not all(text in app.output for text in shown):
            if time.monotonic() - start > 30:
                raise SystemExit("no first frame within 30 s")
            time.sleep(0.005)
        return time.monotonic() - start
    finally:
        app.send(b"\x11")
        app.wait_exit(5)
        app.close()


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
    frames, bare, imports, textual_imports = [], [], [], []
    bare_app = [PY, str(ROOT / "benchmarks" / "bare_app.py")]
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            bare.append(first_frame_seconds([], {}, program=bare_app))
            frames.append(first_frame_seconds([], {"STEPLR_TUI_RUNS": tmp}))
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
    from steplr_tui.viewer.widgets.plots import AccuracyPlot, LossPlot, LrPlot

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
                "acc": app.screen.query_one(AccuracyPlot),
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


# ---- figure 6: memory --------------------------------------------------------------------

BARE = """
import resource, sys, torch
from torch import nn
from torchvision import datasets
root = sys.argv[1]
tr = datasets.MNIST(root, train=True, download=False)
te = datasets.MNIST(root, train=False, download=False)
x, y = tr.data.reshape(len(tr.data), -1), tr.targets
tx, ty = te.data.reshape(len(te.data), -1), te.targets
torch.manual_seed(0)
model = nn.Linear(784, 10)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(5):
    perm = torch.randperm(len(x))
    for i in range(0, len(x), 64):
        idx = perm[i:i + 64]
        loss = loss_fn(model(x[idx].float().div_(255)), y[idx])
        opt.zero_grad(); loss.backward(); opt.step()
    sched.step()
    with torch.no_grad():
        acc = (model(tx.float().div_(255)).argmax(1) == ty).float().mean().item()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

OURS = """
import resource, runpy, sys
sys.argv = ["steplr-tui", "--headless", "--epochs", "5", "--dataset", "mnist", "--no-download",
            "--device", "cpu"]
try:
    runpy.run_module("steplr_tui", run_name="__main__")
except SystemExit:
    pass
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def figure_memory(runs: int) -> list[Figure]:
    root = str(data_root())
    bare, mine = [], []
    for _ in range(runs):
        out = subprocess.run([PY, "-c", BARE, root], capture_output=True, text=True, check=True)
        bare.append(int(out.stdout.split()[-1]) / 1024)
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "STEPLR_TUI_DATA": root, "STEPLR_TUI_RUNS": tmp}
            out = subprocess.run(
                [PY, "-c", OURS], capture_output=True, text=True, check=True, env=env
            )
            mine.append(int(out.stdout.split()[-1]) / 1024)
    ratio = median(mine) / median(bare)
    return [
        Figure(
            "peak RSS, headless 5 epochs / bare script",
            ratio,
            "x",
            "<= 1.2x",
            ratio <= 1.2,
            f"bare {median(bare):.0f} MB, steplr-tui {median(mine):.0f} MB",
        )
    ]


# ---- figure 7: scaling -------------------------------------------------------------------


def figure_scaling(device: str, quick: bool) -> tuple[list[Figure], dict]:
    import torch

    from steplr_tui.run.datasets import load_mnist
    from steplr_tui.run.trainer import train
    from steplr_tui.runfolder import EpochEnd
    from steplr_tui.runfolder.params import TrainConfig

    data = load_mnist(data_root(), download=False)
    table: dict = {"batch": {}, "data": {}}

    def epoch_times(config, d) -> list[float]:
        """Train seconds of each epoch after the first (which warms caches up)."""
        events = []
        train(config, events.append, data=d)
        ends = [e for e in events if isinstance(e, EpochEnd)]
        return [e.seconds - e.eval_seconds for e in ends[1:]] or [ends[0].seconds]

    batches = (16, 64, 256, 1024, 4096)
    for bs in batches:
        config = TrainConfig(epochs=2 if quick else 3, batch_size=bs, device=device)
        seconds = median(epoch_times(config, data))
        steps = -(-len(data.train_x) // bs)
        table["batch"][bs] = {
            "epoch_s": seconds,
            "per_step_us": seconds / steps * 1e6,
            "samples_per_s": len(data.train_x) / seconds,
        }
    factors = (1, 2, 4)
    repeated = {
        factor: type(data)(
            data.train_x.repeat(factor, 1, 1),
            data.train_y.repeat(factor),
            data.test_x,
            data.test_y,
            f"MNIST x{factor}",
            data.source,
        )
        for factor in factors
    }
    # Each round measures all three sizes back to back (in alternating order) and
    # compares them within the round; the median over rounds is reported, so a
    # slow spell on the shared machine spoils one round, not the figure.
    samples: dict[int, list[float]] = {factor: [] for factor in factors}
    vs_linear: dict[int, list[float]] = {factor: [] for factor in factors}
    for round_ in range(1 if quick else 3):
        seconds = {}
        for factor in factors if round_ % 2 == 0 else factors[::-1]:
            config = TrainConfig(epochs=2 if quick else 3, batch_size=64, device=device)
            seconds[factor] = median(epoch_times(config, repeated[factor]))
            samples[factor].append(seconds[factor])
        for factor in factors:
            vs_linear[factor].append(seconds[factor] / (factor * seconds[1]))
    for factor in factors:
        table["data"][factor] = {
            "epoch_s": median(samples[factor]),
            "vs_linear": median(vs_linear[factor]),
        }
    linear = max(abs(table["data"][f]["vs_linear"] - 1) for f in (2, 4))
    del torch
    figures = [
        Figure(
            "epoch time, 4x data / (4 x 1x data)",
            table["data"][4]["vs_linear"],
            "x",
            "~1.0 (linear)",
            linear <= 0.15,
            f"worst deviation from linear {linear:.0%}",
        ),
        Figure(
            "per-step overhead at batch 16",
            table["batch"][16]["per_step_us"],
            "us/step",
            "reported",
            None,
            f"batch 4096: {table['batch'][4096]['per_step_us']:.0f} us/step",
        ),
    ]
    return figures, table


# ---- figure 8: does torch.compile pay off, warm-up included? ---------------------------


def figure_compile(device: str, quick: bool) -> list[Figure]:
    """steplr-tui's step against torch.compile of the reference step, over the steps
    of a 5-epoch reference run, compile warm-up included."""
    import torch

    from steplr_tui.run.fast_step import autograd_step, make_train_step
    from steplr_tui.run.trainer import build_model, resolve_device
    from steplr_tui.runfolder.params import TrainConfig

    dev = resolve_device(device)
    torch.manual_seed(0)
    # Timing only: random pixels in MNIST's shape do the same arithmetic.
    x = torch.rand(60_000, 784, device=dev)
    y = torch.randint(0, 10, (60_000,), device=dev)
    run_steps = 5 * -(-60_000 // 64)
    timed = 300 if quick else 1000

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def measure(kind: str) -> tuple[float, float]:
        model, optimizer, _ = build_model(TrainConfig(), dev)
        if kind == "ours":
            step, _ = make_train_step(model, optimizer, x[:64], y[:64])
        else:
            step = torch.compile(autograd_step(model, optimizer))
        batches = torch.randperm(60_000, device=dev).split(64)[:-1]
        t0 = time.perf_counter()
        step(x[batches[0]], y[batches[0]])  # the first call compiles
        sync()
        warm = time.perf_counter() - t0
        for idx in batches[1:20]:  # and a few more settle recompiles and caches
            step(x[idx], y[idx])
        sync()
        t0 = time.perf_counter()
        for i in range(timed):
            idx = batches[20 + i % (len(batches) - 20)]
            step(x[idx], y[idx])
        sync()
        return warm, (time.perf_counter() - t0) / timed

    _, ours = measure("ours")
    warm, compiled = measure("compiled")
    ratio = (warm + run_steps * compiled) / (run_steps * ours)
    pays = compiled < ours
    detail = (
        f"warm-up {warm:.1f} s; step {compiled * 1e6:.0f} us vs steplr-tui {ours * 1e6:.0f} us"
        + (
            f"; breaks even after {warm / (ours - compiled):.0f} steps"
            if pays
            else "; never breaks even"
        )
    )
    return [
        Figure(
            "torch.compile, 5-epoch run with warm-up / steplr-tui",
            ratio,
            "x",
            "reported",
            None,
            detail,
        )
    ]


def print_table(figures: list[Figure]) -> None:
    width = max(len(f.name) for f in figures)
    print(f"{'figure':{width}}  {'value':>10}  {'target':>14}  result")
    for f in figures:
        result = "reported" if f.ok is None else ("pass" if f.ok else "falls short")
        print(
            f"{f.name:{width}}  {f.value:>8.3g} {f.unit:<3}  {f.target:>12}  {result}  {f.detail}"
        )


def write_results(
    out: Path, command: str, body: dict, started: float | None = None, **machine: object
) -> None:
    """One benchmark's JSON in benchmarks/results/: when, the command, the machine
    (with `machine`'s extra keys), then `body`."""
    import torch

    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
        "command": command,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "load_average": list(os.getloadavg()),
            **machine,
        },
        **body,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--json", type=Path, help="where to write the JSON (default: results/)")
    parser.add_argument(
        "--only",
        help="comma-separated figure groups: "
        "speed,ui,bytes,ttff,render,memory,scaling,compile,folder",
    )
    args = parser.parse_args()
    reps = 1 if args.quick else 3
    groups = (
        args.only.split(",")
        if args.only
        else ["speed", "ui", "bytes", "ttff", "render", "memory", "scaling", "compile", "folder"]
    )
    if args.device == "cuda":
        groups = [g for g in groups if g in ("speed", "scaling", "compile")]
    figures: list[Figure] = []
    scaling = render = None
    started = time.time()
    for group in groups:
        t0 = time.monotonic()
        if group == "speed":
            figures += figure_speed(1 if args.quick else 2, args.device)
        elif group == "ui":
            figures += figure_ui_overhead(4 if args.quick else 20)
            figures += figure_key_latency(6 if args.quick else 20)
        elif group == "bytes":
            figures += figure_bytes(10 if args.quick else 40)
        elif group == "ttff":
            figures += figure_first_frame(reps + 2)
        elif group == "render":
            more, render = figure_render()
            figures += more
        elif group == "memory":
            figures += figure_memory(reps)
        elif group == "scaling":
            more, scaling = figure_scaling(args.device, args.quick)
            figures += more
        elif group == "compile":
            figures += figure_compile(args.device, args.quick)
        elif group == "folder":  # the run folder: detach, attach, viewers (run_folder.py)
            from benchmarks.run_folder import figures as folder_figures

            figures += folder_figures(args.quick)
        print(f"[{group}: {time.monotonic() - t0:.0f}s]", file=sys.stderr, flush=True)
    print_table(figures)
    out = (
        args.json
        or ROOT / "benchmarks" / "results" / f"{args.device}-{time.strftime('%Y-%m-%d')}.json"
    )
    write_results(
        out,
        " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        {
            "figures": [asdict(f) for f in figures],
            "scaling": scaling,
            "render_ms_by_epochs": render,
        },
        started=started,
        device=args.device,
    )


if __name__ == "__main__":
    main()
