"""The tests' shared helpers: one module, so no test module imports another.

- the app under a pilot: `make_app`, `wait_for`, `type_into`, `advance`, `burst`, ...
- processes: `PtyProcess` (the real steplr-tui in a pseudo-terminal, as a user's
  terminal would run it), `Launch` (torchrun or one process, killed with all its
  children), `wait_until` (for processes and files);
- runs: `events_of`, `facts_of`, `metrics_lines`, and a sweep's `spec`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from steplr_tui.runfolder import EVENTS_FILE, Status, decode_event
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.reader import list_runs, read_run

if TYPE_CHECKING:  # pragma: no cover
    from steplr_tui.study.spec import SweepSpec
    from steplr_tui.viewer.app import SteplrApp
    from tests.fakes import FakeTrainer

ROOT = Path(__file__).resolve().parents[1]


def _controlling_terminal() -> None:
    """In the child: a session of its own whose controlling terminal is the pty, as a
    login shell over SSH has, so a terminal that goes away sends it SIGHUP."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyProcess:
    """steplr-tui (or another program) on a pty of a given size; output is collected in
    the background."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        size=(120, 40),
        program: list[str] | None = None,
    ) -> None:
        """`program` (default: `python -m steplr_tui`) runs with `args`."""
        master, slave = os.openpty()
        cols, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.master = master
        self.output = bytearray()
        self.proc = subprocess.Popen(
            [*(program or [sys.executable, "-m", "steplr_tui"]), *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**os.environ, "TERM": "xterm-256color", **env},
            preexec_fn=_controlling_terminal,
            close_fds=True,
        )
        os.close(slave)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        with contextlib.suppress(OSError):
            os.close(self.master)
        self._reader.join(2)


def metrics_lines(runs_dir: Path) -> int:
    files = list(runs_dir.glob("*/metrics.jsonl"))
    if not files:
        return 0
    return sum(1 for line in files[0].read_text().splitlines() if line.strip())


# ---- the app under a pilot ---------------------------------------------------------

SIZE = (120, 40)


def make_app(trainer, config=None, **kwargs):
    """The app as the pilot tests drive it: a trainer of theirs, no warm-up, no blink."""
    from steplr_tui.viewer.app import SteplrApp

    return SteplrApp(
        config or TrainConfig(data_dir="/data/mnist"),
        train_fn=trainer,
        warm_up=False,
        cursor_blink=False,
        **kwargs,
    )


async def wait_for(pilot, predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Until `predicate()` holds, letting the app under the pilot run meanwhile."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await pilot.pause(0.01)


def log_text(app) -> str:
    return "\n".join(app.screen.log_lines)


def status(app) -> str:
    from textual.widgets import Static

    return str(app.screen.query_one("#status", Static).render())


async def type_into(pilot, field: str, text: str) -> None:
    from textual.widgets import Input

    widget = pilot.app.screen.query_one(f"#field-{field}", Input)
    widget.focus()
    await pilot.press("end", *["backspace"] * (len(widget.value) + 1), *text)
    await pilot.pause()


async def advance(pilot, trainer: FakeTrainer, epochs: int) -> None:
    want = len(pilot.app.screen.view.epochs) + 1
    trainer.advance()
    await wait_for(pilot, lambda: len(pilot.app.screen.view.epochs) == want)
    if epochs > 1:
        await advance(pilot, trainer, epochs - 1)


def burst(app, *keys: str) -> None:
    """Keys as a laggy SSH link delivers them: all at once, with no pause between."""
    from textual import events
    from textual.keys import _character_to_key

    for key in keys:
        if len(key) == 1:
            app.post_message(events.Key(_character_to_key(key), key))
        else:
            char = {"backspace": "\x7f", "enter": "\r", "tab": "\t"}.get(key)
            app.post_message(events.Key(key, char))


# ---- processes: torchrun and its ranks --------------------------------------------

LAUNCH_LIMIT_S = 150.0  # hang guard for one launch (most take 10-30 s on 2 busy cores)
MARK = "STEPLR_TUI_TEST_LAUNCH"  # in every process of one launch, to find them all


def env_for(runs_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "STEPLR_TUI_RUNS": str(runs_dir),
        "STEPLR_TUI_DATA": str(runs_dir / "no-data"),
        "OMP_NUM_THREADS": "1",  # two ranks on two cores must not oversubscribe them
        "PYTHONPATH": str(ROOT),
    }


class Launch:
    """torchrun (or one process), whose every process carries a mark of this launch in
    its environment: torchrun starts its ranks in sessions of their own, and a rank
    outlives a killed agent, so they are found by the mark, and all of them are
    killed if they are still there when the test is done with the launch."""

    def __init__(self, command: list[str], runs_dir: Path) -> None:
        self.mark = f"{MARK}={uuid.uuid4().hex}".encode()
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**env_for(runs_dir), MARK: self.mark.decode().split("=", 1)[1]},
            start_new_session=True,
        )
        self.out = self.err = ""

    def processes(self) -> list[int]:
        """The launch's processes alive now (zombies don't count)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if self.mark in (entry / "environ").read_bytes().split(b"\0"):
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state not in ("Z", "X"):
                        found.append(int(entry.name))
        return found

    def wait(self, limit: float = LAUNCH_LIMIT_S) -> int:
        try:
            self.out, self.err = self.proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.proc.args} still ran after {limit:.0f} s:\n{self.err[-3000:]}")
        return self.proc.returncode

    def kill(self) -> None:
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
            out, err = self.proc.communicate(timeout=10)
            self.out, self.err = self.out + out, self.err + err

    def __enter__(self) -> Launch:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.returncode is None or self.processes():
            self.kill()


