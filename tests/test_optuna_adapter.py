"""study/trials.py, the one place that uses Optuna's private API, against the installed
Optuna: in CI the pinned one. 4.0.0, the oldest pyproject.toml allows, passes too
(pip install --no-deps --target DIR optuna==4.0.0, then PYTHONPATH=DIR first)."""

from __future__ import annotations

import pytest

optuna = pytest.importorskip("optuna")

from steplr_tui.study.trials import set_trial_attrs, trial_id, trial_of, trial_state  # noqa: E402


def _study(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="s")


def test_a_trial_asked_elsewhere_is_found_reported_and_marked_by_its_number(tmp_path):
    asker = _study(tmp_path)
    asker.ask()
    number = asker.ask().number  # trial 1: another process's, seen from here
    here = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert trial_id(here, number) != trial_id(here, 0)
    assert trial_state(here, number) == optuna.trial.TrialState.RUNNING
    set_trial_attrs(here, number, status="STOPPED", reason="by hand")
    trial = trial_of(here, number)
    trial.report(0.5, step=1)
    here.tell(number, values=0.5)
    done = asker.trials[number]
    assert done.user_attrs == {"status": "STOPPED", "reason": "by hand"}
    assert done.intermediate_values == {1: 0.5}
    assert trial_state(asker, number) == optuna.trial.TrialState.COMPLETE


def test_a_number_the_study_never_gave_is_a_key_error(tmp_path):
    with pytest.raises(KeyError):
        trial_id(_study(tmp_path), 7)


def test_the_heartbeat_s_stale_and_beating_trials_are_read_through_the_adapter(tmp_path):
    """What the sweep's heartbeat needs of the private API: the storage, a held trial's
    stored record, another's attributes, the stale trials and the beating ones."""
    import time
    import warnings

    from steplr_tui.study.trials import (
        frozen_of,
        running_with_heartbeat,
        stale_trial_ids,
        storage_of,
        trial_user_attrs,
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the heartbeat is experimental in some Optuna
        storage = optuna.storages.RDBStorage(
            f"sqlite:///{tmp_path / 'beat.db'}", heartbeat_interval=1, grace_period=1
        )
    study = optuna.create_study(storage=storage, study_name="b")
    assert storage_of(study).get_heartbeat_interval() == 1  # the storage, cached or not
    beating, quiet = study.ask(), study.ask()
    for trial in (beating, quiet):  # as a sweep's worker beats for the trials it runs
        storage.record_heartbeat(trial_id(study, trial.number))
    beating.set_user_attr("status", "RUNNING")
    assert frozen_of(study, beating).number == beating.number
    assert trial_user_attrs(study, beating.number) == {"status": "RUNNING"}
    assert running_with_heartbeat(study) == {beating.number, quiet.number}
    time.sleep(2.2)  # past the grace period with no beat: both are stale
    storage.record_heartbeat(trial_id(study, beating.number))
    assert stale_trial_ids(study) == [trial_id(study, quiet.number)]
