"""A run as a trial of a sweep, in one process: the tracker reports each epoch to the
study, a pruned run ends PRUNED at its next batch (not at the last epoch), a study that
goes away costs the run its pruning only; a script joins a sweep by hand with
`join_sweep` and tells the study itself; an Optuna trial of the user's own study works
the same and raises TrialPruned, as Optuna's optimize expects."""

from __future__ import annotations

import json

import optuna
import pytest
import torch

import steplr_tui
from steplr_tui.runfolder import Status
from steplr_tui.runfolder.reader import list_runs
from steplr_tui.study.engine import create_study, read_trials
from tests.helpers import spec


class Link:
    """A trial whose pruner stops the run after epoch `at`."""

    owner = False

    def __init__(self, at: int | None, fail: bool = False) -> None:
        self.at, self.fail, self.reported = at, fail, []

    def report(self, epoch, metrics):
        if self.fail:
            raise ConnectionError("the database went away")
        self.reported.append((epoch, metrics["test_acc"]))
        return f"pruned: test_acc after epoch {epoch}" if epoch == self.at else None

    def where(self, folder):
        pass

    def finish(self, status, metrics, reason):
        self.finished = (status, reason)


def loop(runs, trial, epochs=4, steps=5):
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 2, 0.5)
    trained = []
    with steplr_tui.track(
        optimizer, scheduler, runs_dir=runs, epochs=epochs, steps_per_epoch=steps, trial=trial
    ) as run:
        for epoch in range(run.epoch, epochs + 1):
            for _ in range(steps):
                if run.should_stop():
                    break
                optimizer.step()
                run.log_batch(0.5)
                trained.append(epoch)
            scheduler.step()
            run.end_epoch(test_acc=80.0 + epoch)
    return run, trained


def test_a_pruned_trial_stops_at_its_next_batch_and_ends_pruned(tmp_path, monkeypatch):
    from steplr_tui.run import sweep_trial

    monkeypatch.setattr(sweep_trial, "as_link", lambda trial: trial)
    link = Link(at=2)
    _run, trained = loop(tmp_path, link)
    (info,) = list_runs(tmp_path)
    assert info.status is Status.PRUNED and info.reason == "pruned: test_acc after epoch 2"
    assert [m["epoch"] for m in info.metrics] == [1, 2] and set(trained) == {1, 2}
    assert link.reported == [(1, 81.0), (2, 82.0)]
    assert link.finished == (Status.PRUNED, "pruned: test_acc after epoch 2")


def test_the_last_epoch_is_reported_but_never_pruned(tmp_path, monkeypatch):
    from steplr_tui.run import sweep_trial

    monkeypatch.setattr(sweep_trial, "as_link", lambda trial: trial)
    link = Link(at=4)
    loop(tmp_path, link)
    (info,) = list_runs(tmp_path)
    assert info.status is Status.COMPLETED and link.reported[-1] == (4, 84.0)


def test_a_study_that_goes_away_costs_the_run_its_pruning_only(tmp_path, monkeypatch):
    from steplr_tui.run import sweep_trial
    from steplr_tui.runfolder.history import read_history

    monkeypatch.setattr(sweep_trial, "as_link", lambda trial: trial)
    loop(tmp_path, Link(at=None, fail=True))
    (info,) = list_runs(tmp_path)
    assert info.status is Status.COMPLETED and len(info.metrics) == 4
    notices = [e.text for e in read_history(info.path).events if hasattr(e, "level")]
    assert any("could not be reached" in t and "without pruning" in t for t in notices)


def test_a_script_joins_a_sweep_by_hand_and_tells_the_study(tmp_path, monkeypatch):
    from steplr_tui.study.spec import storage_url, sweep_folder, write_spec

    monkeypatch.delenv("STEPLR_TUI_SWEEP_TRIAL", raising=False)
    s = spec(name="byhand", gamma="0.1,0.5")
    folder = sweep_folder(tmp_path, s.name)
    write_spec(folder, s)
    create_study(s, storage_url(s, folder))
    trial = steplr_tui.join_sweep("byhand", runs_dir=tmp_path)
    assert trial.number == 0 and trial.params["gamma"] in (0.1, 0.5)
    assert trial.config["epochs"] == 5 and trial.params["lr"] == 0.001
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=trial.params["lr"])
    wrong = torch.optim.lr_scheduler.StepLR(optimizer, 7, 0.9)
    with pytest.raises(steplr_tui.TrackingError, match="trial 0 of byhand asks for"):
        steplr_tui.track(optimizer, wrong, runs_dir=tmp_path, trial=trial)
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, trial.params["step_size"], trial.params["gamma"]
    )
    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=2, trial=trial) as run:
        for _ in range(2):
            optimizer.step()
            run.log_batch(0.3)
            scheduler.step()
            run.end_epoch(test_acc=90.0)
    (row,) = read_trials(create_study(s, storage_url(s, folder)))
    assert (row.state, row.value, row.status) == ("COMPLETE", 90.0, "COMPLETED")
    assert row.run_folder == str(run.path)
    config = json.loads((run.path / "config.json").read_text())
    assert config["sweep"]["study"] == "byhand" and config["sweep"]["trial"] == 0


def test_join_sweep_says_how_to_find_a_sweep(tmp_path, monkeypatch):
    monkeypatch.delenv("STEPLR_TUI_SWEEP_TRIAL", raising=False)
    with pytest.raises(steplr_tui.TrackingError, match=r"no sweep 'nope'.*steplr-tui sweep"):
        steplr_tui.join_sweep("nope", runs_dir=tmp_path)
    with pytest.raises(steplr_tui.TrackingError, match="give the sweep's name"):
        steplr_tui.join_sweep()


def test_an_optuna_trial_of_your_own_study_is_pruned_as_optuna_expects(tmp_path):
    study = optuna.create_study(
        direction="maximize",
        pruner=optuna.pruners.ThresholdPruner(upper=81.5),  # stops it after epoch 2
    )

    def objective(trial):
        loop(tmp_path, trial)
        return 90.0

    study.optimize(objective, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED
    (info,) = list_runs(tmp_path)
    assert info.status is Status.PRUNED and len(info.metrics) == 2