def wait_until(
    predicate: Callable[[], object], timeout: float, what: str, launch: Launch | None = None
) -> None:
    """Until `predicate()` holds, for processes and files; a launch that ends first, or
    `timeout` seconds, fail the test saying what was awaited."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if launch is not None and launch.proc.poll() is not None:
            launch.kill()  # collects its output
            pytest.fail(f"the run ended while waiting for {what}:\n{launch.err[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


# ---- runs ----------------------------------------------------------------------------


def events_of(path: Path) -> list:
    out = []
    for line in (path / EVENTS_FILE).read_text().splitlines():
        decoded = decode_event(json.loads(line))
        if decoded is not None:
            out.append(decoded)
    return out


def facts_of(facts: Path, rank: int) -> list[dict]:
    file = facts / f"rank{rank}.jsonl"
    return [json.loads(line) for line in file.read_text().splitlines()] if file.exists() else []


DEFAULTS = TrainConfig().as_dict()  # the sweeps' fixed parameters


def space(**texts):
    from steplr_tui.study.space import parse_space

    return parse_space(texts, DEFAULTS)


def spec(name="s", trials=8, **texts) -> SweepSpec:
    fixed = {k: v for k, v in DEFAULTS.items() if k not in ("lr", "step_size", "gamma")}
    from steplr_tui.study.spec import SweepSpec

    return SweepSpec(name, space(**texts), fixed, trials).checked()


# ---- moved from test modules, so that no test module imports another --------------


def viewer(path, **kwargs) -> SteplrApp:
    """The dashboard attached to a run folder, as `steplr-tui attach` opens it."""
    from steplr_tui.viewer.app import SteplrApp

    return SteplrApp(
        TrainConfig(data_dir="/data/mnist"),
        attach=path,
        warm_up=False,
        cursor_blink=False,
        theme="textual-dark",
        **kwargs,
    )


async def start_and_finish_epoch_1(pilot) -> None:
    """Start a blocking FakeTrainer(epochs_done=1) run and wait for its first epoch."""
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: len(pilot.app.screen.view.epochs) == 1)


def cli(runs_dir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "steplr_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env_for(runs_dir),
    )


def detach(runs_dir: Path, *args: str) -> Path:
    result = cli(runs_dir, "--detach", *SAMPLE, *args)
    assert result.returncode == 0, result.stderr
    (run,) = [r for r in list_runs(runs_dir) if r.name in result.stdout]
    return run.path


def epochs_done(path: Path) -> int:
    return len(read_run(path).metrics)


def wait_status(path: Path, status: Status, timeout: float) -> None:
    wait_until(lambda: read_run(path).status is status, timeout, f"{path.name} {status.value}")


def kill_run(path: Path) -> None:
    pid = read_run(path).pid
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def lrs_from_snippet(snippet: str) -> list[float]:
    """Run the pasted snippet, recording the lr each epoch trains with."""
    from steplr_tui.runfolder.export import TRAIN_PLACEHOLDER

    body = snippet.replace(
        TRAIN_PLACEHOLDER, '    LRS.append(optimizer.param_groups[0]["lr"]); optimizer.step()'
    )
    assert body != snippet
    namespace = {"LRS": []}
    exec(compile(body, "<snippet>", "exec"), namespace)
    return namespace["LRS"]


def torch_lrs(config, metrics=None):
    """The same scheduler driven by hand over the same epochs."""
    import torch

    from steplr_tui.run.trainer import make_scheduler

    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=config.lr)
    scheduler = make_scheduler(config, optimizer)
    out = []
    for epoch in range(config.epochs):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[epoch])
    return out


# A run on the bundled sample, one thread: quick, and no MNIST needed.
SAMPLE = ["--dataset", "sample", "--device", "cpu", "--threads", "1"]


# A sweep's trainer flags: the bundled sample, no pruning.
SWEEP_TRAINER = ["--dataset", "sample", "--no-download", "--device", "cpu", "--pruner", "none"]


def sweep_command(runs: Path, *args: str) -> list[str]:
    """`steplr-tui sweep` with its runs in `runs`."""
    return [sys.executable, "-m", "steplr_tui", "sweep", "--runs-dir", str(runs), *args]


def sweep_trials(runs: Path, name: str):
    """A sweep's trials as its study has them now (none while it is being made)."""
    from steplr_tui.study.engine import load_study, read_trials
    from steplr_tui.study.spec import read_spec, storage_url, sweep_folder

    folder = sweep_folder(runs, name)
    spec_file = folder / "sweep.json"
    if not spec_file.is_file() or not (folder / "study.db").is_file():
        return []
    try:
        study, _spec = load_study(name, storage_url(read_spec(folder), folder))
    except Exception:  # not made yet, or being written
        return []
    return read_trials(study)


def run_to_its_end(job, stop_after_epochs=None, edits_during=None, *, data=None):
    """Run `job`; `edits_during[k]` is sent while epoch k trains (as a user would type it)."""
    from steplr_tui.run.jobs import run_job
    from steplr_tui.runfolder import EditRequest, EpochEnd, RunStarted, new_request_id

    events = []
    done = {"epochs": 0}

    def emit(event):
        events.append(event)
        if isinstance(event, EpochEnd):
            done["epochs"] += 1
        if edits_during and job.inbox is not None and isinstance(event, RunStarted | EpochEnd):
            edit = edits_during.get(done["epochs"] + 1)
            if edit:
                job.inbox.put(EditRequest(new_request_id(), edit, "test"))

    def should_stop():
        return stop_after_epochs is not None and done["epochs"] >= stop_after_epochs

    end = run_job(job, emit, should_stop, data=data)
    return end, events
