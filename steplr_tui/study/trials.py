"""The one place that reaches into Optuna's private API.

A sweep's worker and a trial's own process act on a trial that another process asked
for, by its number: its state, its user attributes, and a `Trial` to report through.
Optuna's public API offers these only to the process that holds the trial, so these
few functions use `study._storage` and `study._study_id`, the same in every Optuna
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
