"""What a run promises when its folder is damaged, its disk fills, it is killed, or its
folder is shared: one trainer per folder (the folder's lock), a FAILED status when
the disk fills, torn lines never swallowing the next, files never opened through
links or from another user, and nothing of a record driving the terminal or the code
it exports. Real processes where the promise is about processes."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from steplr_tui.cli.shell import CommandError, edit_run, print_runs, send, stop_run
from steplr_tui.run.control import ControlReader, Steering
from steplr_tui.run.jobs import Job, run_job
from steplr_tui.run.record import RecordError, RunRecord
from steplr_tui.runfolder import (
    CONFIG_FILE,
    CONTROL_FILE,
    EVENTS_FILE,
    METRICS_FILE,
    STATUS_FILE,
    EditRequest,
    EpochEnd,
    Notice,
    RunEnded,
    Status,
    StopRequest,
    append_line,
    encode_request,
)
from steplr_tui.runfolder.files import UnsafeFile, open_file
from steplr_tui.runfolder.history import read_history
from steplr_tui.runfolder.lock import LOCK_FILE, FolderLocked, RunLock, lock_state
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.reader import list_runs, read_metrics, read_run, read_status
from steplr_tui.runfolder.schedule import ScheduleEdit
from tests.synthetic import synthetic_data

ROOT = Path(__file__).resolve().parents[1]
CONFIG = {"optimizer": "adam", "lr": 0.01, "step_size": 2, "gamma": 0.5, "epochs": 3}


def new_record(tmp_path: Path, config: dict | None = None) -> RunRecord:
    return RunRecord.create(tmp_path, config or CONFIG, {"kind": "builtin"})


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from steplr_tui.run.record import RunRecord
    record = RunRecord(Path(sys.argv[1]))
    record.lock()
    record.mark_running()
    print("locked", flush=True)
    time.sleep(300)
    """
)


def hold_lock(folder: Path) -> subprocess.Popen:
    """Another process that writes the folder: it holds its lock and says RUNNING."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


# ---- 1. one trainer per folder ---------------------------------------------------------


def test_the_lock_is_exclusive_and_a_probe_says_whether_it_is_held(tmp_path: Path):
    record = new_record(tmp_path)
    assert lock_state(record.path) is None  # no writer yet: no lock file
    first = RunLock.acquire(record.path)
    assert lock_state(record.path) is True
    with pytest.raises(FolderLocked, match="one trainer per run folder"):
        RunLock.acquire(record.path, wait=0.1)
    first.release()
    assert lock_state(record.path) is False
    RunLock.acquire(record.path).release()


def test_kill_9_of_the_writer_frees_the_lock_and_the_run_reads_interrupted(tmp_path: Path):
    record = new_record(tmp_path)
    proc = hold_lock(record.path)
    try:
        assert read_status(record.path)[0] is Status.RUNNING
        # Its status.json emptied (an editor's crash, a sync tool): still alive.
        (record.path / STATUS_FILE).write_text("")
        status, reason, _ = read_status(record.path)
        assert status is Status.RUNNING and "holds the folder's lock" in reason
        # A second writer is refused, and writes nothing.
        before = (record.path / EVENTS_FILE).read_bytes()
        end = run_job(Job(TrainConfig(epochs=1, device="cpu"), resume=record.path), lambda e: None)
        assert end.status is Status.FAILED and "one trainer per run folder" in end.message
        assert (record.path / EVENTS_FILE).read_bytes() == before
        assert (record.path / STATUS_FILE).read_text() == ""
        # The pid the status names is alive (a reused pid would read the same): the
        # lock, not the pid, decides.
        (record.path / STATUS_FILE).write_text(
            json.dumps({"status": "RUNNING", "pid": os.getpid()})
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert lock_state(record.path) is False
    assert read_status(record.path)[0] is Status.INTERRUPTED
    RunLock.acquire(record.path).release()  # anyone may take over now


def test_a_track_script_refuses_a_folder_another_process_writes(tmp_path: Path):
    record = new_record(tmp_path)
    proc = hold_lock(record.path)
    script = textwrap.dedent(
        f"""
        import torch, steplr_tui
        from torch.optim.lr_scheduler import StepLR
        m = torch.nn.Linear(2, 1)
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        steplr_tui.track(opt, StepLR(opt, 1, 0.5), runs_dir={str(tmp_path)!r},
                         resume={str(record.path)!r})
        """
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert result.returncode != 0
    assert "one trainer per run folder" in result.stderr
    assert "During handling" not in result.stderr and "direct cause" not in result.stderr


# ---- 2. a full disk at an events.jsonl append ------------------------------------------


def _full_after(monkeypatch, calls: int) -> None:
    """events.jsonl appends fail as on a full disk after `calls` of them."""
    original = RunRecord._append_event
    count = {"n": 0}

    def append(self, line: bytes, sync: bool) -> None:
        count["n"] += 1
        if count["n"] > calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(self, line, sync)

    monkeypatch.setattr(RunRecord, "_append_event", append)


def test_a_full_disk_at_an_events_append_ends_the_built_in_run_failed(tmp_path, monkeypatch):
    _full_after(monkeypatch, 6)
    config = TrainConfig(epochs=3, batch_size=32, device="cpu", threads=1)
    seen = []
    end = run_job(Job(config, runs_dir=tmp_path), seen.append, data=synthetic_data(256, 64))
    assert end.status is Status.FAILED
    (run,) = list_runs(tmp_path)
    assert run.status is Status.FAILED  # not RUNNING, nor INTERRUPTED later
    assert "No space left on device" in run.reason and "free some disk space" in run.reason
    assert lock_state(run.path) is False  # the lock went with the run


def test_a_full_disk_in_a_track_script_fails_the_run_with_one_traceback(tmp_path: Path):
    script = textwrap.dedent(
        f"""
        import errno, torch, steplr_tui
        from torch.optim.lr_scheduler import StepLR
        from steplr_tui.run.record import RunRecord
        original = RunRecord._append_event
        n = [0]
        def full(self, line, sync):
            n[0] += 1
            if n[0] > 4:
                raise OSError(errno.ENOSPC, "No space left on device")
            original(self, line, sync)
        RunRecord._append_event = full
        m = torch.nn.Linear(2, 1)
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        with steplr_tui.track(opt, StepLR(opt, 1, 0.5), runs_dir={str(tmp_path)!r},
                              epochs=3, progress_interval=0.0) as run:
            for epoch in range(3):
                for _ in range(5):
                    opt.step()
                    run.log_batch(0.5)
                opt.step()
                run.end_epoch()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.count("Traceback") == 1, result.stderr
    assert "During handling" not in result.stderr and "direct cause" not in result.stderr
    assert "No space left on device" in result.stderr.splitlines()[-1]
    (run,) = list_runs(tmp_path)
    assert run.status is Status.FAILED and "No space left on device" in run.reason


