"""Detached runs: a run in a background process of its own, which outlives the terminal.

`launch` creates (or, to resume, reuses) the run folder, starts
`python -m steplr_tui _run FOLDER` in a new session with no terminal, its
stdin from /dev/null and its output to the folder's `output.log`, marks the
folder RUNNING with that process's pid, and returns at once: torch is imported
by the run process, not here. With `nproc > 1` the process is torchrun
(`python -m torch.distributed.run`), and each of its ranks runs `_run FOLDER`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from steplr_tui.run.jobs import meta as run_meta
from steplr_tui.run.record import RunRecord
from steplr_tui.runfolder import CONTROL_FILE, OUTPUT_FILE, file_size
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.reader import read_status


@dataclass(frozen=True)
class Launched:
    """A detached run that was started: its folder and the process to look for."""

    path: Path
    pid: int

    @property
    def name(self) -> str:
        return self.path.name


def spawn(
    command: list[str],
    log: Path,
    env: dict[str, str] | None = None,
    reap: bool = False,
    pass_fds: tuple[int, ...] = (),
) -> subprocess.Popen:
    """Start `command` in a session of its own with no terminal (stdin from /dev/null, its
    output appended to `log`), so it outlives this process and its terminal.
    `reap` waits for it in a daemon thread, so a long-lived parent leaves no zombie.
    `pass_fds` are handed down (a run folder's lock)."""
    from steplr_tui.runfolder.files import open_file

    with os.fdopen(open_file(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "ab") as out:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
            pass_fds=pass_fds,
            env=env,
        )
    if reap:
        threading.Thread(target=proc.wait, name="steplr-reap", daemon=True).start()
    return proc


def run_command(
    path: Path, base: TrainConfig, *, resume: bool, control_offset: int, nproc: int = 1
) -> list[str]:
    """The run process's command line (the machine's flags travel with it)."""
    args = ["_run", str(path), "--control-offset", str(control_offset)]
    if resume:
        args.append("--resume")
    args += ["--device", base.device, "--threads", str(base.threads)]
    if base.data_dir:
        args += ["--data-dir", base.data_dir]
    if not base.download:
        args.append("--no-download")
    if nproc > 1:
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            str(nproc),
            "-m",
            "steplr_tui",
            *args,
        ]
    return [sys.executable, "-m", "steplr_tui", *args]


def launch(
    config: TrainConfig,
    runs_dir: Path,
    *,
    resume: Path | None = None,
    nproc: int = 1,
    reap: bool = False,
    meta: dict | None = None,
    env: dict[str, str] | None = None,
    folder: Path | None = None,
) -> Launched:
    """Start the run in the background and return its folder and pid.

    `reap` waits for the process in a daemon thread, so a long-lived parent (the
    dashboard) leaves no zombie behind; a command that exits needs none.
    `meta` is added to a new run's config.json (a sweep names itself and the trial
    there); `env` is added to the process's environment. `folder` is a new run's
    folder made already (a branch: run/branch.py), started as a new run.
    Raises RecordError (the folder) or OSError (the process) with a message.
    """
    previous = None
    if folder is not None:
        record = RunRecord(folder)
        lock = record.lock()  # a branch's folder: no one else may have started it
    elif resume is not None:
        record = RunRecord(resume)
        lock = record.lock()  # a live run refuses a second trainer (FolderLocked)
        status, reason, _ = read_status(resume, own_lock=True)
        previous = {"status": status.value, "reason": reason}
    else:
        record = RunRecord.create(
            runs_dir, config.as_dict(), {**run_meta(config, nproc), **(meta or {})}
        )
        lock = record.lock()
    try:
        offset = file_size(record.path / CONTROL_FILE)
        command = run_command(
            record.path, config, resume=resume is not None, control_offset=offset, nproc=nproc
        )
        # The run process takes over the lock itself: the folder is never unlocked
        # between this launch and the run.
        env = {**os.environ, **(env or {}), **lock.inheritable()}
        if nproc > 1:
            env.setdefault("OMP_NUM_THREADS", "1")  # ranks sharing cores must not spin
        fds = (lock.fd,) if lock.fd is not None else ()
        pid = spawn(command, record.path / OUTPUT_FILE, env, reap, pass_fds=fds).pid
        lock.handed_to(pid)
        # The run process writes the same status as it starts; this one covers the second
        # before it does, so a viewer that attaches at once sees a live run.
        extra = {"previous": previous} if previous else {}
        record.mark_running(pid=pid, control_offset=offset, **extra)
    finally:
        record.close()  # our copy of the lock: the run process holds its own
    return Launched(record.path, pid)
