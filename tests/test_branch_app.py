"""Branches in the dashboard: b in the runs table, ctrl+b on the dashboard, branches under
their parent, and a branch drawn over its parent."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from steplr_tui.cli.shell import print_runs
from steplr_tui.run.branch import branch_of, create_branch, plan_branch
from steplr_tui.run.jobs import Job, run_job
from steplr_tui.runfolder import Status
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.reader import list_runs, read_run
from steplr_tui.runfolder.runs_table import nest_branches
from steplr_tui.runfolder.schedule import ScheduleEdit
from steplr_tui.viewer.compare import Overlay
from steplr_tui.viewer.screens.branch_form import BranchScreen
from steplr_tui.viewer.starter import Starter
from tests.fakes import FakeTrainer
from tests.helpers import make_app, wait_for
from tests.synthetic import synthetic_data

SIZE = (120, 40)
CONFIG = TrainConfig(epochs=4, batch_size=128, lr=0.02, step_size=2, gamma=0.5, device="cpu")
BASE = TrainConfig(device="cpu")


@pytest.fixture
def launched(monkeypatch):
    """launch() without a process: the commands it would have run."""
    import steplr_tui.run.launch as launch

    commands = []

    class Proc:
        pid = 999_999

    def spawn(command, log, env=None, reap=False, pass_fds=()):
        commands.append(command)
        return Proc()

    monkeypatch.setattr(launch, "spawn", spawn)
    return commands


def branching() -> Starter:
    """The run side as the command line hands it, for branches (launch() is faked)."""
    from steplr_tui.cli.run_side import branch

    return Starter(train=FakeTrainer(), branch=branch)


def make_parent(folder: Path) -> Path:
    end = run_job(Job(CONFIG, folder), lambda e: None, data=synthetic_data())
    assert end.status is Status.COMPLETED
    (run,) = list_runs(folder)
    return run.path


def test_branches_are_listed_under_their_parent(tmp_path, capsys):
    parent = make_parent(tmp_path)
    (tmp_path / "zz-other").mkdir()  # a run newer than the branch, by name
    other = make_parent(tmp_path / "zz-other")
    other.rename(tmp_path / ("29991231-000000-" + other.name.split("-", 2)[2]))
    first = create_branch(plan_branch(parent, 2, ScheduleEdit(gamma=0.9), BASE), tmp_path)
    run_job(Job(CONFIG, folder=first), lambda e: None, data=synthetic_data())
    second = create_branch(plan_branch(first, 4, ScheduleEdit(lr=0.001), BASE, 5), tmp_path)
    nested = [(run.path, depth) for run, depth in nest_branches(list_runs(tmp_path))]
    assert nested[1:] == [(parent, 0), (first, 1), (second, 2)]
    print_runs(tmp_path, sys.stdout)
    lines = capsys.readouterr().out.splitlines()
    assert lines[3].startswith("└ " + first.name)
    assert lines[4].startswith("  └ " + second.name)


def test_an_overlaid_branch_is_drawn_from_its_branch_point(tmp_path):
    parent = make_parent(tmp_path)
    folder = create_branch(plan_branch(parent, 2, ScheduleEdit(gamma=0.9), BASE), tmp_path)
    run_job(Job(CONFIG, folder=folder), lambda e: None, data=synthetic_data())
    overlay = Overlay.from_run(read_run(folder))
    assert [math.isnan(v) for v in overlay.accs] == [True, False, False, False]
    assert overlay.label.endswith("· e2: gamma 0.9")


async def test_b_in_the_runs_table_starts_a_branch_detached(tmp_path, launched):
    parent = make_parent(tmp_path)
    app = make_app(FakeTrainer(), runs_dir=tmp_path, starter=branching())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: app.screen.query(DataTable) and app.screen.runs)
        runs = app.screen
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, BranchScreen))
        form = app.screen
        # The last kept epoch that leaves epochs to train: the drop after epoch 2.
        assert form.query_one("#branch-at", Input).value == "2"
        assert "epochs with a checkpoint: 2, 4" in str(form.query_one("#branch-hint").render())
        form.query_one("#branch-at", Input).value = "1"
        await pilot.pause()
        assert "can be branched after epoch 2, 4" in str(form.query_one("#branch-errors").render())
        form.query_one("#branch-at", Input).value = "2"
        form.query_one("#branch-gamma", Input).value = "0.9"
        await pilot.pause()
        assert form.problem == ""
        await pilot.press("ctrl+r")  # as in the sweep form: ctrl+s means Stop
        await wait_for(pilot, lambda: app.screen is runs and len(runs.runs) == 2)
        assert len(launched) == 1
        branch = next(r for r in runs.runs if r.path != parent)
        assert branch_of(branch)["edit"] == {"gamma": 0.9}
        assert [r.path for r in runs.runs] == [parent, branch.path]  # under its parent
        table = runs.query_one(DataTable)
        assert str(table.get_row_at(1)[1]).startswith("└ ")


async def test_ctrl_b_branches_the_run_on_screen_and_its_branch_is_drawn_over_it(
    tmp_path, launched
):
    parent = make_parent(tmp_path)
    app = make_app(FakeTrainer(), runs_dir=tmp_path, attach=parent, starter=branching())
    async with app.run_test(size=SIZE) as pilot:
        dashboard = app.screen
        await wait_for(pilot, lambda: len(dashboard.view.epochs) == 4)
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, BranchScreen))
        app.screen.query_one("#branch-lr", Input).value = "0.005"
        await pilot.pause()
        await pilot.press("enter")
        # The finished parent's view gives way to the branch, drawn over its parent.
        await wait_for(pilot, lambda: app.screen is dashboard and dashboard.view.record)
        await wait_for(pilot, lambda: dashboard.view.record != str(parent))
        assert [o.key for o in dashboard.context.overlays] == [str(parent)]
        # The branch's record replays as one run's: the parent's epochs, and the edit.
        await wait_for(pilot, lambda: len(dashboard.view.epochs) == 2)
        assert dashboard.view.edits == {2: ScheduleEdit(lr=0.005)}
        assert not dashboard.view.mismatches