def test_on_a_disk_too_full_for_a_new_file_the_final_status_is_written_in_place(
    tmp_path, monkeypatch
):
    record = new_record(tmp_path)
    record.lock()
    record.mark_running()
    import steplr_tui.run.record as record_module

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(record_module, "write_atomic", full)
    monkeypatch.setattr(RunRecord, "_append_event", lambda self, line, sync: full())
    with pytest.raises(RecordError) as caught:
        record.write(Notice("one"))
    assert caught.value.__suppress_context__  # no chained traceback
    record.write(Notice("dropped: the run has failed"))
    record.write(RunEnded(Status.COMPLETED, "", 3, 1.0))  # never raises
    record.close()
    status, reason, _ = read_status(record.path)
    assert status is Status.FAILED and "No space left on device" in reason


def test_a_real_full_disk_fails_a_detached_run(tmp_path: Path):
    """A small tmpfs as the runs folder, filled while the run trains."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    try:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "STEPLR_TUI_RUNS": str(mount),
            "OMP_NUM_THREADS": "1",
        }
        args = ["--detach", "--dataset", "sample", "--device", "cpu", "--threads", "1"]
        started = subprocess.run(
            [sys.executable, "-m", "steplr_tui", *args, "--epochs", "40", "--batch-size", "16"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert started.returncode == 0, started.stderr
        (run,) = list_runs(mount)
        wait_until(lambda: len(read_run(run.path).metrics) >= 1, 180, "an epoch")
        with open(mount / "filler", "wb") as fh:  # fill the disk
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        wait_until(lambda: read_run(run.path).status is Status.FAILED, 120, "FAILED")
        assert "No space left on device" in read_run(run.path).reason
    finally:
        for info in list_runs(mount):
            if info.pid and info.status is Status.RUNNING:
                os.kill(info.pid, signal.SIGKILL)
        time.sleep(0.2)
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


# ---- 3. a live run with a damaged config.json ------------------------------------------


def test_a_live_run_with_a_damaged_config_is_listed_stopped_and_edited(tmp_path: Path):
    script = textwrap.dedent(
        f"""
        import time, torch, steplr_tui
        from torch.optim.lr_scheduler import StepLR
        m = torch.nn.Linear(2, 1)
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        with steplr_tui.track(opt, StepLR(opt, 1, 0.5), runs_dir={str(tmp_path)!r},
                              epochs=1000) as run:
            print(run.path, flush=True)
            for epoch in range(1000):
                for _ in range(20):
                    if run.should_stop():
                        break
                    opt.step()
                    run.log_batch(0.5)
                    time.sleep(0.01)
                opt.step()
                run.end_epoch()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        path = Path(proc.stdout.readline().strip())
        (path / CONFIG_FILE).write_text('{"config": {"lr": ')  # damaged
        (run,) = list_runs(tmp_path)
        assert run.status is Status.RUNNING and run.config_damaged
        out = _Out()
        print_runs(tmp_path, out)
        assert path.name in out.text and "RUNNING" in out.text
        assert "config.json is damaged" in out.text
        assert edit_run(path, ScheduleEdit(gamma=0.25), out) == 0
        assert "edit queued" in out.text
        assert stop_run(path, out, timeout=60) == 0
        assert "STOPPED" in out.text
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()


