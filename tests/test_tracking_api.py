"""The shape of `track()` for the loops people have: without `with` (a plain script, a
trainer class keeping `self.run`), ended by `finish()` or by the interpreter's exit;
test_acc as a fraction or in percent; a sweep's trial answering the script's own
suggest_* calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import steplr_tui
from steplr_tui.run.tracker import TrackingError
from steplr_tui.runfolder import METRICS_FILE, STATUS_FILE
from steplr_tui.study.engine import create_study, read_trials
from tests.helpers import spec

ROOT = Path(__file__).resolve().parents[1]


def status(path: Path) -> dict:
    return json.loads((path / STATUS_FILE).read_text())


def metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / METRICS_FILE).read_text().splitlines()]


def one_epoch(run, optimizer, scheduler, acc) -> None:
    optimizer.step()
    run.log_batch(0.5)
    scheduler.step()
    run.end_epoch(test_acc=acc)


def parts(lr=0.1):
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, 1, 0.5)


def test_without_with_finish_ends_the_record_completed(tmp_path: Path):
    optimizer, scheduler = parts()
    run = steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=2)
    for _ in range(2):
        one_epoch(run, optimizer, scheduler, 90.0)
    run.finish()
    run.finish()  # twice: nothing more
    assert status(run.path)["status"] == "COMPLETED"
    assert len(metrics(run.path)) == 2


def test_without_with_a_stop_ends_the_loop_and_finish_records_stopped(tmp_path: Path):
    from steplr_tui.cli.shell import send
    from steplr_tui.runfolder import StopRequest, new_request_id

    optimizer, scheduler = parts()
    run = steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=3)
    one_epoch(run, optimizer, scheduler, 90.0)
    send(run.path, StopRequest(new_request_id(), "test"))
    assert run.should_stop()
    assert run.end_epoch(test_acc=91.0) is None  # no with block to end: nothing recorded
    run.finish()
    assert status(run.path)["status"] == "STOPPED"
    assert len(metrics(run.path)) == 1


SCRIPT = """
import sys, torch, steplr_tui

class Trainer:  # the DDP tutorial's shape: the loop lives in methods
    def __init__(self):
        self.model = torch.nn.Linear(4, 2)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, 1, 0.5)
        self.run = steplr_tui.track(self.optimizer, self.scheduler, runs_dir=sys.argv[1],
                                    epochs=3)

    def _run_epoch(self, epoch):
        for _ in range(2):
            self.optimizer.step()
            self.run.log_batch(0.5)
        self.scheduler.step()
        if sys.argv[2] == "fail" and epoch == 2:
            raise RuntimeError("CUDA out of memory\\nsecond line")
        self.run.end_epoch(test_acc=0.5 + epoch / 10)

    def train(self):
        for epoch in range(1, 4):
            self._run_epoch(epoch)

Trainer().train()
print("done", flush=True)
"""


@pytest.mark.parametrize(
    "how, expected, reason",
    [("ok", "COMPLETED", ""), ("fail", "FAILED", "RuntimeError: CUDA out of memory")],
)
def test_the_interpreters_exit_ends_a_record_left_open(tmp_path: Path, how, expected, reason):
    script = tmp_path / "trainer.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "runs"), how],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    (path,) = (tmp_path / "runs").iterdir()
    assert status(path)["status"] == expected
    assert status(path)["reason"] == reason
    if how == "fail":
        assert done.returncode == 1 and "Traceback" in done.stderr  # the usual traceback too
    else:
        assert done.returncode == 0
        # Fractions (0.6, 0.7, 0.8) are recorded in percent, as every view shows them.
        assert [m["test_acc"] for m in metrics(path)] == pytest.approx([60.0, 70.0, 80.0])
        config = json.loads((path / "config.json").read_text())
        assert config["test_acc_unit"] == "fraction"


def test_test_acc_in_percent_is_kept_and_a_fraction_run_refuses_a_percent(tmp_path: Path):
    optimizer, scheduler = parts()
    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=3) as run:
        one_epoch(run, optimizer, scheduler, 45.5)
        one_epoch(run, optimizer, scheduler, 0.5)  # a bad epoch, in percent: kept
    assert [m["test_acc"] for m in metrics(run.path)] == [45.5, 0.5]
    optimizer, scheduler = parts()
    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=3) as run:
        one_epoch(run, optimizer, scheduler, 0.89)
        with pytest.raises(TrackingError, match="acc_unit='percent'") as excinfo:
            one_epoch(run, optimizer, scheduler, 91.0)
        assert "\n" not in str(excinfo.value)
    assert [m["test_acc"] for m in metrics(run.path)] == [89.0]


def test_acc_unit_says_it_outright(tmp_path: Path):
    optimizer, scheduler = parts()
    with steplr_tui.track(
        optimizer, scheduler, runs_dir=tmp_path, epochs=1, acc_unit="percent"
    ) as run:
        one_epoch(run, optimizer, scheduler, 0.9)  # 0.9%, as said
    assert metrics(run.path)[0]["test_acc"] == 0.9
    with pytest.raises(TrackingError, match="acc_unit must be one of auto, percent, fraction"):
        steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, acc_unit="%")


def test_a_sweep_trial_answers_suggest_for_the_scripts_own_dimensions(tmp_path, monkeypatch):
    from steplr_tui.study.spec import storage_url, sweep_folder, write_spec

    monkeypatch.delenv("STEPLR_TUI_SWEEP_TRIAL", raising=False)
    s = spec(name="own", gamma="0.1,0.5")
    folder = sweep_folder(tmp_path, s.name)
    write_spec(folder, s)
    create_study(s, storage_url(s, folder))
    trial = steplr_tui.join_sweep("own", runs_dir=tmp_path)
    hidden = trial.suggest_int("hidden", 8, 64)
    kind = trial.suggest_categorical("optimizer", ["sgd", "adam"])
    dropout = trial.suggest_float("dropout", 0.0, 0.5)
    assert 8 <= hidden <= 64 and kind in ("sgd", "adam") and 0.0 <= dropout <= 0.5
    with pytest.raises(TrackingError, match="sweep's own dimension"):
        trial.suggest_float("gamma", 0.1, 0.9)
    model = torch.nn.Linear(4, hidden)
    optimizer = torch.optim.SGD(model.parameters(), lr=trial.params["lr"])
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, trial.params["step_size"], trial.params["gamma"]
    )
    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=1, trial=trial) as run:
        one_epoch(run, optimizer, scheduler, 90.0)
    (row,) = read_trials(create_study(s, storage_url(s, folder)))
    assert row.state == "COMPLETE"
    assert row.params["hidden"] == hidden and row.params["optimizer"] == kind
