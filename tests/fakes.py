"""A scripted stand-in for the trainer: fixed events, no torch, optional blocking."""

from __future__ import annotations

import threading
from collections.abc import Callable

from steplr_tui.config import TrainConfig
from steplr_tui.events import BatchProgress, EpochEnd, Event, Notice, RunEnded, RunStarted
from steplr_tui.jobs import Job
from steplr_tui.schedule import ScheduleEdit, lrs_with_edits

STEPS = 10


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
    )


def epoch_events(epoch: int, lr: float, edit: ScheduleEdit | None = None) -> list[Event]:
    """Two progress reports (one with a spike) and the epoch's end, all fixed numbers."""
    events: list[Event] = []
    for half in (5, 10):
        losses = tuple(
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
        )
    )
    return events


def scripted_events(
    config: TrainConfig, epochs_done: int, edits: dict[int, ScheduleEdit] | None = None
) -> list[Event]:
    """Deterministic events of a run that completed `epochs_done` epochs."""
    edits = edits or {}
    lrs = lrs_with_edits(config.lr, config.step_size, config.gamma, config.epochs, edits)
    events: list[Event] = [started(config)]
    for epoch in range(1, epochs_done + 1):
        events += epoch_events(epoch, lrs[epoch - 1], edits.get(epoch))
    return events


class FakeTrainer:
    """Callable like the real trainer; records each call and emits scripted events.

    With `block=True` it emits `epochs_done` epochs, then waits, polling
    should_stop as the real loop does per batch, until it is told to stop; each
    `advance()` meanwhile lets one more epoch end, taking a pending live edit at
    its boundary as the real trainer does.
    """

    def __init__(
        self,
        epochs_done: int | None = None,
        block: bool = False,
        notice: str | None = None,
        fail: str | None = None,
        raise_exc: BaseException | None = None,
    ) -> None:
        self.epochs_done = epochs_done
        self.block = block
        self.notice = notice
        self.fail = fail
        self.raise_exc = raise_exc
        self.calls: list[TrainConfig] = []
        self.jobs: list[Job] = []
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
        should_stop: Callable[[], bool | str],
        emit: Callable[[Event], None],
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
            if self.notice:
                emit(Notice(self.notice, level="warning", persistent=True))
            for event in scripted_events(config, done):
                emit(event)
            if self.fail:
                end = RunEnded("failed", self.fail, done, done * 0.5)
            elif self.block:
                if done < config.epochs:  # halfway through the next epoch
                    emit(
                        BatchProgress(
                            done + 1,
                            5,
                            STEPS,
                            (0.31, 0.29, 0.7, 0.3, 0.28),
                            60000.0,
                            done * 0.5 + 0.25,
                        )
                    )
                self.emitted.set()
                applied: dict[int, ScheduleEdit] = {}
                end = None
                while not (reason := should_stop()):
                    if not self._advance.acquire(timeout=0.002):
                        continue
                    done += 1
                    edit = job.edits.take() if job.edits and done < config.epochs else None
                    if edit:
                        applied[done] = edit
                    lrs = lrs_with_edits(
                        config.lr, config.step_size, config.gamma, config.epochs, applied
                    )
                    for event in epoch_events(done, lrs[done - 1], edit):
                        emit(event)
                    self.epoch_ended.set()
                    if done == config.epochs:
                        end = RunEnded("completed", "", done, done * 0.5)
                        break
                if end is None:
                    why = reason if isinstance(reason, str) else "stopped by the user"
                    end = RunEnded("stopped", why, done, done * 0.5)
            else:
                end = RunEnded("completed", "", done, done * 0.5)
            emit(end)
            return end
        finally:
            self.emitted.set()
            self.finished.set()
