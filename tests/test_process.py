"""The real program under kill -9, SIGTERM, SIGHUP and quit, in subprocesses and a pty.

Training uses the bundled sample, so these run anywhere, with no MNIST and no network.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steplr_tui.run.checkpoint import load_checkpoint
from steplr_tui.runfolder import CHECKPOINT_FILE
from steplr_tui.runfolder.reader import list_runs, read_run
from steplr_tui.runfolder.schedule import step_lrs
from tests.helpers import PtyProcess, metrics_lines, wait_until

LONG_RUN = ["--dataset", "sample", "--epochs", "200", "--batch-size", "64", "--device", "cpu"]
LEAVE_ALT_SCREEN = b"\x1b[?1049l"


def env_for(runs_dir: Path) -> dict[str, str]:
    return {"STEPLR_TUI_RUNS": str(runs_dir), "STEPLR_TUI_DATA": str(runs_dir / "no-data")}


def headless(args, runs_dir, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "steplr_tui", "--headless", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env_for(runs_dir)},
        **kwargs,
    )


def test_kill_9_keeps_every_completed_epoch_and_resume_finishes(tmp_path: Path):
    args = [
        "--dataset",
        "sample",
        "--epochs",
        "10",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--step-size",
        "3",
        "--gamma",
        "0.5",
    ]
    proc = headless(args, tmp_path)
    try:
        wait_until(lambda: metrics_lines(tmp_path) >= 3, 120, "three epochs on disk")
        proc.kill()  # SIGKILL: no handler runs
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    (run,) = list_runs(tmp_path)
    assert run.status == "INTERRUPTED"
    epochs = [m["epoch"] for m in run.metrics]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= 3
    state = load_checkpoint(run.path / CHECKPOINT_FILE)  # loads: never a torn checkpoint
    assert state["epoch"] in (len(epochs), len(epochs) - 1)

    resumed = subprocess.run(
        [sys.executable, "-m", "steplr_tui", "--headless", "--resume", run.name],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env_for(tmp_path)},
    )
    assert resumed.returncode == 0, resumed.stderr
    after = read_run(run.path)
    assert after.status == "COMPLETED"
    assert [m["epoch"] for m in after.metrics] == list(range(1, 11))
    assert [m["lr"] for m in after.metrics] == step_lrs(0.001, 3, 0.5, 10)
    assert not list(run.path.glob(".*.tmp"))
    # Epochs the checkpoint covered are kept as they were.
    assert after.metrics[: state["epoch"]] == run.metrics[: state["epoch"]]


def test_headless_sigterm_stops_cleanly(tmp_path: Path):
    proc = headless(LONG_RUN, tmp_path)
    wait_until(lambda: metrics_lines(tmp_path) >= 1, 120, "an epoch on disk")
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=5)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "run stopped: stopped by SIGTERM" in err and "Traceback" not in err
    (run,) = list_runs(tmp_path)
    assert run.status == "STOPPED" and run.has_checkpoint


def test_resume_flag_errors_are_one_line(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "steplr_tui", "--resume", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env_for(tmp_path)},
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no run 'nope'" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "steplr_tui", "--resume", "x", "--lr", "0.1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env_for(tmp_path)},
    )
    assert result.returncode == 2 and "drop --lr" in result.stderr


@pytest.mark.parametrize("how", ["SIGTERM", "SIGHUP", "ctrl+q"])
def test_tui_stops_the_run_and_exits_promptly(tmp_path: Path, how: str):
    app = PtyProcess(["--start", *LONG_RUN], env_for(tmp_path))
    try:
        wait_until(lambda: metrics_lines(tmp_path) >= 1, 120, "an epoch on disk")
        started = time.monotonic()
        if how == "ctrl+q":
            app.send(b"\x11")
        else:
            app.proc.send_signal(getattr(signal, how))
        code = app.wait_exit(5.0)
        took = time.monotonic() - started
        assert code is not None, f"still running 5 s after {how}"
        if how == "ctrl+q":
            assert took < 5.0 and code == 0  # promptly; benchmarks/ measure how promptly
        else:
            assert code == 128 + getattr(signal, how)
        # The terminal was restored (the reader thread may still be draining the pty).
        wait_until(lambda: LEAVE_ALT_SCREEN in app.output, 5, "the alternate screen left")
        assert b"Traceback" not in app.output
    finally:
        app.close()
    (run,) = list_runs(tmp_path)
    assert run.status == "STOPPED" and run.has_checkpoint
    expected = "the app quit" if how == "ctrl+q" else how
    assert expected in run.reason


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux to hang up a real terminal")
def test_a_hung_up_terminal_never_leaves_the_process_behind(tmp_path: Path):
    """An SSH session that drops as a run finishes. tmux's kill-session hangs the
    terminal up the way a dropped connection does (SIGHUP, then SIGCONT, then the
    terminal is gone), and Textual's shutdown once waited forever on a writer
    thread for that terminal. The process must end, and the record stay final."""
    pid_file = tmp_path / "pid"
    env = " ".join(f"{k}={v}" for k, v in env_for(tmp_path).items())
    command = (
        f"echo $$ > {pid_file}; exec env {env} {sys.executable} -m steplr_tui "
        "--start --dataset sample --epochs 2 --device cpu"
    )
    session = f"steplr-hangup-{os.getpid()}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command],
        check=True,
    )
    try:
        wait_until(
            lambda: bool(list_runs(tmp_path)) and list_runs(tmp_path)[0].status == "COMPLETED",
            120,
            "the run to complete",
        )
        pid = int(pid_file.read_text())
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    deadline = time.monotonic() + 20
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the app was still running 20 s after its terminal hung up")
    (run,) = list_runs(tmp_path)
    assert run.status == "COMPLETED"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes; tmux reaps it.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return False
    return True


def test_a_terminal_that_vanishes_without_a_hangup_never_leaves_the_app_spinning(tmp_path):
    """A pty closed under the app with no SIGHUP (no controlling terminal): Textual's
    writer then blocks the event loop, and its input thread spins. The app must notice
    and leave, and a run it trains must still end with its record final."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "steplr_tui", "--start", *LONG_RUN],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, **env_for(tmp_path), "TERM": "xterm-256color"},
        start_new_session=True,
    )
    os.close(slave)
    try:
        wait_until(lambda: metrics_lines(tmp_path) >= 1, 120, "an epoch on disk")
        os.close(master)
        assert proc.wait(20) == 128 + signal.SIGHUP
    finally:
        if proc.poll() is None:
            proc.kill()
    (run,) = list_runs(tmp_path)
    assert run.status == "STOPPED" and run.has_checkpoint