class _Out:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


# ---- 4. a torn last line ---------------------------------------------------------------


def test_an_epoch_after_a_torn_metrics_line_is_on_a_line_of_its_own(tmp_path: Path):
    record = new_record(tmp_path)
    record.append_epoch({"epoch": 1, "lr": 0.01})
    with open(record.path / METRICS_FILE, "ab") as fh:
        fh.write(b'{"epoch": 2, "lr": 0.0')  # a kill mid-write
    record.append_epoch({"epoch": 3, "lr": 0.005})
    assert [m["epoch"] for m in read_metrics(record.path)] == [1, 3]
    info = read_run(record.path)
    assert any("1 unreadable line of metrics.jsonl" in d for d in info.damage)
    # The same for events.jsonl and control.jsonl.
    with open(record.path / EVENTS_FILE, "ab") as fh:
        fh.write(b'{"type":"notice","te')
    record.write(Notice("after the torn line"))
    record.close()
    texts = [e.text for e in read_history(record.path).events if isinstance(e, Notice)]
    assert "after the torn line" in texts
    with open(record.path / CONTROL_FILE, "ab") as fh:
        fh.write(b'{"type":"stop","i')
    send(record.path, StopRequest("s1", "me", ""))
    reader = ControlReader(record.path)
    lines = [raw for _, raw in reader.read()]
    assert lines[-1] is not None and json.loads(lines[-1])["id"] == "s1"


def test_a_resume_after_a_torn_metrics_line_restores_the_epoch_and_says_so(tmp_path: Path):
    config = TrainConfig(epochs=2, batch_size=64, device="cpu", threads=1)
    data = synthetic_data(256, 64)
    run_job(Job(config, runs_dir=tmp_path), lambda e: None, data=data)
    (run,) = list_runs(tmp_path)
    assert [m["epoch"] for m in run.metrics] == [1, 2]
    # Epoch 1's line torn, epoch 2's written after it (as an old writer did).
    lines = (run.path / METRICS_FILE).read_bytes().splitlines(keepends=True)
    (run.path / METRICS_FILE).write_bytes(lines[0][:15] + lines[1])
    status = json.loads((run.path / STATUS_FILE).read_text())
    status["status"] = "STOPPED"
    (run.path / STATUS_FILE).write_text(json.dumps(status).ljust(1023) + "\n")
    (run.path / CONFIG_FILE).write_text(
        (run.path / CONFIG_FILE).read_text().replace('"epochs": 2', '"epochs": 3')
    )
    seen = []
    resumed = config.with_values(epochs=3)
    end = run_job(Job(resumed, resume=run.path), seen.append, data=data)
    assert end.status is Status.COMPLETED, end.message
    said = [e.text for e in seen if isinstance(e, Notice)]
    assert any("epochs 1, 2 restored from events.jsonl" in t for t in said), said
    assert [m["epoch"] for m in read_metrics(run.path)] == [1, 2, 3]


# ---- 5. a cut events.jsonl, a deleted checkpoint ---------------------------------------


