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
