"""A scripted stand-in for the trainer: fixed events, no torch, optional blocking.

It decides requests (edits, stops, withdraws) with the run side's own `Steering`,
as the real trainer does, so the dashboard's steering is tested end to end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from steplr_tui.run.control import ControlReader, Steering
from steplr_tui.run.jobs import Job
from steplr_tui.runfolder import (
    BatchProgress,
    EpochEnd,
    Event,
    Notice,
    RunEnded,
    RunOpened,
    RunStarted,
    Status,
    as_float32,
)
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.schedule import ScheduleEdit, lrs_with_edits

STEPS = 10


def opened(config: TrainConfig, path: str = "", first_epoch: int = 1) -> RunOpened:
    return RunOpened(path, config.as_dict(), first_epoch=first_epoch, pid=4242, host="fake")


def run_in_folder(trainer: FakeTrainer, config: TrainConfig, runs_dir) -> tuple:
    """The fake run in a thread of its own, writing a real run folder (as another process
    would): returns (folder, thread). Its events carry the folder's path."""
    import os

    from steplr_tui.run.record import RunRecord

    record = RunRecord.create(runs_dir, config.as_dict(), {"kind": "builtin"})
    record.mark_running(pid=os.getpid())
    trainer.folder = record.path

    def emit(event: Event) -> None:
        if isinstance(event, RunOpened):
            event = RunOpened(str(record.path), event.config, event.first_epoch, pid=os.getpid())
        record.write(event)

    thread = threading.Thread(target=lambda: trainer(Job(config), emit, lambda: False), daemon=True)
    thread.start()
    return record.path, thread


def started(config: TrainConfig) -> RunStarted:
    return RunStarted(
        device="cpu (2 threads)",
        dataset="MNIST",
        data_dir="/data/mnist",
        n_train=60000,
        n_test=10000,
        epochs=config.epochs,
        steps_per_epoch=STEPS,
        batch_size=config.batch_size,
        global_batch=config.batch_size,
        model="Linear(784, 10)",
    )


def epoch_events(epoch: int, lr: float, edit: ScheduleEdit | None = None) -> list[Event]:
    """Two progress reports (one with a spike) and the epoch's end, all fixed numbers."""
    events: list[Event] = []
    for half in (5, 10):
        # float32 numbers, as a run's batch losses are.
        losses = as_float32(
            2.3 / (epoch + (half - 5 + i) / STEPS) + (0.4 if i == 2 else 0.0) for i in range(5)
        )
        events.append(
            BatchProgress(epoch, half, STEPS, losses, 60000.0, (epoch - 1) * 0.5 + half * 0.05)
        )
    events.append(
        EpochEnd(
            epoch=epoch,
            lr=lr,
            train_loss=0.6 / epoch + 0.25,
            test_acc=90.0 + 2 * (1 - 1 / epoch),
            seconds=0.5,
            elapsed=epoch * 0.5,
            edit=edit,
            steps=STEPS,
        )
    )
    return events


def scripted_events(
    config: TrainConfig, epochs_done: int, edits: dict[int, ScheduleEdit] | None = None
) -> list[Event]:
    """Deterministic events of a run that completed `epochs_done` epochs."""
    edits = edits or {}
    lrs = lrs_with_edits(config.lr, config.step_size, config.gamma, config.epochs, edits)
    events: list[Event] = [opened(config), started(config)]
    for epoch in range(1, epochs_done + 1):
        events += epoch_events(epoch, lrs[epoch - 1], edits.get(epoch))
    return events


class FakeTrainer:
    """Callable like the real trainer; records each call and emits scripted events.

    With `block=True` it emits `epochs_done` epochs, then waits, polling for a
    stop as the real loop does per batch, until it is told to stop; each
    `advance()` meanwhile lets one more epoch end, applying the edits queued for
    its boundary as the real trainer does.
    """

    def __init__(
        self,
        epochs_done: int | None = None,
        block: bool = False,
        notice: str | None = None,
        fail: str | None = None,
        raise_exc: BaseException | None = None,
        folder=None,
    ) -> None:
        self.folder = folder  # a run folder whose control.jsonl it reads too
        self.epochs_done = epochs_done
        self.block = block
        self.notice = notice
        self.fail = fail
        self.raise_exc = raise_exc
        self.calls: list[TrainConfig] = []
        self.jobs: list[Job] = []
        self.steering: Steering | None = None
        self.emitted = threading.Event()  # all pre-block events were emitted
        self.finished = threading.Event()
        self._advance = threading.Semaphore(0)
        self.epoch_ended = threading.Event()  # set after each advance()d epoch is emitted

    def advance(self) -> None:
        """Let the blocked run finish one more epoch."""
        self.epoch_ended.clear()
        self._advance.release()

    def __call__(
        self,
        job: Job,
        emit: Callable[[Event], None],
        should_stop: Callable[[], bool | str],
    ) -> RunEnded:
        config = job.config
        self.jobs.append(job)
        self.calls.append(config)
        self.emitted.clear()
        self.finished.clear()
        try:
            if self.raise_exc is not None:
                raise self.raise_exc
            done = config.epochs if self.epochs_done is None else self.epochs_done
            steering = self.steering = Steering(
                ControlReader(self.folder, 0, job.inbox), emit, epoch=done + 1, epochs=config.epochs
            )
            events = scripted_events(config, done)
            emit(events[0])
            if self.notice:
                emit(Notice(self.notice, level="warning", persistent=True))
            for event in events[1:]:
                emit(event)
            if self.fail:
                end = RunEnded(Status.FAILED, self.fail, done, done * 0.5)
            elif self.block:
                end = self._blocked(job, emit, should_stop, steering, done)
            else:
                end = RunEnded(Status.COMPLETED, "", done, done * 0.5)
            emit(end)
            return end
        finally:
            self.emitted.set()
            self.finished.set()

    def _blocked(self, job, emit, should_stop, steering, done) -> RunEnded:
        config = job.config
        if done < config.epochs:  # halfway through the next epoch
            emit(
                BatchProgress(
                    done + 1,
                    5,
                    STEPS,
                    as_float32((0.31, 0.29, 0.7, 0.3, 0.28)),
                    60000.0,
                    done * 0.5 + 0.25,
                )
            )
        self.emitted.set()
        applied: dict[int, ScheduleEdit] = {}
        while not (reason := should_stop() or steering.check()):
            if not self._advance.acquire(timeout=0.002):
                continue
            done += 1
            edit = steering.boundary(done) if done < config.epochs else None
            if edit:
                applied[done] = edit
            lrs = lrs_with_edits(config.lr, config.step_size, config.gamma, config.epochs, applied)
            for event in epoch_events(done, lrs[done - 1], edit):
                emit(event)
            steering.record_applied()  # as the tracker does: after the epoch's line
            self.epoch_ended.set()
            if done == config.epochs:
                steering.end("the run completed before its boundary")
                return RunEnded(Status.COMPLETED, "", done, done * 0.5)
        steering.end("the run stopped before its boundary")
        why = reason if isinstance(reason, str) else "stopped by the user"
        return RunEnded(Status.STOPPED, why, done, done * 0.5)