def test_a_cut_events_file_is_filled_from_the_metrics_with_a_notice(tmp_path: Path):
    record = new_record(tmp_path, {**CONFIG, "epochs": 5})
    for epoch in range(1, 6):
        event = EpochEnd(epoch, 0.01, 1.0 / epoch, 50.0, 1.0, float(epoch))
        record.write(event)
    record.write(RunEnded(Status.COMPLETED, "", 5, 5.0))
    record.close()
    lines = (record.path / EVENTS_FILE).read_bytes().splitlines(keepends=True)
    (record.path / EVENTS_FILE).write_bytes(b"".join(lines[:2]))  # cut after epoch 2
    events = read_history(record.path).events
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [1, 2, 3, 4, 5]
    (notice,) = [e for e in events if isinstance(e, Notice)]
    assert "events.jsonl ends at epoch 2" in notice.text and "up to 5" in notice.text
    assert "cut" in notice.text


def test_a_deleted_checkpoint_is_named_as_the_reason_a_run_cannot_resume(tmp_path: Path):
    config = TrainConfig(epochs=1, batch_size=64, device="cpu", threads=1)
    run_job(Job(config, runs_dir=tmp_path), lambda e: None, data=synthetic_data(128, 64))
    (run,) = list_runs(tmp_path)
    (run.path / "checkpoint.pt").unlink()
    status = json.loads((run.path / STATUS_FILE).read_text())
    status["status"] = "STOPPED"
    (run.path / STATUS_FILE).write_text(json.dumps(status))
    end = run_job(Job(config.with_values(epochs=2), resume=run.path), lambda e: None)
    assert end.status is Status.FAILED
    assert "recorded 1 epochs but its checkpoint.pt is missing" in end.message
    assert "before its first epoch" not in end.message


# ---- 10. links, other users, unparseable requests --------------------------------------


def test_control_jsonl_is_never_followed_through_a_link(tmp_path: Path):
    secret = tmp_path / "root-only.json"
    secret.write_text('{"type": "edit", "id": "x", "lr": "hunter2"}\n')
    secret.chmod(0o600)
    record = new_record(tmp_path / "runs")
    (record.path / CONTROL_FILE).symlink_to(secret)
    with pytest.raises(CommandError, match="symbolic link"):
        send(record.path, StopRequest("s", "me", ""))
    assert secret.read_text().count("\n") == 1  # nothing appended through the link
    seen = []
    steering = Steering(ControlReader(record.path), seen.append)
    steering.poll()
    steering.poll()
    (notice,) = seen
    assert isinstance(notice, Notice) and "symbolic link" in notice.text
    assert "hunter2" not in str(seen)
    for name in (METRICS_FILE, STATUS_FILE):
        (record.path / name).unlink(missing_ok=True)
        (record.path / name).symlink_to(secret)
        with pytest.raises(UnsafeFile):
            open_file(record.path / name)
    assert read_run(record.path).metrics == []


def test_a_file_of_another_user_in_the_folder_is_refused(tmp_path: Path, monkeypatch):
    record = new_record(tmp_path)
    control = record.path / CONTROL_FILE
    control.write_bytes(encode_request(StopRequest("planted", "someone", "")))
    if os.geteuid() == 0:
        os.chown(control, 54321, -1)
    else:  # not root: the folder's owner reads as another uid instead
        import steplr_tui.runfolder.files as files

        owner = os.stat(record.path).st_uid + 1
        monkeypatch.setattr(files, "folder_owner", lambda _folder: owner)
    with pytest.raises(UnsafeFile, match="another user has written into this run folder"):
        open_file(control)
    seen = []
    steering = Steering(ControlReader(record.path), seen.append)
    assert steering.check(force=True) is None  # the planted stop is not obeyed
    assert any(isinstance(e, Notice) and "another user" in e.text for e in seen)


