"""Run records, checkpoints and resume, in-process on synthetic data."""

from __future__ import annotations

import functools
import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from steplr_tui.run.checkpoint import CheckpointError, load_checkpoint
from steplr_tui.run.control import Inbox
from steplr_tui.run.jobs import Job, run_job
from steplr_tui.run.record import RunRecord
from steplr_tui.runfolder import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    STATUS_FILE,
    Decision,
    EditRequest,
    EpochEnd,
    RunEnded,
    Status,
)
from steplr_tui.runfolder.lock import LOCK_FILE, RunLock
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.reader import RunNotFound, find_run, list_runs, read_run
from steplr_tui.runfolder.resume import config_from_record, resume_problem
from steplr_tui.runfolder.runs_table import SUMMARY_COLUMNS
from steplr_tui.runfolder.schedule import ScheduleEdit, lrs_with_edits, step_lrs
from tests.helpers import run_to_its_end
from tests.synthetic import synthetic_data

CONFIG = TrainConfig(epochs=6, batch_size=64, step_size=2, gamma=0.5, lr=0.01, device="cpu")
DATA = synthetic_data(n_train=1024, n_test=256)


job_run = functools.partial(run_to_its_end, data=DATA)


def test_a_completed_run_leaves_a_full_record(tmp_path: Path):
    end, _ = job_run(Job(CONFIG, tmp_path))
    assert end.status is Status.COMPLETED
    (run,) = list_runs(tmp_path)
    assert run.status == "COMPLETED" and run.reason == ""
    assert [m["epoch"] for m in run.metrics] == [1, 2, 3, 4, 5, 6]
    assert [m["lr"] for m in run.metrics] == step_lrs(0.01, 2, 0.5, 6)
    assert set(run.metrics[0]) == {"epoch", "lr", "train_loss", "test_acc", "seconds"}
    saved = json.loads((run.path / "config.json").read_text())
    assert saved["config"] == {**CONFIG.as_dict()}
    assert saved["versions"]["torch"] == torch.__version__
    assert saved["versions"]["steplr_tui"]
    assert saved["device_used"].startswith("cpu")
    assert (run.path / CHECKPOINT_FILE).is_file()
    assert not list(run.path.glob(".*.tmp"))


def test_stopped_then_resumed_equals_uninterrupted(tmp_path: Path):
    _whole, _ = job_run(Job(CONFIG, tmp_path / "a"))
    (full,) = list_runs(tmp_path / "a")

    end, _ = job_run(Job(CONFIG, tmp_path / "b"), stop_after_epochs=2)
    assert end.status is Status.STOPPED
    (stopped,) = list_runs(tmp_path / "b")
    assert stopped.status == "STOPPED" and stopped.epochs_done == 2
    assert resume_problem(stopped) is None

    config = config_from_record(stopped, TrainConfig(device="cpu"))
    assert config == CONFIG
    end, events = job_run(Job(config, tmp_path / "b", resume=stopped.path))
    assert end.status is Status.COMPLETED
    resumed = read_run(stopped.path)
    assert resumed.status == "COMPLETED"
    # Same lrs, and on the CPU with the same seed, the very same numbers.
    assert resumed.metrics_without_time() == full.metrics_without_time()
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [3, 4, 5, 6]


def test_resume_drops_epochs_newer_than_the_checkpoint(tmp_path: Path):
    job_run(Job(CONFIG, tmp_path), stop_after_epochs=3)
    (run,) = list_runs(tmp_path)
    # As if killed after the metrics line was written but before its checkpoint.
    record = RunRecord(run.path)
    state = load_checkpoint(run.path / CHECKPOINT_FILE)
    assert state["epoch"] == 3
    bogus = {"epoch": 4, "lr": 9.0, "train_loss": 9.0, "test_acc": 9.0, "seconds": 0.0}
    record.append_epoch(bogus)
    end, _ = job_run(Job(CONFIG, tmp_path, resume=run.path))
    assert end.status is Status.COMPLETED
    epochs = [m["epoch"] for m in read_run(run.path).metrics]
    assert epochs == [1, 2, 3, 4, 5, 6]
    assert 9.0 not in [m["lr"] for m in read_run(run.path).metrics]


