"""Events the trainer emits: small frozen dataclasses of plain Python values.

They carry no torch objects, so the UI and the headless printer can read them on
any thread and tests can build them by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from steplr_tui.schedule import ScheduleEdit

RunStatus = Literal["completed", "stopped", "failed"]


@dataclass(frozen=True)
class RunStarted:
    """Data is loaded and the model built; the first batch is next."""

    device: str
    dataset: str
    data_dir: str
    n_train: int
    n_test: int
    epochs: int
    steps_per_epoch: int
    batch_size: int
    first_epoch: int = 1  # greater than 1 when a run is resumed


@dataclass(frozen=True)
class Notice:
    """Something the user must know (sample fallback, a library warning)."""

    text: str
    level: Literal["info", "warning", "error"] = "info"
    persistent: bool = False


@dataclass(frozen=True)
class BatchProgress:
    """Throttled progress inside an epoch (epoch is 1-based, step counts batches done).

    `losses` holds every batch loss since the previous BatchProgress, in order, so
    the UI can keep spikes that a running mean would hide.
    """

    epoch: int
    step: int
    steps: int
    losses: tuple[float, ...]
    samples_per_s: float
    elapsed: float


@dataclass(frozen=True)
class EpochEnd:
    """An epoch finished: lr used during it, its mean training loss, test accuracy in %."""

    epoch: int
    lr: float
    train_loss: float
    test_acc: float
    seconds: float
    elapsed: float
    eval_seconds: float = 0.0  # the part of `seconds` spent on the test set
    # A live edit applied at the end of this epoch (it governs the epochs after it).
    edit: ScheduleEdit | None = None


@dataclass(frozen=True)
class RunEnded:
    """The run is over; `message` says why when it did not complete."""

    status: RunStatus
    message: str
    epochs_done: int
    elapsed: float


@dataclass(frozen=True)
class RecordOpened:
    """The run is recorded in this folder (export and the runs table find it there)."""

    path: str


Event = RunStarted | Notice | BatchProgress | EpochEnd | RunEnded | RecordOpened


def epoch_report(event: EpochEnd) -> tuple[str, str]:
    """The two lines the reference script prints per epoch, in its exact format."""
    return (
        f"Epoch {event.epoch}, Loss: {event.train_loss:.4f}, LR: {event.lr:.6f}",
        f"Test Accuracy: {event.test_acc:.2f}%",
    )
