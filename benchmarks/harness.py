"""The benchmarks' harness: figures, the table and the JSON they end in, and the helpers
that drive steplr-tui in processes, ptys and tmux.

The scripts in benchmarks/ run as files (`python benchmarks/sweep.py`) and import this
module as `harness`; it puts the repository first on the path, so they measure this
checkout's steplr_tui and can drive it with tests/helpers.py's pty.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PY = sys.executable
RESULTS = ROOT / "benchmarks" / "results"


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


# ---- processes and their run folders --------------------------------------------------


def epoch_seconds(runs_dir: Path) -> list[float]:
    (metrics,) = list(runs_dir.glob("*/metrics.jsonl"))
    lines = metrics.read_text().split("\n")[:-1]  # whole lines only
    return [json.loads(line)["seconds"] for line in lines]


def wait_status(runs_dir: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for status in runs_dir.glob("*/status.json"):
            if json.loads(status.read_text()).get("status") in ("COMPLETED", "FAILED"):
                return
        time.sleep(0.2)
    raise SystemExit("timed out waiting for the run to finish")


def wait_gone(pid: int | None, timeout: float = 10.0) -> None:
    """Until the process has exited (it still writes its record as it quits)."""
    deadline = time.monotonic() + timeout
    while pid is not None and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def metrics_count(runs_dir: Path) -> int:
    files = list(runs_dir.glob("*/metrics.jsonl"))
    # Whole lines only: a run paused mid-write has half a line.
    return files[0].read_text().count("\n") if files else 0


def wait_epochs(runs_dir: Path, epochs: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while metrics_count(runs_dir) < epochs:
        if time.monotonic() > deadline:
            raise SystemExit(f"no {epochs} epochs in {runs_dir} after {timeout:g}s")
        time.sleep(0.05)


def tmux_child(session: str, timeout: float = 10.0) -> int:
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
