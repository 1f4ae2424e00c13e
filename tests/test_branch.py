"""Kept checkpoints and branches, in-process on synthetic data."""

from __future__ import annotations

import functools
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from steplr_tui.cli.main import main
from steplr_tui.run.branch import BranchError, branch_of, create_branch, plan_branch
from steplr_tui.run.control import Inbox
from steplr_tui.run.jobs import Job
from steplr_tui.run.record import write_status
from steplr_tui.runfolder import EpochEnd, Status
from steplr_tui.runfolder.checkpoints import (
    KeepError,
    KeepPolicy,
    branchable_epochs,
    kept_checkpoints,
)
from steplr_tui.runfolder.lock import RunLock
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.reader import list_runs, read_run
from steplr_tui.runfolder.resume import config_from_record, resume_problem
from steplr_tui.runfolder.schedule import ScheduleEdit
from tests.helpers import run_to_its_end
from tests.synthetic import synthetic_data

CONFIG = TrainConfig(epochs=5, batch_size=64, step_size=2, gamma=0.5, lr=0.01, device="cpu")
DATA = synthetic_data(n_train=512, n_test=128)
BASE = TrainConfig(device="cpu")


job_run = functools.partial(run_to_its_end, data=DATA)


def only_run(folder: Path):
    (run,) = list_runs(folder)
    return run


@pytest.fixture(scope="module")
def parent(tmp_path_factory) -> Path:
    """A finished run that kept epoch 3 besides its lr changes (after epochs 2 and 4)."""
    folder = tmp_path_factory.mktemp("parent")
    end, _ = job_run(Job(CONFIG, folder, keep=KeepPolicy(epochs=frozenset({3}))))
    assert end.status is Status.COMPLETED
    return only_run(folder).path


def test_keep_checkpoints_parses_all_or_a_list():
    assert KeepPolicy.parse("all") == KeepPolicy(all=True)
    assert KeepPolicy.parse(" 2, 5") == KeepPolicy(epochs=frozenset({2, 5}))
    for bad in ("", "two", "0", "2,,5", "1001", "٣"):
        with pytest.raises(KeepError, match="'all' or epochs from 1 to 1000"):
            KeepPolicy.parse(bad)
    assert KeepPolicy.from_json(KeepPolicy.parse("2,5").as_json()) == KeepPolicy.parse("2,5")


def test_a_run_keeps_checkpoints_where_its_lr_changes_and_where_asked(parent: Path):
    # lr drops after epochs 2 and 4; epoch 3 was asked for; epoch 5 is the latest.
    assert branchable_epochs(parent) == [2, 3, 4, 5]
    names = sorted(p.name for p in (parent / "checkpoints").iterdir())
    assert names == ["epoch-0002.pt", "epoch-0003.pt", "epoch-0004.pt", "latest-0005.pt"]
    for epoch, path in kept_checkpoints(parent).items():
        assert torch.load(path, weights_only=True)["epoch"] == epoch
    # The latest is the resume checkpoint itself, linked, not copied.
    assert os.path.samefile(parent / "checkpoints" / "latest-0005.pt", parent / "checkpoint.pt")
    saved = json.loads((parent / "config.json").read_text())
    assert saved["keep_checkpoints"] == [3]


def test_keep_all_keeps_every_epoch_and_a_run_without_a_policy_keeps_lr_changes(tmp_path):
    job_run(Job(CONFIG.with_values(epochs=3), tmp_path / "all", keep=KeepPolicy(all=True)))
    assert branchable_epochs(only_run(tmp_path / "all").path) == [1, 2, 3]
    job_run(Job(CONFIG.with_values(epochs=3), tmp_path / "default"))
    assert branchable_epochs(only_run(tmp_path / "default").path) == [2, 3]