def test_completed_run_cannot_be_resumed(tmp_path: Path):
    job_run(Job(CONFIG.with_values(epochs=2), tmp_path))
    (run,) = list_runs(tmp_path)
    assert "already completed" in resume_problem(run)
    end, _ = job_run(Job(CONFIG, tmp_path, resume=run.path))
    assert end.status is Status.FAILED and "already completed" in end.message


def test_failed_run_is_recorded_with_its_reason(tmp_path: Path):
    config = CONFIG.with_values(dataset="mnist", data_dir=str(tmp_path / "nodata"), download=False)
    end = run_job(Job(config, tmp_path / "runs"), lambda e: None)
    assert end.status is Status.FAILED
    (run,) = list_runs(tmp_path / "runs")
    assert run.status == "FAILED" and "MNIST files missing" in run.reason
    assert "no checkpoint" in resume_problem(run)


def test_torn_last_line_is_skipped(tmp_path: Path):
    job_run(Job(CONFIG.with_values(epochs=2), tmp_path))
    (run,) = list_runs(tmp_path)
    with open(run.path / METRICS_FILE, "a") as fh:
        fh.write('{"epoch": 3, "lr": 0.0')  # a kill in the middle of a write
    assert [m["epoch"] for m in read_run(run.path).metrics] == [1, 2]


def test_missing_or_dead_status_reads_interrupted(tmp_path: Path):
    job_run(Job(CONFIG.with_values(epochs=1), tmp_path))
    (run,) = list_runs(tmp_path)
    (run.path / STATUS_FILE).write_text(
        json.dumps({"status": "RUNNING", "pid": 2**22 + 12345, "host": os.uname().nodename})
    )
    assert read_run(run.path).status == "INTERRUPTED"
    (run.path / STATUS_FILE).unlink()
    assert read_run(run.path).status == "INTERRUPTED"
    (run.path / STATUS_FILE).write_text(
        json.dumps({"status": "RUNNING", "pid": os.getpid(), "host": os.uname().nodename})
    )
    # Liveness is the folder's lock, not the pid: a live (or reused) pid is not enough.
    assert read_run(run.path).status == "INTERRUPTED"
    with RunLock.acquire(run.path):
        assert read_run(run.path).status == "RUNNING"
    # A folder from before run locks (no run.lock) still asks the pid.
    (run.path / LOCK_FILE).unlink()
    assert read_run(run.path).status == "RUNNING"


def test_find_run_by_path_name_and_prefix(tmp_path: Path):
    job_run(Job(CONFIG.with_values(epochs=1), tmp_path))
    job_run(Job(CONFIG.with_values(epochs=1, lr=0.02), tmp_path))
    a, _b = sorted(list_runs(tmp_path), key=lambda r: r.name)
    assert find_run(str(a.path), tmp_path) == a.path
    assert find_run(a.name, tmp_path) == a.path
    with pytest.raises(RunNotFound, match="matches 2 runs"):
        find_run(a.name[:8], tmp_path)
    with pytest.raises(RunNotFound, match="no run 'nope'"):
        find_run("nope", tmp_path)
    with pytest.raises(RunNotFound):
        read_run(tmp_path / "not-a-run")


def test_truncated_checkpoint_is_refused(tmp_path: Path):
    job_run(Job(CONFIG.with_values(epochs=1), tmp_path))
    (run,) = list_runs(tmp_path)
    path = run.path / CHECKPOINT_FILE
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {_Evil.marker}",))


def test_malicious_checkpoint_is_refused_and_not_executed(tmp_path: Path):
    _Evil.marker = tmp_path / "pwned"
    path = tmp_path / CHECKPOINT_FILE
    with open(path, "wb") as fh:
        pickle.dump({"format": 1, "epoch": 1, "model": _Evil()}, fh)
    with pytest.raises(CheckpointError, match="objects other than tensors"):
        load_checkpoint(path)
    assert not _Evil.marker.exists()


