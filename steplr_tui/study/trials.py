"""The one place that reaches into Optuna's private API.

A sweep's worker and a trial's own process act on a trial that another process asked
for, by its number: its state, its user attributes, and a `Trial` to report through.
Optuna's public API offers these only to the process that holds the trial, so these
few functions use `study._storage`, `study._study_id` and a trial's `_trial_id`, and
the heartbeat's stale trials and table (RDB storages), the same in every Optuna
from 4.0 (the oldest pyproject.toml allows) to the pinned one; tests/test_sweep_study.py
checks them against the installed one.
"""

from __future__ import annotations

from typing import Any


def trial_id(study: Any, number: int) -> int:
    """The storage's id of the study's trial `number` (KeyError if there is none)."""
    return study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)


def trial_state(study: Any, number: int) -> Any:
    """The trial's `optuna.trial.TrialState`, as the storage has it now."""
    return study._storage.get_trial(trial_id(study, number)).state


def set_trial_attrs(study: Any, number: int, **attrs: Any) -> None:
    """Set user attributes on a trial this process did not ask for."""
    storage, tid = study._storage, trial_id(study, number)
    for key, value in attrs.items():
        storage.set_trial_user_attr(tid, key, value)


def trial_of(study: Any, number: int) -> Any:
    """An `optuna.trial.Trial` for a running trial that another process asked for, to
    report and prune through."""
    import optuna

    return optuna.trial.Trial(study, trial_id(study, number))


def storage_of(study: Any) -> Any:
    """The study's storage, whose public methods take a trial's id."""
    return study._storage


def frozen_of(study: Any, trial: Any) -> Any:
    """The stored `FrozenTrial` of a `Trial` this process holds (its system attributes)."""
    return study._storage.get_trial(trial._trial_id)


def trial_user_attrs(study: Any, number: int) -> dict[str, Any]:
    """The user attributes of the study's trial `number`, as the storage has them now."""
    return study._storage.get_trial(trial_id(study, number)).user_attrs


def stale_trial_ids(study: Any) -> list[int]:
    """The ids of the study's RUNNING trials whose heartbeat stopped (RDB storages)."""
    return list(study._storage._get_stale_trial_ids(study._study_id))


def running_with_heartbeat(study: Any) -> set[int]:
    """The numbers of the study's RUNNING trials that have a heartbeat row (RDB storages)."""
    import optuna
    from optuna.storages._rdb import models
    from sqlalchemy import select

    storage = study._storage
    trials, beats = models.TrialModel.__table__, models.TrialHeartbeatModel.__table__
    query = (
        select(trials.c.number)
        .join(beats, beats.c.trial_id == trials.c.trial_id)
        .where(trials.c.study_id == study._study_id)
        .where(trials.c.state == optuna.trial.TrialState.RUNNING)
    )
    engine = getattr(storage, "_backend", storage).engine
    with engine.connect() as connection:
        return {int(n) for (n,) in connection.execute(query)}