@pytest.mark.parametrize(
    ("at", "edit"),
    [
        (3, ScheduleEdit(lr=0.02, gamma=0.25)),
        (2, ScheduleEdit(step_size=3)),
        (4, ScheduleEdit()),
    ],
)
def test_a_branch_equals_a_run_that_got_the_edit_live_at_that_boundary(
    parent: Path, tmp_path: Path, at: int, edit: ScheduleEdit
):
    job_run(Job(CONFIG, tmp_path / "live", inbox=Inbox()), edits_during={at: edit} if edit else {})
    live = only_run(tmp_path / "live")

    plan = plan_branch(parent, at, edit, BASE)
    folder = create_branch(plan, tmp_path / "branches")
    end, events = job_run(Job(plan.config, folder=folder))
    assert end.status is Status.COMPLETED, end.message
    branch = read_run(folder)
    # Losses, lrs and accuracies, bit for bit; the prefix is the parent's own epochs.
    assert branch.metrics_without_time() == live.metrics_without_time()
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == list(range(at + 1, 6))
    section = branch_of(branch)
    assert section is not None
    assert (section["parent"], section["epoch"], section["edit"]) == (
        parent.name,
        at,
        edit.as_dict(),
    )
    assert branch.status is Status.COMPLETED


def test_a_branch_can_run_longer_and_be_branched_again(parent: Path, tmp_path: Path):
    plan = plan_branch(parent, 5, ScheduleEdit(lr=0.001), BASE, epochs=7)
    folder = create_branch(plan, tmp_path)
    end, _ = job_run(Job(plan.config, folder=folder))
    assert end.status is Status.COMPLETED
    branch = read_run(folder)
    assert [m["epoch"] for m in branch.metrics] == [1, 2, 3, 4, 5, 6, 7]
    assert branch.metrics[5]["lr"] == 0.001
    assert branchable_epochs(folder) == [6, 7]  # its own: the drop after 6, the latest
    again = plan_branch(folder, 7, ScheduleEdit(), BASE, epochs=8)
    assert again.config.epochs == 8


def test_a_branch_stopped_in_its_first_epoch_resumes_from_its_start(parent, tmp_path):
    edit = ScheduleEdit(gamma=0.25)
    job_run(Job(CONFIG, tmp_path / "live", inbox=Inbox()), edits_during={3: edit})
    plan = plan_branch(parent, 3, edit, BASE)
    folder = create_branch(plan, tmp_path / "b")
    end, _ = job_run(Job(plan.config, folder=folder), stop_after_epochs=0)
    assert end.status is Status.STOPPED
    stopped = read_run(folder)
    assert not stopped.has_checkpoint and resume_problem(stopped) is None
    config = config_from_record(stopped, BASE)
    end, _ = job_run(Job(config, resume=folder))
    assert end.status is Status.COMPLETED, end.message
    assert (
        read_run(folder).metrics_without_time()
        == only_run(tmp_path / "live").metrics_without_time()
    )


def test_an_epoch_without_a_checkpoint_says_which_can_be_branched(parent: Path):
    with pytest.raises(
        BranchError, match=r"no checkpoint after epoch 1: .* after epoch 2, 3, 4, 5"
    ):
        plan_branch(parent, 1, ScheduleEdit(lr=0.1), BASE)
    with pytest.raises(BranchError, match="give --epochs more than 5"):
        plan_branch(parent, 5, ScheduleEdit(lr=0.1), BASE)


def test_a_deleted_or_damaged_parent_is_named(parent: Path, tmp_path: Path):
    with pytest.raises(BranchError, match="deleted or is damaged"):
        plan_branch(tmp_path / "gone", 2, ScheduleEdit(), BASE)
    copy = tmp_path / "copy"
    shutil.copytree(parent, copy)
    (copy / "config.json").write_text("{not json")
    with pytest.raises(BranchError, match="deleted or is damaged"):
        plan_branch(copy, 2, ScheduleEdit(), BASE)