# ---- a sweep's fixed snapshot, for the sweep view --------------------------------------


def sweep_snapshot(folder, trials: int = 12, running: int = 2, local_runs=None):
    """A sweep of `trials` trials over step_size and gamma: fixed numbers, no study.
    `local_runs` maps trial numbers to run folders on this box."""
    from steplr_tui.runfolder import Status
    from steplr_tui.study.engine import TrialRow
    from steplr_tui.study.space import parse_space
    from steplr_tui.study.spec import SweepSpec
    from steplr_tui.study.table import SweepState
    from steplr_tui.viewer.sweep_source import SweepSnapshot, TrialCurves

    config = TrainConfig().as_dict()
    space = parse_space({"gamma": "0.1:0.9", "step_size": "1,2,3"}, config)
    fixed = {k: v for k, v in config.items() if k not in ("lr", "step_size", "gamma")}
    spec = SweepSpec("sweep-demo", space, {**fixed, "epochs": 6}, 16, created=0.0)
    rows, curves = [], {}
    for n in range(trials):
        step, gamma = 1 + n % 3, round(0.15 + 0.07 * n, 2)
        quality = 1.0 - abs(gamma - 0.5) - 0.02 * step
        done = n < trials - running
        pruned = done and n % 4 == 3
        epochs = 2 if pruned else (6 if done else 1 + n % 5)
        curve = {e: round(80 + 12 * quality * (1 - 0.5**e), 2) for e in range(1, epochs + 1)}
        state = "PRUNED" if pruned else ("COMPLETE" if done else "RUNNING")
        rows.append(
            TrialRow(
                number=n,
                state=state,
                params={"gamma": gamma, "step_size": step},
                curve=curve,
                value=curve[epochs] if state == "COMPLETE" else None,
                status={"COMPLETE": "COMPLETED", "PRUNED": "PRUNED"}.get(state, "RUNNING"),
                reason="pruned: below the median" if pruned else "",
                run_folder=str((local_runs or {}).get(n, "")),
                host="fake",
                started=1000.0 + 10 * n,
                finished=1000.0 + 10 * n + 8 * epochs if done else None,
            )
        )
        curves[n] = TrialCurves(
            tuple(round(0.8 / e + 0.3 * (1 - quality), 4) for e in range(1, epochs + 1)),
            tuple(curve.values()),
        )
    state = SweepState(Status.RUNNING, "", [{"pid": 4242, "alive": True, "parallel": 2}])
    # Read 95 s after the last trial started: the running ones have run 1:35 and 1:45.
    taken = 1000.0 + 10 * (trials - 1) + 95
    return SweepSnapshot(spec, folder, state, rows, curves, taken=taken)


class FixedSweepSource:
    """A sweep source that posts one fixed snapshot."""

    def __init__(self, snapshot) -> None:
        self.snapshot = snapshot
        self.closed = False

    def __call__(self, folder, spec, post):
        self.post = post
        return self

    def start(self, run_worker=None) -> None:
        from steplr_tui.viewer.sweep_source import SweepUpdate

        self.post(SweepUpdate(self.snapshot))

    def close(self) -> None:
        self.closed = True


def spy_log_writes(monkeypatch) -> list[int]:
    """The number of lines each `RunLog.write` is given, in order (from now on)."""
    from steplr_tui.viewer.widgets.run_log import RunLog

    writes: list[int] = []
    real_write = RunLog.write

    def write(self, content, *args, **kwargs):
        writes.append(str(content).count("\n") + 1)
        return real_write(self, content, *args, **kwargs)

    monkeypatch.setattr(RunLog, "write", write)
    return writes
