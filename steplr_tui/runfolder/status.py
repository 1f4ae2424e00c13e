"""A run's status: the one vocabulary of status.json, the events, every viewer and the shell."""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    """A run's status: the one vocabulary of status.json, events, viewers and the shell."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    STOPPED = "STOPPED"
    FAILED = "FAILED"
    # Stopped early by its sweep's pruner (its checkpoint is kept, as for STOPPED).
    PRUNED = "PRUNED"
    # Never written by a run: what a RUNNING status whose process is gone reads as (a
    # sweep, the launcher of its trials, writes it for a trial it saw die).
    INTERRUPTED = "INTERRUPTED"

    @property
    def final(self) -> bool:
        return self is not Status.RUNNING

    def __str__(self) -> str:
        return self.value