def test_a_checkpoint_that_fails_to_load_is_named(parent: Path, tmp_path: Path):
    copy = tmp_path / "copy"
    shutil.copytree(parent, copy)
    truncated = copy / "checkpoints" / "epoch-0002.pt"
    data = truncated.read_bytes()
    truncated.unlink()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(BranchError, match=rf"{truncated} is truncated or corrupt.*after epoch 3"):
        plan_branch(copy, 2, ScheduleEdit(), BASE)
    # A whole file that is not a checkpoint: the branch's run fails, naming it.
    alien = copy / "checkpoints" / "epoch-0003.pt"
    alien.unlink()
    torch.save({"not": "ours"}, alien)
    plan = plan_branch(copy, 3, ScheduleEdit(), BASE)
    folder = create_branch(plan, tmp_path / "b")
    end, _ = job_run(Job(plan.config, folder=folder))
    assert end.status is Status.FAILED
    assert str(alien.resolve()) in end.message and "branch from another epoch" in end.message


def test_a_running_parent_can_be_branched_from_a_written_checkpoint(parent, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(parent, copy)
    write_status(copy, {"status": "RUNNING", "pid": os.getpid(), "host": ""})
    with RunLock.acquire(copy):  # a live trainer holds its folder's lock
        assert read_run(copy).status is Status.RUNNING
        plan = plan_branch(copy, 4, ScheduleEdit(lr=0.003), BASE)
    folder = create_branch(plan, tmp_path / "b")
    # The branch holds its own link to the checkpoint: the parent may move on.
    shutil.rmtree(copy)
    end, _ = job_run(Job(plan.config, folder=folder))
    assert end.status is Status.COMPLETED, end.message


def test_a_checkpoint_the_disk_cannot_take_ends_the_run_in_a_named_state(tmp_path, monkeypatch):
    import steplr_tui.run.trainer as trainer

    real = trainer.save_checkpoint

    def full_disk(path, *, epoch, **kwargs):
        if epoch == 2:
            raise OSError(28, "No space left on device")
        real(path, epoch=epoch, **kwargs)

    monkeypatch.setattr(trainer, "save_checkpoint", full_disk)
    end, _ = job_run(Job(CONFIG, tmp_path))
    assert end.status is Status.FAILED
    assert "checkpoint after epoch 2 could not be written" in end.message
    assert "--resume" in end.message
    run = only_run(tmp_path)
    assert run.status is Status.FAILED and run.epochs_done == 2
    assert torch.load(run.path / "checkpoint.pt", weights_only=True)["epoch"] == 1


def test_branch_command_refuses_bad_input_in_one_line(parent: Path, capsys):
    cases = [
        (["branch", str(parent)], "give --at EPOCH"),
        (["branch", str(parent), "--at", "x"], "--at must be an epoch"),
        (["branch", str(parent), "--at", "1", "--lr", "0"], "--lr must be"),
        (["branch", str(parent), "--at", "1"], "can be branched after epoch 2, 3, 4, 5"),
        (["branch", str(parent), "--at", "2", "--keep-checkpoints", "x"], "--keep-checkpoints"),
        (["branch", str(parent), "--at", "2", "--detach", "--headless"], "not allowed with"),
    ]
    for argv, expected in cases:
        with pytest.raises(SystemExit) if "--headless" in argv else _no_exit():
            code = main(argv)
            assert code == 2
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1, err


def test_keep_checkpoints_flag_is_checked(capsys):
    with pytest.raises(SystemExit):
        main(["--keep-checkpoints", "two", "--headless"])
    assert "--keep-checkpoints must be 'all' or epochs" in capsys.readouterr().err


class _no_exit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_branch_command_detach_starts_the_branch_in_its_own_process(parent, tmp_path, monkeypatch):
    import steplr_tui.run.launch as launch

    started = []

    class Proc:
        pid = 4242

    def spawn(command, log, env=None, reap=False, pass_fds=()):
        started.append(command)
        return Proc()

    monkeypatch.setattr(launch, "spawn", spawn)
    code = main(
        [
            "branch",
            str(parent),
            "--at",
            "2",
            "--gamma",
            "0.3",
            "--detach",
            "--runs-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    (run,) = list_runs(tmp_path)
    assert run.name.endswith("-branch-e2-g0.3")
    assert branch_of(run)["parent"] == parent.name
    assert run.extra["pid"] == 4242
    (command,) = started
    at = command.index("_run")
    assert command[at + 1] == str(run.path)
    assert "--resume" not in command