def test_foreign_checkpoint_is_refused(tmp_path: Path):
    path = tmp_path / CHECKPOINT_FILE
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not a steplr-tui checkpoint"):
        load_checkpoint(path)


def test_checkpoint_for_another_model_shape_is_refused(tmp_path: Path):
    job_run(Job(CONFIG, tmp_path), stop_after_epochs=1)
    (run,) = list_runs(tmp_path)
    state = load_checkpoint(run.path / CHECKPOINT_FILE)
    state["model"]["weight"] = torch.zeros(3, 3)
    torch.save(state, run.path / CHECKPOINT_FILE)
    end, _ = job_run(Job(CONFIG, tmp_path, resume=run.path))
    assert end.status is Status.FAILED and "does not fit" in end.message


def test_unwritable_runs_dir_fails_cleanly(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    end = run_job(Job(CONFIG, blocker / "runs"), lambda e: None, data=DATA)
    assert isinstance(end, RunEnded) and end.status is Status.FAILED


def test_list_runs_prints_each_run_with_status_and_accuracy(tmp_path: Path, capsys):
    import sys

    from steplr_tui.cli.shell import print_runs

    job_run(Job(CONFIG.with_values(epochs=2), tmp_path))
    (run,) = list_runs(tmp_path)
    assert print_runs(tmp_path, sys.stdout) == 0
    out = capsys.readouterr().out.splitlines()
    header = out[0]
    positions = [header.index(column) for column in SUMMARY_COLUMNS]
    assert positions == sorted(positions)
    best = max(m["test_acc"] for m in run.metrics)
    row = out[1]
    for cell in (run.name, "COMPLETED", "adam lr 0.01 s2 g0.5 b64", "2/2", f"{best:.2f}%"):
        assert cell in row
    assert row.index("COMPLETED") == header.index("status")
    assert print_runs(tmp_path / "empty", sys.stdout) == 0
    assert capsys.readouterr().out.startswith("no runs in")


EDITS = {2: ScheduleEdit(lr=0.02), 4: ScheduleEdit(step_size=3, gamma=0.25)}


def test_live_edits_apply_at_the_boundary_and_are_recorded(tmp_path: Path):
    end, events = job_run(Job(CONFIG, tmp_path, inbox=Inbox()), edits_during=EDITS)
    assert end.status is Status.COMPLETED
    expected = lrs_with_edits(CONFIG.lr, CONFIG.step_size, CONFIG.gamma, CONFIG.epochs, EDITS)
    assert [e.lr for e in events if isinstance(e, EpochEnd)] == expected
    assert [e.epoch for e in events if isinstance(e, EpochEnd) and e.edit] == [2, 4]
    (run,) = list_runs(tmp_path)
    assert [m["lr"] for m in run.metrics] == expected
    assert {m["epoch"]: m["edit"] for m in run.metrics if "edit" in m} == {
        2: {"lr": 0.02},
        4: {"step_size": 3, "gamma": 0.25},
    }


def test_a_resumed_run_follows_its_recorded_live_edits(tmp_path: Path):
    job_run(Job(CONFIG, tmp_path / "a", inbox=Inbox()), edits_during=EDITS)
    (whole,) = list_runs(tmp_path / "a")

    # Stopped after epoch 4, whose boundary applied the second edit; resumed with no edits.
    job_run(Job(CONFIG, tmp_path / "b", inbox=Inbox()), 4, edits_during=EDITS)
    (stopped,) = list_runs(tmp_path / "b")
    assert stopped.epochs_done == 4
    config = config_from_record(stopped, TrainConfig(device="cpu"))
    end, events = job_run(Job(config, tmp_path / "b", resume=stopped.path, inbox=Inbox()))
    assert end.status is Status.COMPLETED
    resumed = read_run(stopped.path)
    assert resumed.metrics_without_time() == whole.metrics_without_time()
    assert [e.lr for e in events if isinstance(e, EpochEnd)][-2:] == [
        m["lr"] for m in whole.metrics
    ][-2:]


def test_an_edit_sent_in_the_last_epoch_is_refused_not_applied(tmp_path: Path):
    inbox = Inbox()
    inbox.put(EditRequest("late", ScheduleEdit(lr=0.5), "test"))
    config = CONFIG.with_values(epochs=1)
    _, events = job_run(Job(config, None, inbox=inbox))
    (epoch,) = [e for e in events if isinstance(e, EpochEnd)]
    assert epoch.edit is None and epoch.lr == config.lr
    (decision,) = [e for e in events if isinstance(e, Decision)]
    assert decision.request == "late" and decision.decision == "refused"
    assert "no boundary left" in decision.reason


def test_the_runs_table_and_list_runs_show_what_each_run_trained_on(tmp_path: Path, capsys):
    import sys

    from steplr_tui.cli.shell import print_runs
    from steplr_tui.runfolder.runs_table import summary_row

    # The same settings on the sample and on MNIST must not read as the same run.
    for dataset in ("MNIST sample", "MNIST"):
        record = RunRecord.create(tmp_path, CONFIG.with_values(dataset="auto").as_dict(), {})
        record.update_config(dataset_name=dataset)
    script = RunRecord.create(tmp_path, {"dataset": "cifar10"}, {"kind": "script"})
    unknown = RunRecord.create(tmp_path, {}, {"kind": "script"})
    by_name = {run.name: run for run in list_runs(tmp_path)}
    column = SUMMARY_COLUMNS.index("data")
    shown = sorted(summary_row(run)[column] for run in by_name.values())
    assert shown == ["-", "MNIST", "cifar10", "sample"]
    assert summary_row(by_name[script.name])[column] == "cifar10"
    assert summary_row(by_name[unknown.name])[column] == "-"
    assert print_runs(tmp_path, sys.stdout) == 0
    out = capsys.readouterr().out.splitlines()
    at = out[0].index("data")
    assert sorted(line[at:].split()[0] for line in out[1:5]) == shown


def test_runs_started_in_the_same_second_have_distinct_short_names(tmp_path, monkeypatch):
    import threading

    from steplr_tui.run import record as record_module
    from steplr_tui.runfolder.runs_table import short_name

    monkeypatch.setattr(record_module.time, "strftime", lambda _fmt: "20261206-101500")
    made: list[str] = []

    def create(lr: float) -> None:  # a sweep's parallel trials, each in its own thread
        made.append(RunRecord.create(tmp_path, CONFIG.with_values(lr=lr).as_dict(), {}).name)

    threads = [threading.Thread(target=create, args=(0.001 * (1 + i % 2),)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shorts = sorted(short_name(name) for name in made)
    assert len(set(shorts)) == 6, shorts
    assert shorts[0] == "20261206-101500" and "20261206-101500.2" in shorts
    # Each short name names its run, though the first is a prefix of the others.
    for name in made:
        assert find_run(short_name(name), tmp_path).name == name
    # Newest first: the second of that second before the first.
    names = [run.name for run in list_runs(tmp_path)]
    assert names.index(next(n for n in made if short_name(n) == "20261206-101500.2")) < names.index(
        next(n for n in made if short_name(n) == "20261206-101500")
    )


def test_list_runs_counts_its_runs_in_words(tmp_path: Path, capsys):
    import sys

    from steplr_tui.cli.shell import print_runs
    from steplr_tui.run.record import RunRecord

    RunRecord.create(tmp_path, CONFIG.as_dict(), {})
    assert print_runs(tmp_path, sys.stdout) == 0
    assert f"(1 run in {tmp_path}, 0 running)" in capsys.readouterr().out
    RunRecord.create(tmp_path, CONFIG.as_dict(), {})
    assert print_runs(tmp_path, sys.stdout) == 0
    assert f"(2 runs in {tmp_path}, 0 running)" in capsys.readouterr().out