def test_a_hard_link_to_a_file_elsewhere_is_refused(tmp_path: Path):
    record = new_record(tmp_path / "runs")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("x\n")
    os.link(elsewhere, record.path / METRICS_FILE)
    with pytest.raises(UnsafeFile, match="hard link"):
        open_file(record.path / METRICS_FILE, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    with pytest.raises(RecordError, match="hard link"):
        record.write(EpochEnd(1, 0.01, 0.5, 50.0, 1.0, 1.0))
    assert elsewhere.read_text() == "x\n"


@pytest.mark.parametrize(
    "line",
    [
        b"root:$6$hunter2saltsecret:19000:0:99999:7:::",
        b'{"type": "edit", "id": "x", "lr": "hunter2"}',
        b'{"type": "hunter2", "id": "x"}',
        b'{"type": "edit", "id": "hunter2 hunter2", "lr": 0.1}',
        b'{"type": "edit", "id": "x", "hunter2 = secret": 1}',
    ],
)
def test_an_unparseable_request_is_never_copied_into_the_record(tmp_path: Path, line: bytes):
    record = new_record(tmp_path)
    append_line(record.path / CONTROL_FILE, line + b"\n")
    steering = Steering(ControlReader(record.path), record.write)
    steering.poll()
    record.close()
    text = (record.path / EVENTS_FILE).read_text()
    assert '"refused"' in text
    assert "hunter2" not in text


def test_a_detached_run_holds_its_folder_against_a_second_trainer_and_a_link(tmp_path: Path):
    """From outside, with real processes: a live detached run whose status.json is
    emptied still reads RUNNING, a second trainer (--resume --detach) is refused,
    `edit` will not write through a planted link, and kill -9 frees the folder."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "STEPLR_TUI_RUNS": str(tmp_path),
        "STEPLR_TUI_DATA": str(tmp_path / "no-data"),
        "OMP_NUM_THREADS": "1",
    }

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "steplr_tui", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    sample = ["--dataset", "sample", "--device", "cpu", "--threads", "1"]
    started = cli("--detach", *sample, "--epochs", "40", "--batch-size", "16")
    assert started.returncode == 0, started.stderr
    (run,) = list_runs(tmp_path)
    path = run.path
    try:
        assert lock_state(path) is True  # from the launch on, never unlocked
        wait_until(lambda: len(read_run(path).metrics) >= 1, 180, "an epoch")
        (path / STATUS_FILE).write_text("")
        listed = cli("--list-runs")
        assert "RUNNING" in listed.stdout and "INTERRUPTED" not in listed.stdout
        second = cli("--resume", path.name, "--detach")
        assert second.returncode != 0
        assert "one trainer per run folder" in second.stderr
        secret = tmp_path / "secret"
        secret.write_text("")
        secret.chmod(0o600)
        (path / CONTROL_FILE).unlink(missing_ok=True)
        (path / CONTROL_FILE).symlink_to(secret)
        edit = cli("edit", path.name, "--gamma", "0.5")
        assert edit.returncode == 1 and "symbolic link" in edit.stderr
        assert secret.read_text() == ""
        (path / CONTROL_FILE).unlink()
        pid = int((path / LOCK_FILE).read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: lock_state(path) is False, 30, "the lock to be freed")
        assert read_run(path).status is Status.INTERRUPTED
        epochs = [m["epoch"] for m in read_run(path).metrics]
        assert epochs == sorted(set(epochs))  # one writer: no epoch twice, none out of order
    finally:
        if lock_state(path):
            pid = int((path / LOCK_FILE).read_text().split()[0])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# ---- 11. nothing of a record drives the exported code or the terminal ------------------


def _recorded(tmp_path: Path, config: dict, name: str | None = None) -> Path:
    record = new_record(tmp_path, config)
    record.write(EpochEnd(1, 0.01, 0.5, 50.0, 1.0, 1.0))
    record.write(RunEnded(Status.COMPLETED, "", 1, 1.0))
    record.close()
    if name is None:
        return record.path
    target = record.path.with_name(name)
    record.path.rename(target)
    return target


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "steplr_tui", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "STEPLR_TUI_RUNS": str(tmp_path)},
        timeout=60,
        cwd=tmp_path,
    )


def test_a_config_cannot_put_code_into_the_exported_snippet(tmp_path: Path):
    evil = "lion\nimport os; os.system('touch PWNED')\n#"
    path = _recorded(tmp_path, {**CONFIG, "optimizer": evil})
    result = _cli(tmp_path, "export", str(path))
    assert result.returncode == 1 and result.stdout == ""
    assert "not an optimizer's name" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    # A fine record's snippet runs, and only what the schedule needs.
    good = _recorded(tmp_path, {**CONFIG, "optimizer": "lion"})
    snippet = _cli(tmp_path, "export", str(good)).stdout
    assert "your lion optimizer" in snippet
    assert not (tmp_path / "PWNED").exists()


def test_no_text_of_a_record_reaches_the_terminal_as_an_escape_sequence(tmp_path: Path):
    _recorded(
        tmp_path, {**CONFIG, "optimizer": "\x1b]0;owned\x07adam\x1b[2J"}, "run-\x1b[31mred\x1b[0m"
    )
    out = _Out()
    print_runs(tmp_path, out)
    assert "\x1b" not in out.text and "\x07" not in out.text
    assert "run-red" in out.text


# ---- 12. one huge line in control.jsonl ------------------------------------------------


def test_a_huge_control_line_does_not_stall_steering(tmp_path: Path):
    record = new_record(tmp_path)
    reader = ControlReader(record.path)
    with open(record.path / CONTROL_FILE, "ab") as fh:
        fh.write(b"x" * (50 * 1024 * 1024) + b"\n")
        fh.write(encode_request(StopRequest("stop-1", "shell", "")))
        fh.write(encode_request(EditRequest("e-1", ScheduleEdit(lr=0.5), "shell")))
    seen = []
    steering = Steering(reader, seen.append)
    started = time.monotonic()
    polls = 0
    while steering.stop_reason is None and polls < 5:
        steering.poll()
        polls += 1
    assert steering.stop_reason is not None and polls <= 2
    assert time.monotonic() - started < 5.0
    refused = [e for e in seen if getattr(e, "action", "") == "?"]
    assert len(refused) == 1 and "over the 4096-byte limit" in refused[0].reason
    assert refused[0].line == 1
    applied = [e for e in seen if getattr(e, "decision", "") in ("applied", "queued")]
    assert [(d.request, d.line) for d in applied] == [("stop-1", 2)]


def test_a_huge_line_still_being_written_is_skipped_as_it_grows(tmp_path: Path):
    record = new_record(tmp_path)
    reader = ControlReader(record.path)
    with open(record.path / CONTROL_FILE, "ab") as fh:
        fh.write(b"y" * (3 * 1024 * 1024))
    first = reader.read()
    assert first == [(1, None)]
    with open(record.path / CONTROL_FILE, "ab") as fh:
        fh.write(b"y" * (3 * 1024 * 1024) + b"\n")
        fh.write(encode_request(StopRequest("stop-2", "shell", "")))
    (line_no, raw), *_ = reader.read()
    assert line_no == 2 and raw is not None and b"stop-2" in raw


# ---- 13. export of a config with a wrong type ------------------------------------------


def test_export_of_a_wrong_type_says_so_in_one_line_and_writes_nothing(tmp_path: Path):
    path = _recorded(tmp_path, {**CONFIG, "lr": "abc"})
    result = _cli(tmp_path, "export", str(path), "--csv")
    assert result.returncode == 1 and result.stdout == ""
    assert "lr 'abc', not a number" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (path / "metrics.csv").exists()


def test_the_dashboard_is_given_no_escape_sequence_from_a_record():
    from steplr_tui.runfolder import RunOpened
    from steplr_tui.viewer.sources import SourceEvents

    events = [
        Notice("done\x1b]0;owned\x07 \x1b[2J"),
        RunEnded(Status.FAILED, "bad\x1b[31m red", 1, 1.0),
        RunOpened("/runs/a", {"optimizer": "adam\x1b[8m"}),
    ]
    shown = SourceEvents(1, events).events
    assert "\x1b" not in repr(shown) and "\x07" not in repr(shown)
    assert shown[0].text == "done " and shown[2].config["optimizer"] == "adam"


def test_a_run_whose_writer_died_is_resumed_by_the_next_holder_of_its_lock(tmp_path: Path):
    config = TrainConfig(epochs=1, batch_size=64, device="cpu", threads=1)
    data = synthetic_data(128, 64)
    run_job(Job(config, runs_dir=tmp_path), lambda e: None, data=data)
    (run,) = list_runs(tmp_path)
    # Killed mid-run: its status still says RUNNING, and nobody holds the lock.
    (run.path / STATUS_FILE).write_text(json.dumps({"status": "RUNNING", "pid": os.getpid()}))
    assert read_run(run.path).status is Status.INTERRUPTED
    (run.path / CONFIG_FILE).write_text(
        (run.path / CONFIG_FILE).read_text().replace('"epochs": 1', '"epochs": 2')
    )
    end = run_job(Job(config.with_values(epochs=2), resume=run.path), lambda e: None, data=data)
    assert end.status is Status.COMPLETED, end.message
    assert [m["epoch"] for m in read_metrics(run.path)] == [1, 2]


def test_another_user_cannot_add_a_file_to_a_run_folder(tmp_path: Path, monkeypatch):
    record = new_record(tmp_path)
    import steplr_tui.runfolder.files as files

    owner = os.stat(record.path).st_uid + 1000  # the folder is someone else's
    monkeypatch.setattr(files, "folder_owner", lambda _folder: owner)
    monkeypatch.setattr(os, "geteuid", lambda: owner + 1)  # and we are not root
    with pytest.raises(CommandError, match="only that user \\(or root\\) can write"):
        send(record.path, StopRequest("s", "me", ""))
    assert not (record.path / CONTROL_FILE).exists()


@pytest.mark.skipif(
    os.geteuid() != 0
    or (not Path("/usr/sbin/runuser").exists() and not Path("/sbin/runuser").exists()),
    reason="needs root and runuser to act as a second user",
)
def test_a_second_user_cannot_steer_or_poison_a_shared_run_folder():
    """From outside: a real second user (nobody) writes into a run folder that is
    world-writable; root's commands and root's run refuse what that user put there."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="steplr-shared-", dir="/tmp"))
    try:
        base.chmod(0o755)
        record = new_record(base)
        record.path.chmod(0o777)  # a folder shared carelessly
        secret = base / "root-secret"
        secret.write_text('{"type": "edit", "id": "x", "lr": 0.5, "hunter2": 1}\n')
        secret.chmod(0o600)

        def as_nobody(command: str) -> None:
            subprocess.run(["runuser", "-u", "nobody", "--", "sh", "-c", command], check=True)

        stop = encode_request(StopRequest("planted", "nobody", "")).decode().strip()
        as_nobody(f"printf '%s\\n' '{stop}' > {record.path / CONTROL_FILE}")
        seen = []
        steering = Steering(ControlReader(record.path), seen.append)
        assert steering.check(force=True) is None  # the planted stop is not obeyed
        assert any(isinstance(e, Notice) and "another user" in e.text for e in seen)
        with pytest.raises(CommandError, match="another user has written"):
            send(record.path, StopRequest("s", "root", ""))
        os.unlink(record.path / CONTROL_FILE)
        as_nobody(f"ln -s {secret} {record.path / CONTROL_FILE}")
        with pytest.raises(CommandError, match="symbolic link"):
            send(record.path, StopRequest("s", "root", ""))
        assert secret.read_text().count("\n") == 1
        os.unlink(record.path / CONTROL_FILE)
        as_nobody(f"ln -s {secret} {record.path / METRICS_FILE}")
        record.lock()
        with pytest.raises(RecordError, match="symbolic link"):
            record.write(EpochEnd(1, 0.01, 0.5, 50.0, 1.0, 1.0))
        record.close()
        assert "hunter2" not in (record.path / EVENTS_FILE).read_text()
        assert secret.read_text().count("\n") == 1
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_dashboard_whose_request_is_refused_says_so_instead_of_crashing(tmp_path: Path):
    from steplr_tui.viewer.sources import FolderSource

    record = new_record(tmp_path / "runs")
    (record.path / CONTROL_FILE).symlink_to(tmp_path / "elsewhere")
    posted = []
    FolderSource(1, record.path, posted.append, lambda *_a, **_k: None).stop("viewer 1@box")
    (message,) = posted
    (notice,) = message.events
    assert notice.level == "error" and "symbolic link" in notice.text
    assert not (tmp_path / "elsewhere").exists()


def test_the_sweep_view_is_given_no_escape_sequence_from_a_study(tmp_path: Path):
    from dataclasses import replace

    from steplr_tui.viewer.sweep_source import SweepUpdate
    from tests.fakes import sweep_snapshot

    snapshot = sweep_snapshot(tmp_path, trials=3, running=1)
    evil = replace(snapshot.rows[0], reason="done\x1b]0;owned\x07", host="box\x1b[2J")
    snapshot = replace(snapshot, rows=[evil, *snapshot.rows[1:]], error="bad\x1b[31m")
    shown = SweepUpdate(snapshot).snapshot
    assert "\x1b" not in repr(shown.rows) and "\x1b" not in shown.error
    assert shown.rows[0].reason == "done" and shown.rows[1:] == snapshot.rows[1:]


def test_a_track_resume_after_a_torn_metrics_line_restores_it_and_says_so(tmp_path: Path):
    import torch
    from torch.optim.lr_scheduler import StepLR

    import steplr_tui

    def loop(resume: Path | None, epochs: int) -> Path:
        model = torch.nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = StepLR(opt, 1, 0.5)
        for _ in range(2 if resume else 0):
            opt.step()
            scheduler.step()
        run = steplr_tui.track(opt, scheduler, runs_dir=tmp_path, epochs=epochs, resume=resume)
        with run:
            for _ in range(scheduler.last_epoch, epochs):
                opt.step()
                run.log_batch(0.5)
                scheduler.step()
                run.end_epoch()
        return run.path

    path = loop(None, 2)
    lines = (path / METRICS_FILE).read_bytes().splitlines(keepends=True)
    (path / METRICS_FILE).write_bytes(lines[0] + lines[1][:10])  # epoch 2's line torn
    loop(path, 3)
    assert [m["epoch"] for m in read_metrics(path)] == [1, 2, 3]
    notices = [e.text for e in read_history(path).events if isinstance(e, Notice)]
    assert any("epoch 2 restored from events.jsonl" in t for t in notices), notices


def test_on_a_filesystem_without_locks_liveness_falls_back_to_the_pid(tmp_path, monkeypatch):
    import fcntl

    import steplr_tui.runfolder.lock as lock_module

    def no_locks(_fd, _op):
        raise OSError(errno.ENOLCK, "No locks available")

    record = new_record(tmp_path)
    monkeypatch.setattr(lock_module.fcntl, "flock", no_locks)
    record.lock()  # runs anyway
    record.mark_running()
    assert lock_state(record.path) is None
    assert read_status(record.path)[0] is Status.RUNNING  # its pid (ours) is alive
    record.close()
    monkeypatch.setattr(lock_module.fcntl, "flock", fcntl.flock)


def test_a_full_disk_at_the_checkpoint_write_says_what_to_do(tmp_path, monkeypatch):
    import steplr_tui.run.checkpoint as checkpoint

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "write_atomic", full)
    config = TrainConfig(epochs=2, batch_size=64, device="cpu", threads=1)
    end = run_job(Job(config, runs_dir=tmp_path), lambda e: None, data=synthetic_data(128, 64))
    (run,) = list_runs(tmp_path)
    assert end.status is Status.FAILED and run.status is Status.FAILED
    assert "No space left on device" in run.reason and "free some disk space" in run.reason
    assert [m["epoch"] for m in run.metrics] == [1]  # the epoch printed is recorded


