"""Runs that outlive the terminal, with the real program in subprocesses and ptys:
detach, attach, steer and stop from a viewer and from the shell, several viewers,
a killed run, garbage in control.jsonl, a full disk."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steplr_tui.runfolder import CONTROL_FILE, EVENTS_FILE, Status
from steplr_tui.runfolder.reader import list_runs, read_run
from steplr_tui.runfolder.schedule import ScheduleEdit, lrs_with_edits
from tests.helpers import PtyProcess, cli, detach, epochs_done, kill_run, wait_status, wait_until

SAMPLE = ["--dataset", "sample", "--device", "cpu", "--threads", "1"]


def env_for(runs_dir: Path) -> dict[str, str]:
    # One thread a process: a run and its viewers share two cores.
    return {
        "STEPLR_TUI_RUNS": str(runs_dir),
        "STEPLR_TUI_DATA": str(runs_dir / "no-data"),
        "OMP_NUM_THREADS": "1",
    }


def decisions(path: Path) -> list[dict]:
    lines = (path / EVENTS_FILE).read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["type"] == "decision"]


def test_detach_prints_where_the_run_is_without_importing_torch(tmp_path: Path):
    code = (
        "import sys; from steplr_tui.cli import main; rc = main(sys.argv[1:]); "
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH'); sys.exit(rc)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "--detach", *SAMPLE, "--epochs", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env_for(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("NO-TORCH")
    (run,) = list_runs(tmp_path)
    for text in (run.name, str(run.path), f"steplr-tui attach {run.name}", "pid"):
        assert text in result.stdout
    wait_status(run.path, Status.COMPLETED, 120)
    log = (run.path / "output.log").read_text()
    assert "Epoch 1, Loss:" in log and "completed 1 epoch in" in log


@pytest.mark.skipif(not Path("/usr/bin/tmux").exists(), reason="needs tmux to close a terminal")
def test_a_detached_run_goes_on_when_its_terminal_closes(tmp_path: Path):
    session = f"steplr-detach-{os.getpid()}"
    env = " ".join(f"{k}={v}" for k, v in env_for(tmp_path).items())
    command = (
        f"env {env} {sys.executable} -m steplr_tui --detach {' '.join(SAMPLE)} "
        "--epochs 4 --batch-size 32; sleep 60"
    )
    subprocess.run(["tmux", "new-session", "-d", "-s", session, command], check=True)
    try:
        wait_until(lambda: list_runs(tmp_path), 30, "the run folder")
    finally:
        # The terminal hangs up: what was started in it goes (the sleep), the run stays.
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    (run,) = list_runs(tmp_path)
    wait_status(run.path, Status.COMPLETED, 180)
    assert epochs_done(run.path) == 4


def test_attach_steer_and_stop_from_a_viewer_in_a_pty(tmp_path: Path):
    path = detach(tmp_path, "--epochs", "200", "--batch-size", "16")
    wait_until(lambda: epochs_done(path) >= 1, 120, "an epoch")
    view = PtyProcess(["attach", path.name], env_for(tmp_path), size=(120, 40))
    try:
        wait_until(lambda: b"attached to" in view.output, 30, "the viewer")
        # The lr field has focus: a burst of keys, as a laggy link delivers them.
        view.send(b"\x7f" * 12 + b"0.0002\r")
        wait_until(lambda: any(d["decision"] == "applied" for d in decisions(path)), 60, "the edit")
        after = next(d["epoch"] for d in decisions(path) if d["decision"] == "applied")
        wait_until(lambda: epochs_done(path) > after, 60, "an epoch with the new lr")
        view.send(b"\x13")  # ctrl+s
        wait_status(path, Status.STOPPED, 30)
        wait_until(lambda: "elapsed · stopped".encode() in view.output, 10, "the viewer to say so")
        view.send(b"\x11")  # ctrl+q
        assert view.wait_exit(10) == 0
    finally:
        view.close()
        kill_run(path)
    run = read_run(path)
    edit = next(m for m in run.metrics if "edit" in m)
    assert edit["edit"] == {"lr": 0.0002}
    assert run.metrics[edit["epoch"]]["lr"] == 0.0002 and run.has_checkpoint


def test_two_viewers_and_concurrent_shell_edits_lose_nothing_and_apply_nothing_twice(
    tmp_path: Path,
):
    path = detach(tmp_path, "--epochs", "200", "--batch-size", "16", "--step-size", "1000")
    wait_until(lambda: epochs_done(path) >= 1, 120, "an epoch")
    viewers = [PtyProcess(["attach", path.name], env_for(tmp_path), (100, 30)) for _ in range(2)]
    try:
        for v in viewers:
            wait_until(lambda v=v: b"attached to" in v.output, 30, "a viewer")
        edits = [ScheduleEdit(gamma=round(0.5 + 0.05 * i, 2)) for i in range(6)]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "steplr_tui", "edit", path.name, "--gamma", str(e.gamma)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, **env_for(tmp_path)},
            )
            for e in edits
        ]
        outs = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        assert all("edit queued: gamma" in out for out, _ in outs)
        queued = [d for d in decisions(path) if d["decision"] == "queued"]
        assert len({d["request"] for d in queued}) == 6
        wait_until(
            lambda: sum(d["decision"] == "applied" for d in decisions(path)) == 6, 60, "all applied"
        )
        applied = [d for d in decisions(path) if d["decision"] == "applied"]
        assert sorted(d["request"] for d in applied) == sorted(d["request"] for d in queued)
        # Merged in the order the run read them: the last one's gamma is what runs now,
        # and both viewers say so.
        boundaries = len({d["epoch"] for d in applied})
        final = f"gamma {applied[-1]['edit']['gamma']:g} · {boundaries} edit(s)".encode()
        for v in viewers:
            wait_until(lambda v=v: final in v.output, 20, "the viewer to show the edit")
        subprocess.run(
            [sys.executable, "-m", "steplr_tui", "stop", path.name],
            env={**os.environ, **env_for(tmp_path)},
            timeout=30,
            check=True,
        )
    finally:
        for v in viewers:
            v.close()
        kill_run(path)
    assert read_run(path).status is Status.STOPPED


def test_kill_9_with_a_viewer_attached_then_resume(tmp_path: Path):
    path = detach(tmp_path, "--epochs", "8", "--batch-size", "8", "--step-size", "3")
    view = PtyProcess(["attach", path.name], env_for(tmp_path), size=(120, 40))
    try:
        wait_until(lambda: b"attached to" in view.output, 30, "the viewer")
        wait_until(lambda: epochs_done(path) >= 2, 120, "two epochs (a checkpoint)")
        os.kill(read_run(path).pid, signal.SIGKILL)
        killed = time.monotonic()
        wait_until(lambda: b"INTERRUPTED" in view.output, 10, "the viewer to say INTERRUPTED")
        assert time.monotonic() - killed < 3.0 + 1.0  # within 3 s, give or take the machine
        assert read_run(path).status is Status.INTERRUPTED
    finally:
        view.close()
    result = cli(tmp_path, "--resume", path.name, "--detach")
    assert result.returncode == 0, result.stderr
    wait_status(path, Status.COMPLETED, 240)
    run = read_run(path)
    assert [m["epoch"] for m in run.metrics] == list(range(1, 9))
    assert [m["lr"] for m in run.metrics] == lrs_with_edits(0.001, 3, 0.1, 8, {})


def test_garbage_in_control_jsonl_is_refused_and_the_run_goes_on(tmp_path: Path):
    path = detach(tmp_path, "--epochs", "3", "--batch-size", "32")
    with open(path / CONTROL_FILE, "ab") as fh:
        fh.write(
            b"rm -rf /\n{not json\n" + b"[" * 10000 + b"\n" + b'{"type":"edit","id":"x","lr":-1}\n'
        )
    wait_status(path, Status.COMPLETED, 180)
    refused = [d for d in decisions(path) if d["decision"] == "refused"]
    assert len(refused) == 4
    assert "lr must be a number in (0, 1000]" in refused[-1]["reason"]
    assert "over the 4096-byte limit" in refused[2]["reason"]
    assert epochs_done(path) == 3


def test_a_full_disk_fails_the_run_with_the_message_shown_in_the_viewer(tmp_path: Path):
    # A small tmpfs as the runs folder, filled while the run trains (a link to
    # /dev/full is no longer followed: run-folder files are opened O_NOFOLLOW).
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for a full disk: {made.stderr.decode().strip()}")
    view = None
    try:
        path = detach(mount, "--epochs", "50", "--batch-size", "16")
        wait_until(lambda: epochs_done(path) >= 1, 120, "an epoch")
        view = PtyProcess(["attach", path.name], env_for(mount), size=(120, 40))
        wait_until(lambda: b"attached to" in view.output, 30, "the viewer")
        with open(mount / "filler", "wb") as fh, contextlib.suppress(OSError):
            while True:  # every write now fails: ENOSPC
                fh.write(b"\0" * 65536)
                fh.flush()
        wait_status(path, Status.FAILED, 60)
        assert "No space left on device" in read_run(path).reason
        assert "free some disk space" in read_run(path).reason
        wait_until(lambda: b"FAILED" in view.output, 30, "the viewer to say FAILED")
    finally:
        if view is not None:
            view.close()
        for run in list_runs(mount):
            kill_run(run.path)
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_stop_and_edit_say_clearly_when_there_is_nothing_to_do(tmp_path: Path):
    path = detach(tmp_path, "--epochs", "1", "--batch-size", "64")
    wait_status(path, Status.COMPLETED, 120)
    stop = cli(tmp_path, "stop", path.name)
    assert stop.returncode == 1 and "is not running (COMPLETED)" in stop.stderr
    bad = cli(tmp_path, "edit", path.name, "--gamma", "2")
    assert bad.returncode == 2 and "--gamma must be a number in (0, 1] (got '2')" in bad.stderr
    none = cli(tmp_path, "edit", path.name)
    assert none.returncode == 2 and "at least one of" in none.stderr
    missing = cli(tmp_path, "stop", "nope")
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr
    listed = cli(tmp_path, "--list-runs")
    assert "COMPLETED" in listed.stdout and "1 run in" in listed.stdout


# A script in the usual shape: it evaluates after its batch loop, stop or not.
EVALUATING_SCRIPT = """
import sys
import time

