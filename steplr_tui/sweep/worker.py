"""The sweep's worker: it asks the study for trials, runs each as an ordinary detached run
(or a user's script), at most `parallel` at a time, and tells the study how each ended.

A trial's run reports each epoch's objective to the study itself, and its pruner may
stop it there (PRUNED); the worker reads how the run ended from its folder, the
record of truth, and tells the study:

- COMPLETED, PRUNED, FAILED: told as such, and counted toward `--trials`;
- stopped by hand (`steplr-tui stop`, `ctrl+s` in a dashboard): told PRUNED, counted;
- INTERRUPTED (its process died: kill -9, the OOM killer): the folder is marked
  INTERRUPTED, the study told FAIL, and another trial takes its place.

The worker records the heartbeat of every trial it follows (and each trial's own
process does too). A trial of any worker, on any box, whose heartbeat stopped for the
sweep's grace period (its worker and its run killed, its box gone) is failed by a live
worker, INTERRUPTED with that cause, and run again with the same parameters by the
next worker that asks; a worker waits for every trial still RUNNING in the study
before it calls the sweep COMPLETED, so none is left behind.

Ctrl+C (or SIGTERM, SIGHUP) stops every trial at its next batch and the worker, with
the sweep STOPPED: a built-in trial that has a checkpoint stays RUNNING in the study,
and `steplr-tui sweep --resume NAME` continues it from there, then the rest. The
worker on each box writes the sweep folder's `status.json`; several workers, on
one box or many, can share one study (`--join`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from steplr_tui.run.branch import BranchError
from steplr_tui.run.launch import launch, spawn
from steplr_tui.run.record import RecordError, RunRecord
from steplr_tui.run.shared_prefix import SharedPrefixes, branch_points
from steplr_tui.runfolder import (
    CONTROL_FILE,
    Status,
    StopRequest,
    append_line,
    encode_request,
    new_request_id,
    sender_name,
)
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.reader import RunNotFound, process_alive, read_run, read_status
from steplr_tui.runfolder.text import plural
from steplr_tui.study.engine import (
    TRIAL_ENV,
    Heartbeat,
    TrialLink,
    TrialRow,
    ask,
    beating,
    heartbeat_on,
    load_study,
    outcome,
    read_trials,
    reclaim,
    retried_from,
    suggest,
    tell,
)
from steplr_tui.study.report import best_params, best_snippet, best_trial, write_reports
from steplr_tui.study.spec import SWEEP_LOG, SweepSpec
from steplr_tui.study.table import mark_worker
from steplr_tui.study.trials import set_trial_attrs, storage_of

POLL_S = 0.25
STOP_WAIT_S = 30.0  # for every trial to stop, after Ctrl+C
ASK_GRACE_S = 60.0  # a trial just asked, whose worker has yet to write its pid
FAILS_IN_A_ROW = 3  # trials failing before their first epoch: the sweep stops


@dataclass
class Running:
    """A trial this worker runs (or adopted from a worker that went away)."""

    number: int
    pid: int
    folder: Path | None  # a script's: known once it tracks its run
    started: float = field(default_factory=time.monotonic)
    log: Path | None = None
    stop_sent: bool = False  # the sweep asked it to stop (Ctrl+C): not a stop by hand
    proc: Any = None  # a script's process, for its exit status

    @property
    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return process_alive(self.pid, socket.gethostname())


@dataclass(frozen=True)
class WorkerPlan:
    """What one worker works on: the sweep and its folder, the study's storage URL, where
    the trials' runs go, this machine's parameters (device, threads, data), how many
    trials at a time, and whether it resumes a stopped sweep."""

    spec: SweepSpec
    folder: Path
    url: str
    runs_dir: Path
    machine: TrainConfig
    parallel: int
    resume: bool = False


class Sweeper:
    """One worker of a sweep, on this box: `plan` says what on, `study` is the study it
    asks and tells (loaded from `plan.url`), `out` takes the best trial's snippet."""

    def __init__(self, plan: WorkerPlan, study: Any, out: TextIO) -> None:
        self.plan, self.study, self.out = plan, study, out
        self.spec, self.folder, self.url = plan.spec, plan.folder, plan.url
        self.runs_dir, self.machine, self.parallel = plan.runs_dir, plan.machine, plan.parallel
        self.resume = plan.resume
        self.running: dict[int, Running] = {}
        self.to_resume: list[tuple[int, Path]] = []
        self.stopping: str | None = None
        self._fails = 0
        self._trials: list[TrialRow] = []
        storage = storage_of(study)
        if hasattr(storage, "record_heartbeat") and not heartbeat_on(storage):
            self.study, _ = load_study(self.spec.name, self.url, heartbeat=True)  # fails stale
        self.heartbeat = Heartbeat(self.study, self.spec.heartbeat)
        self._next_reclaim = 0.0
        self._awaited: set[int] = set()  # others' trials this worker waits for, said once
        self.shared = SharedPrefixes(self.spec.name, self.runs_dir)  # prefixes trained once

    # ---- what the worker says --------------------------------------------------------

    def say(self, text: str) -> None:
        """What happens, on stderr: stdout carries the best trial's snippet alone, so
        `steplr-tui sweep ... > best.py` keeps just the code."""
        with contextlib.suppress(OSError, ValueError):
            print(f"steplr-tui sweep: {text}", file=sys.stderr, flush=True)

    # ---- the loop -------------------------------------------------------------------

    def run(self) -> int:
        """Work on the sweep until it has its trials, or is stopped; the exit status."""
        self._mark(Status.RUNNING)
        previous = self._signals()
        try:
            self._refresh()
            self._reconcile()
            while self.stopping is None:
                self._poll()
                if self.stopping is not None:
                    break
                self._take_over()
                left = self._left()
                if (
                    left <= 0
                    and not self.running
                    and not self.shared.waiting
                    and not self._others_running()
                ):
                    break
                if self._fails >= FAILS_IN_A_ROW:
                    self._finish_sweep(
                        Status.FAILED,
                        f"{FAILS_IN_A_ROW} trials in a row failed before their first epoch; "
                        f"the last one: {self._last_reason}. Fix that, then steplr-tui sweep "
                        f"--resume {self.spec.name}",
                    )
                    self._stop_all("the sweep stopped: its trials keep failing")
                    self.heartbeat.stop()
                    return 1
                free = self.parallel - len(self.running) - self.shared.running
                if free > 0 and self._start_shared():
                    continue
                if left > 0 and free > 0 and len(self.shared.waiting) < self.parallel:
                    self._start_one()
                    continue
                time.sleep(POLL_S)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.stopping is not None:
            # The trials stay this worker's until they stop: it beats for them meanwhile.
            self._stop_all(self.stopping)
            self._finish_sweep(
                Status.STOPPED,
                f"{self.stopping}: steplr-tui sweep --resume {self.spec.name} continues it",
            )
            self.heartbeat.stop()
            self.report()
            return 130
        self.heartbeat.stop()
        self._finish_sweep(Status.COMPLETED, "")
        self.report()
        return 0

    def _signals(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return previous

        def on_signal(signum: int, _frame: Any) -> None:
            name = signal.Signals(signum).name
            if self.stopping is None:
                self.stopping = "stopped by Ctrl+C" if name == "SIGINT" else f"stopped by {name}"

        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                previous[sig] = signal.signal(sig, on_signal)
        return previous

    def _refresh(self) -> list[TrialRow]:
        self._trials = read_trials(self.study)
        return self._trials

    def _left(self) -> int:
        """Trials still to start: the planned number less those counted and running."""
        rows = self._refresh()
        counted = sum(1 for r in rows if r.counted)
        running = sum(1 for r in rows if r.state == "RUNNING")
        waiting = len(self.to_resume)
        return self.spec.trials_planned - counted - running + waiting

    # ---- starting trials -----------------------------------------------------------------

    def _start_one(self) -> None:
        if self.to_resume:
            number, path = self.to_resume.pop(0)
            self._resume_trial(number, path)
            return
        trial = ask(self.study)
        self._follow(trial.number)
        retried = retried_from(self.study, trial)
        if retried is not None:
            self.say(
                f"trial {trial.number} takes over trial {retried}, whose heartbeat stopped: "
                "the same parameters, from the start"
            )
        params = suggest(trial, self.spec.space, self.spec.schedulers)
        try:
            if self.spec.script:
                self._start_script(trial.number, params)
            else:
                self._start_builtin(trial.number, params)
        except (RecordError, OSError, ValueError) as exc:
            tell(self.study, trial.number, Status.FAILED, None, "FAIL", f"could not start: {exc}")
            self.heartbeat.discard(trial.number)
            self._failed_early(f"trial {trial.number} could not start: {exc}")

    def _threads(self) -> dict[str, str]:
        """Trials side by side on a CPU take a share of its cores each (two processes of
        two OpenMP threads on two cores spin at every barrier)."""
        if self.machine.threads or self.parallel == 1:
            return {}
        share = max(1, (os.cpu_count() or 1) // self.parallel)
        return {"OMP_NUM_THREADS": str(share)}

    def _start_builtin(self, number: int, params: dict[str, Any]) -> None:
        config = self.spec.trial_config(params, self.machine)
        env = self._threads()
        if env:
            config = config.with_values(threads=int(env["OMP_NUM_THREADS"]))
        points = branch_points(self.spec, config)
        prefix = self.shared.share(number, params, config, points, env) if points else None
        if prefix is not None:
            self.say(
                f"trial {number} asked: {_params(params)} · branches from the shared prefix "
                f"{prefix.path.name} after epoch {config.step_size}"
            )
            return
        self._launch_builtin(number, params, config, env)

    def _start_shared(self) -> bool:
        """Start a trial that waited for its prefix: a branch of it, or on its own if the
        prefix ended without its checkpoint. False when none can start yet."""
        ready = self.shared.ready()
        if ready is None:
            return False
        waiting, checkpoint = ready
        number, params = waiting.number, waiting.params
        env = self._threads()
        try:
            if checkpoint is None:
                self.shared.waiting.pop(number, None)
                self.say(f"trial {number}: its prefix ended early; it trains on its own")
                self._launch_builtin(number, params, waiting.config, env)
                return True
            link = TrialLink(self.url, self.spec.name, number)
            meta = {"sweep": {**link.as_dict(), "name": self.spec.name}}
            launched = self.shared.branch(waiting, meta, env)
        except (BranchError, RecordError, OSError, ValueError) as exc:
            self.shared.waiting.pop(number, None)
            tell(self.study, number, Status.FAILED, None, "FAIL", f"could not start: {exc}")
            self._failed_early(f"trial {number} could not start: {exc}")
            return True
        self._where(number, launched.path)
        self.running[number] = Running(number, launched.pid, launched.path)
        self.say(
            f"trial {number} started: {_params(params)} · {launched.name}, branched after "
            f"epoch {waiting.config.step_size} (pid {launched.pid})"
        )
        return True

    def _launch_builtin(
        self, number: int, params: dict[str, Any], config: TrainConfig, env: dict[str, str]
    ) -> None:
        link = TrialLink(self.url, self.spec.name, number)
        meta = {"sweep": {**link.as_dict(), "name": self.spec.name}}
        launched = launch(config, self.runs_dir, meta=meta, env=env, reap=True)
        self._where(number, launched.path)
        self.running[number] = Running(number, launched.pid, launched.path)
        self.say(
            f"trial {number} started: {_params(params)} · {launched.name} (pid {launched.pid})"
        )

    def _start_script(self, number: int, params: dict[str, Any]) -> None:
        logs = self.folder / "trials"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{number}.log"
        link = TrialLink(self.url, self.spec.name, number)
        env = {
            **os.environ,
            **self._threads(),
            TRIAL_ENV: json.dumps(link.as_dict()),
            "STEPLR_TUI_RUNS": str(self.runs_dir),
        }
        proc = spawn([sys.executable, *self.spec.script], log, env, reap=True)
        pid = proc.pid
        self.running[number] = Running(number, pid, None, log=log, proc=proc)
        script = Path(self.spec.script[0]).name
        self.say(f"trial {number} started: {_params(params)} · {script} (pid {pid})")

    def _resume_trial(self, number: int, path: Path) -> None:
        try:
            info = read_run(path)
            base = self.machine.with_values(**self._threads_value())
            config = _recorded_config(info, base)
            launched = launch(config, self.runs_dir, resume=path, reap=True)
        except (RecordError, RunNotFound, OSError, ValueError) as exc:
            tell(self.study, number, Status.FAILED, None, "FAIL", f"could not resume: {exc}")
            self.heartbeat.discard(number)
            self.say(f"trial {number} could not resume ({exc}); another trial takes its place")
            return
        self._attrs(number, status=Status.RUNNING.value, reason="")
        self.running[number] = Running(number, launched.pid, path)
        self.say(f"trial {number} resumed after epoch {info.epochs_done} · {path.name}")

    def _threads_value(self) -> dict[str, int]:
        env = self._threads()
        return {"threads": int(env["OMP_NUM_THREADS"])} if env else {}

    def _attrs(self, number: int, **attrs: Any) -> None:
        set_trial_attrs(self.study, number, **attrs)

    def _follow(self, number: int) -> None:
        """This worker follows the trial: another worker on this box leaves it be, and
        its heartbeat is this worker's too from now."""
        self._attrs(number, worker=os.getpid(), host=socket.gethostname())
        self.heartbeat.add(number)

    def _where(self, number: int, path: Path) -> None:
        self._attrs(number, run_folder=str(path))

    # ---- following them ----------------------------------------------------------------

    def _poll(self) -> None:
        for number, r in list(self.running.items()):
            if r.folder is None:
                row = next((t for t in self._trials if t.number == number), None)
                if row is not None and row.run_folder:
                    r.folder = Path(row.run_folder)
            if r.alive:
                if r.folder is not None:
                    status, _, _ = read_status(r.folder)
                    if status.final and status is not Status.INTERRUPTED:
                        self._ended(r)  # written its end; its process is leaving
                continue
            self._ended(r)

    def _ended(self, r: Running) -> None:
        del self.running[r.number]
        self.heartbeat.discard(r.number)
        if r.folder is None:
            code = r.proc.returncode if r.proc is not None else None
            last = _last_line(r.log)
            how = f"exited with status {code}" if code else "ended"
            why = f"the script {how} without tracking a run"
            why += f", its last line: {last}" if last else ""
            if not code:
                why += " (does it call steplr_tui.track(..., trial=steplr_tui.join_sweep())?)"
            tell(self.study, r.number, Status.FAILED, None, "FAIL", why)
            self.say(f"trial {r.number} FAILED: {why}; its output is in {r.log}")
            self._failed_early(f"trial {r.number}: {why}")
            return
        try:
            info = read_run(r.folder)
        except RunNotFound as exc:
            tell(self.study, r.number, Status.FAILED, None, "FAIL", str(exc))
            self._failed_early(f"trial {r.number}: {exc}")
            return
        status, reason = info.status, info.reason
        if status is Status.RUNNING:  # the process is gone, its folder still says so
            status = Status.INTERRUPTED
        if status is Status.INTERRUPTED:
            reason = f"its process (pid {r.pid}) died without a final status"
            _finish_dead(Path(r.folder), reason)
            tell(self.study, r.number, Status.INTERRUPTED, None, "FAIL", reason)
            self.say(f"trial {r.number} INTERRUPTED: {reason}; another trial takes its place")
            self._last_reason = reason
            return
        if r.stop_sent and status is Status.STOPPED:
            return  # the sweep's own stop: _stop_all decides
        by_hand = status is Status.STOPPED
        state, value, why = outcome(status, info.metrics, self.spec.objective, reason, by_hand)
        tell(self.study, r.number, status, value, state, why)
        done = f"after epoch {info.epochs_done}" if info.epochs_done else "before its first epoch"
        text = f"{self.spec.objective} {value:.2f}" if value is not None else (why or reason)
        self.say(f"trial {r.number} {status.value} {done}: {text}")
        if status is Status.FAILED and not info.epochs_done:
            self._failed_early(reason)
        else:
            self._fails = 0

    def _failed_early(self, reason: str) -> None:
        self._fails += 1
        self._last_reason = reason

    _last_reason = ""

    # ---- after a worker that went away, and before this one stops ----------------------

    def _take_over(self) -> None:
        """Every heartbeat interval: fail the study's trials that stopped beating (Optuna
        queues each again, and the next worker to ask runs it), and mark their run
        folders on this box INTERRUPTED with that cause."""
        now = time.monotonic()
        if now < self._next_reclaim:
            return
        self._next_reclaim = now + self.spec.heartbeat
        try:
            failed = reclaim(self.study)
        except Exception as exc:  # the server is away: try again at the next interval
            self.say(f"cannot check the study's heartbeats ({type(exc).__name__}: {exc})"[:300])
            return
        if not failed:
            return
        rows = self._refresh()
        for row in rows:
            if row.number in failed:
                where = f" on {row.host}" if row.host else ""
                self.say(
                    f"trial {row.number}{where} has had no heartbeat for {self.spec.grace} s "
                    "(its worker and its run are gone): INTERRUPTED, and queued to run again"
                )
        self._mark_interrupted(rows)

    def _mark_interrupted(self, rows: list[TrialRow]) -> None:
        """Run folders on this box whose trial was failed for want of a heartbeat, which
        still say RUNNING though their process is gone: INTERRUPTED, with the cause."""
        host = socket.gethostname()
        for row in rows:
            if row.state != "FAIL" or row.status != Status.INTERRUPTED.value:
                continue
            if not row.run_folder or (row.host and row.host != host):
                continue
            path = Path(row.run_folder)
            status, _, data = read_status(path)
            if status is Status.INTERRUPTED and data.get("status") == Status.RUNNING.value:
                _finish_dead(path, row.reason)

    def _others_running(self) -> bool:
        """Trials of other workers the study holds RUNNING with a heartbeat: this worker
        waits for them (one whose heartbeat stops, it takes over) before it is done."""
        try:
            others = beating(self.study) - set(self.running)
        except Exception:  # a storage that cannot say: nothing to wait for
            return False
        new = others - self._awaited
        if new:
            rows = {r.number: r for r in self._trials}
            names = ", ".join(
                f"{n}" + (f" on {rows[n].host}" if n in rows and rows[n].host else "")
                for n in sorted(new)
            )
            self.say(
                f"waiting for trial {names} of another worker before the sweep is done; "
                f"a trial without a heartbeat for {self.spec.grace} s is taken over here"
            )
        self._awaited |= others
        return bool(others)

    def _reconcile(self) -> None:
        """Trials the study holds RUNNING whose run is on this box: follow the live ones,
        tell the ended ones, and (resuming) continue the stopped ones."""
        host = socket.gethostname()
        self._mark_interrupted(self._trials)
        for row in self._trials:
            if row.state != "RUNNING" or row.number in self.running:
                continue
            if row.host and row.host != host:
                continue  # another box's: its worker looks after it
            if row.worker and row.worker != os.getpid() and process_alive(row.worker, host):
                continue  # a live worker on this box follows it (a sweep --join beside it)
            if not row.run_folder:
                if not row.worker and row.started and time.time() - row.started < ASK_GRACE_S:
                    continue  # just asked by a worker that has yet to say it follows it
                tell(self.study, row.number, Status.FAILED, None, "FAIL", "it never started a run")
                continue
            path = Path(row.run_folder)
            try:
                info = read_run(path)
            except RunNotFound:
                tell(self.study, row.number, Status.FAILED, None, "FAIL", f"{path} is gone")
                continue
            self._follow(row.number)
            if info.status is Status.RUNNING and info.pid:
                self.running[row.number] = Running(row.number, info.pid, path)
                self.say(f"trial {row.number} is still training ({path.name}): following it")
            elif info.status is Status.STOPPED and self.resume and info.has_checkpoint:
                self.to_resume.append((row.number, path))
            else:
                r = Running(row.number, 0, path)
                self.running[row.number] = r
                self._ended(r)

    def _stop_all(self, why: str) -> None:
        """Stop every trial this worker runs, and wait for them (at most STOP_WAIT_S)."""
        for number in self.shared.stop(why):  # trials that waited for a prefix never started
            tell(self.study, number, Status.STOPPED, None, "FAIL", "stopped with its sweep")
        if not self.running:
            return
        self.say(f"{why}: stopping {len(self.running)} trial(s) at their next batch…")
        for r in self.running.values():
            r.stop_sent = True
            if r.folder is not None:
                with contextlib.suppress(OSError):
                    append_line(
                        r.folder / CONTROL_FILE,
                        encode_request(StopRequest(new_request_id(), sender_name("sweep"), why)),
                    )
            else:
                with contextlib.suppress(OSError):
                    os.kill(r.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline and any(r.alive for r in self.running.values()):
            time.sleep(POLL_S)
        for r in list(self.running.values()):
            self._stopped(r)
        self.running.clear()

    def _stopped(self, r: Running) -> None:
        """A trial the sweep stopped: a built-in run with a checkpoint waits for --resume."""
        info = None
        with contextlib.suppress(RunNotFound):
            info = read_run(r.folder) if r.folder is not None else None
        resumable = (
            info is not None
            and not self.spec.script
            and info.status is Status.STOPPED
            and info.has_checkpoint
        )
        if resumable:
            with contextlib.suppress(Exception):  # how the table reads it; --resume clears it
                self._attrs(
                    r.number,
                    status=Status.STOPPED.value,
                    reason=f"stopped with its sweep: steplr-tui sweep --resume {self.spec.name}",
                )
            self.say(
                f"trial {r.number} stopped after epoch {info.epochs_done}: --resume continues it"
            )
            return
        status = info.status if info is not None else Status.STOPPED
        if status is Status.RUNNING:
            status = Status.INTERRUPTED
        if info is not None and status.final and status is not Status.STOPPED:
            self.running[r.number] = r
            r.stop_sent = False
            self._ended(r)  # it ended on its own meanwhile
            return
        tell(self.study, r.number, status, None, "FAIL", "stopped with its sweep")
        self.say(f"trial {r.number} stopped with the sweep before it could be resumed")

    # ---- the sweep's own record ---------------------------------------------------------

    def _mark(self, status: Status, reason: str = "") -> None:
        """This worker's status file in the sweep's folder (one per worker process)."""
        mark_worker(self.folder, os.getpid(), status, reason, self.parallel)

    def _finish_sweep(self, status: Status, reason: str) -> None:
        self._mark(status, reason)
        if reason:
            self.say(reason)

    def report(self) -> None:
        """trials.csv and best.py in the sweep's folder, and the best trial, said."""
        rows = self._refresh()
        write_reports(self.folder, self.spec, rows)
        best = best_trial(rows)
        done = sum(1 for r in rows if r.counted)
        pruned = sum(1 for r in rows if r.state == "PRUNED")
        files = "trials.csv and best.py are" if best is not None else "trials.csv is"
        self.say(f"{plural(done, 'trial')} done ({pruned} pruned); {files} in {self.folder}")
        if best is None:
            self.say("no trial completed yet, so there is no best one")
            return
        self.say(
            f"best: trial {best.number}, {self.spec.objective} {best.value:.2f} with "
            f"{_params(best_params(self.spec, best))}"
        )
        print(best_snippet(self.spec, best), end="", file=self.out, flush=True)


def _params(params: dict[str, Any]) -> str:
    parts = [str(params["scheduler"])] if "scheduler" in params else []
    for name in ("lr", "step_size", "gamma"):
        if name in params:
            value = params[name]
            parts.append(f"{name} {value:.3g}" if isinstance(value, float) else f"{name} {value}")
    return " ".join(parts)


def _last_line(log: Path | None, limit: int = 200) -> str:
    """The last line a script printed (its error, most often)."""
    if log is None:
        return ""
    with contextlib.suppress(OSError):
        lines = log.read_text(errors="replace").strip().splitlines()
        return lines[-1].strip()[:limit] if lines else ""
    return ""


def _recorded_config(info: Any, base: TrainConfig) -> TrainConfig:
    from steplr_tui.runfolder.resume import config_from_record

    return config_from_record(info, base)


def detach_worker(argv: list[str], folder: Path) -> int:
    """Start a worker of this sweep in a background process of its own; its pid."""
    pid = spawn([sys.executable, "-m", "steplr_tui", "sweep", *argv], folder / SWEEP_LOG).pid
    mark_worker(folder, pid, Status.RUNNING)  # until it says so itself
    return pid


def _finish_dead(path: Path, reason: str) -> None:
    """A trial's run whose process is gone: INTERRUPTED with `reason`, written under its
    folder's lock like every write (a run that still holds the lock is alive after all,
    and is left alone)."""
    record = RunRecord(path)
    try:
        record.lock()
        record.finish(Status.INTERRUPTED, reason)
    except (OSError, RecordError):
        pass  # alive (FolderLocked), or its folder is gone: nothing to mark
    finally:
        record.close()