def test_stop_of_a_run_named_with_escape_sequences_prints_none(tmp_path: Path):
    path = _recorded(tmp_path, CONFIG, "run-\x1b]0;owned\x07x")
    result = _cli(tmp_path, "stop", path.name)
    assert result.returncode == 1 and "is not running (COMPLETED)" in result.stderr
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    ambiguous = _recorded(tmp_path, CONFIG, "run-\x1b[2Jy")
    result = _cli(tmp_path, "export", "run-")
    assert result.returncode == 2 and "matches 2 runs" in result.stderr
    assert "\x1b" not in result.stderr and ambiguous.exists()


def test_the_sweep_table_shows_a_folder_s_escape_sequences_as_text(tmp_path, capsys):
    """Item 11: `steplr-tui sweep --list` prints a sweep folder's name; one named with an
    escape sequence (clear the screen, retitle the terminal) must not drive the terminal."""
    from steplr_tui.cli.sweep import list_main

    evil = tmp_path / "sweeps" / "s\x1b]0;owned\x07\x1b[2Jx"
    evil.mkdir(parents=True)
    (evil / "sweep.json").write_text("{not json")
    assert list_main(tmp_path) == 0
    out = capsys.readouterr().out
    assert "unreadable sweep.json" in out
    assert "\x1b" not in out and "\x07" not in out


def test_a_live_runs_epoch_in_metrics_only_is_not_added_before_its_event(tmp_path: Path):
    """The writer puts an epoch in metrics.jsonl, then its line in events.jsonl. A viewer
    that read between the two added the epoch from metrics.jsonl, then had it again
    from events.jsonl: a live run's history waits for the line instead."""
    from steplr_tui.run.record import epoch_line

    record = new_record(tmp_path, {**CONFIG, "epochs": 5})
    record.mark_running(pid=os.getpid())
    record.write(EpochEnd(1, 0.01, 1.0, 50.0, 1.0, 1.0))
    second = EpochEnd(2, 0.01, 0.5, 60.0, 1.0, 2.0)
    record.append_epoch(epoch_line(second))  # metrics.jsonl has epoch 2, events not yet
    history = read_history(record.path)
    assert [e.epoch for e in history.events if isinstance(e, EpochEnd)] == [1]
    assert not [e for e in history.events if isinstance(e, Notice)]
    record.finish(Status.INTERRUPTED, "killed")  # it never came: a cut events.jsonl
    record.close()
    events = read_history(record.path).events
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [1, 2]