import torch
from torch import nn

import steplr_tui

torch.manual_seed(0)
model = nn.Linear(8, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
x, y = torch.randn(16, 8), torch.randint(0, 2, (16,))
with steplr_tui.track(optimizer, scheduler, epochs=3) as run:
    print(run.path, flush=True)
    for epoch in range(run.epoch, 4):
        for step in range(100000):
            if run.should_stop():
                break
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            run.log_batch(loss)
            time.sleep(0.005)
        time.sleep(float(sys.argv[1]))  # its evaluation: longer than `stop --wait 1`
        scheduler.step()
        run.end_epoch(test_acc=50.0)
"""


def test_stop_of_a_script_that_evaluates_after_its_batch_loop_is_no_failure(tmp_path: Path):
    script = tmp_path / "evaluating.py"
    script.write_text(EVALUATING_SCRIPT)
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, str(script), "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env_for(tmp_path), "PYTHONPATH": str(root)},
    )
    try:
        path = Path(proc.stdout.readline().strip())
        assert path.name, proc.stderr.read()
        wait_until(lambda: read_run(path).status is Status.RUNNING, 30, "the script to run")
        first = cli(tmp_path, "stop", path.name, "--wait", "1")
        said = first.stdout + first.stderr
        # It took the stop at once, then evaluated for 4 s: that is no failure.
        assert first.returncode == 0, said
        assert f"{path.name} took the stop in epoch 1" in said
        assert "is finishing epoch 1" in said and "ends STOPPED" in said
        assert "kill" not in said and "stuck" not in said
        assert read_run(path).status is Status.RUNNING  # still evaluating
        # Asked again, it waits for the end: the run answered once, and says nothing more.
        second = cli(tmp_path, "stop", path.name, "--wait", "30")
        said = second.stdout + second.stderr
        assert second.returncode == 0, said
        assert "took a stop already, in epoch 1" in said
        assert f"{path.name} STOPPED after epoch 0" in said
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    info = read_run(path)
    assert info.status is Status.STOPPED and "stopped by shell" in info.reason
    bad = cli(tmp_path, "stop", path.name, "--wait", "soon")
    assert bad.returncode == 2 and "--wait must be a number of seconds" in bad.stderr


def test_stop_of_a_run_that_never_reads_it_says_why_and_keeps_it_asked(tmp_path: Path):
    """A live process that has not read the stop (busy between batches, or a loop without
    run.should_stop()): exit 1, with what may be going on, and no advice to kill it."""
    import io

    from steplr_tui.cli.shell import CommandError, stop_run
    from steplr_tui.run.record import RunRecord
    from steplr_tui.runfolder.params import TrainConfig

    record = RunRecord.create(tmp_path, TrainConfig().as_dict(), {"kind": "script"})
    record.mark_running(pid=os.getpid())  # alive: this very process, which reads nothing
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        stop_run(record.path, out, timeout=0.3)
    said = str(raised.value)
    assert "has not read the stop within 0.3 s" in said and "The stop stays asked" in said
    assert "kill" not in said and "stuck" not in said
    (line,) = (record.path / CONTROL_FILE).read_text().splitlines()
    assert json.loads(line)["type"] == "stop"
    assert stop_run(record.path, out, timeout=0) == 0  # --wait 0: asks and returns
