"""torch.distributed on the CPU: 2 ranks over gloo, launched with torchrun.

The built-in trainer (`-m steplr_tui --headless`) and a user's own DDP script
(tests/ddp_script.py, through `steplr_tui.track`). Every launch is bounded: its
torchrun runs in a session of its own, and a launch that outlives its limit has
its whole process group killed and fails the test, so a hang never stalls CI.
Each torchrun costs a few seconds of imports, so the tests share launches
(module-scoped fixtures) where one run shows several things.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steplr_tui.cli.shell import send
from steplr_tui.runfolder import (
    CONFIG_FILE,
    EditRequest,
    RunEnded,
    RunOpened,
    RunStarted,
    Status,
    StopRequest,
    new_request_id,
    sender_name,
)
from steplr_tui.runfolder.reader import list_runs, read_run
from steplr_tui.runfolder.schedule import ScheduleEdit, lrs_with_edits, step_lrs
from tests.helpers import LAUNCH_LIMIT_S, Launch, events_of, facts_of, wait_until

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "ddp_script.py"
SIGTERM_LIMIT_S = 10.0  # the promise: SIGTERM to torchrun ends every process within this
WORLD = 2

# The built-in trainer's schedule in these runs (the sample's 10,000 images).
TRAINER = ["--dataset", "sample", "--device", "cpu", "--lr", "0.002", "--step-size", "2"]
TRAINER += ["--gamma", "0.5"]


def torchrun_command(*args: str) -> list[str]:
    # --standalone: a rendezvous on a port the agent picks itself, free by construction.
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes",
        "1",
        "--nproc-per-node",
        str(WORLD),
        *args,
    ]


def run_to_end(command: list[str], runs_dir: Path) -> Launch:
    with Launch(command, runs_dir) as launch:
        code = launch.wait()
        assert code == 0, launch.err[-3000:]
    return launch


def assert_one_writer(path: Path, pid: int | None = None) -> None:
    """One process wrote the folder: one session's events, numbered 1, 2, 3... with no
    line twice, and (when known) that process is rank 0."""
    events = events_of(path)
    assert [seq for seq, _ in events] == list(range(1, len(events) + 1))
    opened = [e for _, e in events if isinstance(e, RunOpened)]
    assert len(opened) == 1
    if pid is not None:
        assert opened[0].pid == pid
    epochs = [m["epoch"] for m in read_run(path).metrics]
    assert epochs == sorted(set(epochs))


# ---- the built-in trainer --------------------------------------------------------------


@pytest.fixture(scope="module")
def builtin_runs(tmp_path_factory):
    """The same run twice: 2 ranks of 32 images a batch, and 1 process of 64."""
    runs = tmp_path_factory.mktemp("ddp-builtin")
    args = [*TRAINER, "--epochs", "3"]
    run_to_end(
        torchrun_command("-m", "steplr_tui", "--headless", *args, "--batch-size", "32"),
        runs / "ddp",
    )
    run_to_end(
        [sys.executable, "-m", "steplr_tui", "--headless", *args, "--batch-size", "64"],
        runs / "single",
    )
    (ddp,) = list_runs(runs / "ddp")
    (single,) = list_runs(runs / "single")
    return ddp, single


def test_two_ranks_follow_the_one_process_schedule_and_accuracy(builtin_runs):
    ddp, single = builtin_runs
    assert ddp.status is Status.COMPLETED and single.status is Status.COMPLETED
    assert [m["lr"] for m in ddp.metrics] == step_lrs(0.002, 2, 0.5, 3)
    assert [m["lr"] for m in ddp.metrics] == [m["lr"] for m in single.metrics]
    ddp_acc, single_acc = ddp.metrics[-1]["test_acc"], single.metrics[-1]["test_acc"]
    assert abs(ddp_acc - single_acc) <= 1.0, (ddp_acc, single_acc)
    assert ddp_acc > 80.0  # it learned (the linear model reaches ~85% on the sample)


def test_only_rank_0_records_and_the_record_says_how_it_ran(builtin_runs):
    ddp, single = builtin_runs
    assert ddp.path.parent != single.path.parent
    assert_one_writer(ddp.path, ddp.pid)
    saved = json.loads((ddp.path / CONFIG_FILE).read_text())
    assert saved["distributed"] == {
        "world_size": 2,
        "backend": "gloo",
        "batch_size_per_rank": 32,
        "global_batch_size": 64,
    }
    assert saved["config"]["batch_size"] == 32
    (started,) = [e for _, e in events_of(ddp.path) if isinstance(e, RunStarted)]
    assert (started.world_size, started.backend, started.global_batch) == (2, "gloo", 64)
    one = json.loads((single.path / CONFIG_FILE).read_text())["distributed"]
    assert one["world_size"] == 1 and one["global_batch_size"] == 64


@pytest.fixture(scope="module")
def sigterm_run(tmp_path_factory):
    """A 2-rank built-in run that gets SIGTERM (to torchrun only) during epoch 2."""
    runs = tmp_path_factory.mktemp("ddp-sigterm")
    command = torchrun_command("-m", "steplr_tui", "--headless", *TRAINER, "--epochs", "5")
    with Launch([*command, "--batch-size", "32"], runs) as launch:

        def one_epoch_done() -> bool:
            found = list_runs(runs)
            return bool(found) and found[0].epochs_done >= 1

        wait_until(one_epoch_done, LAUNCH_LIMIT_S, "epoch 1 on disk", launch=launch)
        ranks = launch.processes()
        launch.proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        try:
            launch.out, launch.err = launch.proc.communicate(timeout=SIGTERM_LIMIT_S)
        except subprocess.TimeoutExpired:
            launch.kill()
            pytest.fail(f"torchrun still ran {SIGTERM_LIMIT_S:.0f} s after SIGTERM")
        # The agent is gone; every rank too, at most moments after it.
        wait_until(
            lambda: not launch.processes(),
            SIGTERM_LIMIT_S - (time.monotonic() - sent),
            "every rank to exit",
        )
    (run,) = list_runs(runs)
    return run, ranks, launch


def test_sigterm_to_torchrun_ends_every_rank_stopped(sigterm_run):
    run, ranks, launch = sigterm_run
    assert len(ranks) >= 1 + WORLD  # the agent and its two ranks were running
    assert run.status is Status.STOPPED and run.reason == "stopped by SIGTERM"
    assert 1 <= run.epochs_done < 5
    assert "run stopped: stopped by SIGTERM" in launch.err
    assert run.has_checkpoint
    assert_one_writer(run.path)


def test_a_stopped_ddp_run_resumes_to_completion_on_its_planned_lrs(sigterm_run):
    run, _ranks, _launch = sigterm_run
    done_before = run.epochs_done
    runs_dir = run.path.parent
    resumed = run_to_end(
        torchrun_command("-m", "steplr_tui", "--headless", "--resume", run.name), runs_dir
    )
    after = read_run(run.path)
    assert after.status is Status.COMPLETED, (after.reason, resumed.err[-2000:])
    assert [m["epoch"] for m in after.metrics] == [1, 2, 3, 4, 5]
    assert [m["lr"] for m in after.metrics] == step_lrs(0.002, 2, 0.5, 5)
    assert after.metrics[:done_before] == run.metrics[:done_before]
    opened = [e for _, e in events_of(run.path) if isinstance(e, RunOpened)]
    assert [e.first_epoch for e in opened] == [1, done_before + 1]
    assert json.loads((run.path / CONFIG_FILE).read_text())["distributed"]["world_size"] == 2


# ---- a user's own DDP script -------------------------------------------------------------

EDIT = ScheduleEdit(lr=0.02, step_size=3, gamma=0.25)
EPOCHS, STEPS = 6, 24


@pytest.fixture(scope="module")
def script_run(tmp_path_factory):
    """tests/ddp_script.py on 2 ranks: an edit sent while both ranks wait before
    epoch 2's batch 5, then a stop sent while they wait before epoch 4's batch 3."""
    base = tmp_path_factory.mktemp("ddp-script")
    runs, facts = base / "runs", base / "facts"
    facts.mkdir()
    command = torchrun_command(
        str(SCRIPT),
        str(facts),
        "--epochs",
        str(EPOCHS),
        "--steps",
        str(STEPS),
        "--pause",
        "2:5",
        "--pause",
        "4:3",
    )
    with Launch(command, runs) as launch:
        for (epoch, step), request in (
            ((2, 5), EditRequest(new_request_id(), EDIT, sender_name("shell"))),
            ((4, 3), StopRequest(new_request_id(), sender_name("shell"), "")),
        ):
            paused = [facts / f"paused-{epoch}-{step}-rank{r}" for r in range(WORLD)]
            wait_until(
                lambda p=paused: all(f.exists() for f in p),
                LAUNCH_LIMIT_S,
                f"the pause at {epoch}:{step}",
                launch=launch,
            )
            (path,) = [p for p in runs.iterdir() if p.is_dir()]
            send(path, request)
            (facts / f"go-{epoch}-{step}").touch()
        code = launch.wait()
        left = launch.processes()
    assert code == 0, launch.err[-3000:]
    (run,) = list_runs(runs)
    return run, [facts_of(facts, r) for r in range(WORLD)], left


def test_parameters_are_identical_on_every_rank_after_every_epoch(script_run):
    run, ranks, _ = script_run
    per_rank = [[f for f in facts if f["event"] == "epoch"] for facts in ranks]
    assert [f["epoch"] for f in per_rank[0]] == [1, 2, 3]
    for other in per_rank[1:]:
        assert other == per_rank[0]  # checksums, lrs, edits, StepLR's attributes: all of it
    checksums = [f["checksum"] for f in per_rank[0]]
    assert len(set(checksums)) == len(checksums)  # they did train
    # The edit applied at epoch 2's end on every rank, and every rank follows it.
    assert [f["edit"] for f in per_rank[0]] == [None, EDIT.as_dict(), None]
    assert (per_rank[0][1]["step_size"], per_rank[0][1]["gamma"]) == (3, 0.25)
    expected = lrs_with_edits(0.05, 2, 0.5, EPOCHS, {2: EDIT})
    assert [f["lr"] for f in per_rank[0]] == expected[:3]
    assert [m["lr"] for m in run.metrics] == expected[:3]
    assert run.edits == {2: EDIT}
    ends = [next(f for f in facts if f["event"] == "end") for facts in ranks]
    assert len({e["checksum"] for e in ends}) == 1


def test_a_stop_ends_every_rank_at_the_same_batch_stopped(script_run):
    run, ranks, left = script_run
    stops = [[f for f in facts if f["event"] == "stopped"] for facts in ranks]
    assert all(len(s) == 1 for s in stops)
    assert len({(s[0]["epoch"], s[0]["batch"]) for s in stops}) == 1
    epoch, batch = stops[0][0]["epoch"], stops[0][0]["batch"]
    assert epoch == 4 and 3 <= batch <= STEPS
    assert all(next(f for f in facts if f["event"] == "end")["stopped"] for facts in ranks)
    assert run.status is Status.STOPPED and "stopped by shell" in run.reason
    assert run.epochs_done == 3  # the partial epoch 4 is not recorded
    (end,) = [e for _, e in events_of(run.path) if isinstance(e, RunEnded)]
    assert (end.status, end.epochs_done, end.batch) == (Status.STOPPED, 3, batch)
    assert left == []  # torchrun and both ranks are gone


def test_only_rank_0_writes_the_script_run_folder(script_run):
    run, ranks, _ = script_run
    starts = [next(f for f in facts if f["event"] == "start") for facts in ranks]
    assert starts[0]["path"] == str(run.path)
    assert [s["path"] for s in starts[1:]] == [None]
    assert_one_writer(run.path, starts[0]["pid"])
    saved = json.loads((run.path / CONFIG_FILE).read_text())
    assert saved["kind"] == "script"
    assert saved["distributed"] == {
        "world_size": 2,
        "backend": "gloo",
        "batch_size_per_rank": 32,
        "global_batch_size": 64,
    }
    (started,) = [e for _, e in events_of(run.path) if isinstance(e, RunStarted)]
    assert (started.world_size, started.global_batch, started.steps_per_epoch) == (2, 64, STEPS)
