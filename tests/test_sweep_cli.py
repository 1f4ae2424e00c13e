"""`steplr-tui sweep` for real: trials as detached runs of the built-in trainer on the
bundled sample, CPU only, tiny epochs. Faults (a trial killed with kill -9, one stopped
by hand, Ctrl+C on the sweep, then --resume), two workers sharing one SQLite study, and
bad input, which is one line and never a traceback.

Every launch is bounded in time and killed with all its processes, trials included (they
carry the launch's mark in their environment: tests/helpers.py's Launch).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from steplr_tui.cli import main
from steplr_tui.runfolder import RunOpened, Status
from steplr_tui.runfolder.reader import list_runs, read_run
from steplr_tui.study.spec import storage_url, sweep_folder, write_spec
from steplr_tui.study.table import status_of, sweep_state
from tests.helpers import LAUNCH_LIMIT_S, Launch, env_for, events_of, sweep_command, wait_until
from tests.helpers import SWEEP_TRAINER as TRAINER
from tests.helpers import spec as make_spec
from tests.helpers import sweep_trials as trials


def epochs_of(path: str) -> int:
    try:
        return len(read_run(Path(path)).metrics)
    except Exception:
        return 0


def shell(runs: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "steplr_tui", *args],
        env=env_for(runs),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_killed_trial_a_stopped_one_ctrl_c_and_resume(tmp_path: Path):
    runs = tmp_path / "runs"
    args = [*TRAINER, "--name", "f", "--epochs", "100", "--batch-size", "16"]
    # --no-share: "a trial with an epoch" must be one that trains (a branched trial has its
    # prefix's epochs before its process is up); tests/test_shared_prefix.py covers sharing.
    args += ["--gamma", "0.1:0.9", "--trials", "4", "--parallel", "2", "--no-share"]
    with Launch(sweep_command(runs, *args), runs) as launch:

        def running_with_epochs(count):
            rows = [r for r in trials(runs, "f") if r.state == "RUNNING" and r.run_folder]
            ready = [r for r in rows if epochs_of(r.run_folder) >= 1]
            return ready if len(ready) >= count else None

        wait_until(
            lambda: running_with_epochs(2),
            LAUNCH_LIMIT_S,
            "two trials with an epoch each",
            launch=launch,
        )
        first, second = sorted(running_with_epochs(2), key=lambda r: r.number)[:2]
        pid = read_run(Path(first.run_folder)).pid
        os.kill(pid, signal.SIGKILL)
        wait_until(
            lambda: any(
                r.number == first.number and r.status == "INTERRUPTED" for r in trials(runs, "f")
            ),
            LAUNCH_LIMIT_S,
            "the killed trial recorded INTERRUPTED",
            launch=launch,
        )
        stopped = shell(runs, "stop", second.run_folder)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        wait_until(
            lambda: any(
                r.number == second.number and r.state == "PRUNED" for r in trials(runs, "f")
            ),
            LAUNCH_LIMIT_S,
            "the trial stopped by hand counted as pruned",
            launch=launch,
        )
        wait_until(
            lambda: running_with_epochs(2),
            LAUNCH_LIMIT_S,
            "two more trials under way",
            launch=launch,
        )
        os.kill(launch.proc.pid, signal.SIGINT)
        code = launch.wait()
    assert code == 130, launch.err[-2000:]
    assert "--resume f continues it" in launch.err  # what happens goes to stderr
    rows = {r.number: r for r in trials(runs, "f")}
    killed = read_run(Path(rows[first.number].run_folder))
    assert killed.status is Status.INTERRUPTED  # in its folder, and in the study
    assert rows[first.number].state == "FAIL" and not rows[first.number].counted
    assert rows[second.number].reason.startswith("stopped by shell")
    assert status_of(rows[second.number]) == "STOPPED"  # by hand: the table says so
    waiting = [r for r in rows.values() if r.state == "RUNNING"]
    assert len(waiting) == 2
    for r in waiting:
        info = read_run(Path(r.run_folder))
        assert info.status is Status.STOPPED and info.has_checkpoint
    assert sweep_state(sweep_folder(runs, "f")).status is Status.STOPPED

    with Launch(
        sweep_command(runs, "--resume", "f", "--parallel", "2", "--device", "cpu"), runs
    ) as again:
        assert again.wait() == 0, again.err[-2000:]
    rows = {r.number: r for r in trials(runs, "f")}
    for r in waiting:  # continued from their checkpoints, in their own folders
        assert rows[r.number].state == "COMPLETE"
        opened = [
            e.first_epoch for _, e in events_of(Path(r.run_folder)) if isinstance(e, RunOpened)
        ]
        assert len(opened) == 2 and opened[1] > 1
        assert len(read_run(Path(r.run_folder)).metrics) == 100
    assert sum(1 for r in rows.values() if r.counted) == 4
    assert len(rows) == 5  # the killed trial's place was taken
    folder = sweep_folder(runs, "f")
    csv_rows = (folder / "trials.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 5 and csv_rows[0].startswith("trial,state,status,lr")
    best = (folder / "best.py").read_text()
    assert "torch.optim.lr_scheduler.StepLR(" in best and "best of its trials" in best


def test_two_workers_share_one_sqlite_study(tmp_path: Path):
    runs = tmp_path / "runs"
    args = [*TRAINER, "--name", "j", "--epochs", "2", "--gamma", "0.1:0.9", "--trials", "6"]
    with Launch(sweep_command(runs, *args), runs) as one:
        wait_until(lambda: trials(runs, "j"), LAUNCH_LIMIT_S, "the study's first trial", launch=one)
        join = sweep_command(runs, "--join", "j", "--device", "cpu")
        with Launch(join, runs) as two:
            assert two.wait() == 0, two.err[-2000:]
        assert one.wait() == 0, one.err[-2000:]
    rows = trials(runs, "j")
    said = "\n".join(f"{w.out[-1500:]}{w.err[-1500:]}" for w in (one, two))
    assert all(r.state != "RUNNING" for r in rows), said
    # Two workers that ask at the same moment may each start the last trial.
    assert 6 <= sum(1 for r in rows if r.counted) <= 8, said
    folders = [r.run_folder for r in rows]
    assert len(set(folders)) == len(folders) == len(list_runs(runs))
    for r in rows:
        meta = json.loads((Path(r.run_folder) / "config.json").read_text())
        assert meta["sweep"]["trial"] == r.number
    workers = [json.loads(p.read_text()) for p in (sweep_folder(runs, "j") / "workers").iterdir()]
    assert len({w["pid"] for w in workers}) == 2
    assert {w["status"] for w in workers} == {"COMPLETED"}
    assert "joining j" in two.err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--gamma", "0.1"], 2, "the search space is empty"),
        (["--gamma", "0:0.5"], 2, "--gamma must be a number in (0, 1] (got '0')"),
        (["--gamma", "0.1:0.9", "--parallel", "0"], 2, "--parallel must be a whole number"),
        (["--gamma", "0.1:0.9", "--sampler", "grid"], 2, "--sampler grid needs a list"),
        (["--gamma", "0.1:0.9", "--name", "no good!"], 2, "sweep name 'no good!'"),
        (["--gamma", "0.1:0.9", "--script", "nope.py"], 2, "--script nope.py: no such file"),
        (["--gamma", "0.1:0.9", "--", "--x"], 2, "arguments after -- go to --script"),
        (["--gamma", "0.1:0.9", "--epochs", "0"], 2, "--epochs must be a whole number from 1"),
        (["--resume", "nope"], 2, "no sweep 'nope'"),
        (["--show", "nope"], 2, "no sweep 'nope'"),
        (["--gamma", "0.1:0.9", "--script", "."], 2, "--script . is a folder"),
        (["--list", "--show", "x"], 2, "give one of --list, --show at a time"),
        (
            ["--gamma", "0.1:0.9", "--storage", "journal:/no/such/folder/j.log"],
            1,
            "the folder /no/such/folder does not exist",
        ),
        (
            ["--gamma", "0.1:0.9", "--storage", "postgresql://nobody@127.0.0.1:1/x"],
            1,
            "cannot open the study storage postgresql://nobody@127.0.0.1:1/x",
        ),
    ],
)
def test_bad_input_is_one_line_that_says_what_to_do(tmp_path, capsys, args, code, message):
    assert main(["sweep", "--runs-dir", str(tmp_path), *args]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list((tmp_path / "sweeps").glob("*/sweep.json"))  # nothing half made


def test_a_name_in_use_is_refused_with_how_to_continue_it(tmp_path, capsys):
    spec = make_spec(name="taken", gamma="0.1:0.9")
    write_spec(sweep_folder(tmp_path, "taken"), spec)
    assert (
        main(["sweep", "--runs-dir", str(tmp_path), "--name", "taken", "--gamma", "0.2:0.9"]) == 2
    )
    assert "--resume taken continues it" in capsys.readouterr().err


def test_joining_or_resuming_takes_the_sweep_as_it_was_made(tmp_path, capsys):
    from steplr_tui.study.engine import create_study

    spec = make_spec(name="made", gamma="0.1:0.9", trials=1)
    folder = sweep_folder(tmp_path, "made")
    write_spec(folder, spec)
    study = create_study(spec, storage_url(spec, folder))
    args = ["sweep", "--runs-dir", str(tmp_path)]
    assert main([*args, "--join", "made", "--gamma", "0.5", "--epochs", "9"]) == 2
    assert (
        "--join works on a sweep as it was made: drop --gamma, --epochs" in capsys.readouterr().err
    )
    trial = study.ask()
    trial.suggest_float("gamma", 0.1, 0.9)
    study.tell(trial, 91.0)
    for mode in ("--join", "--resume"):  # the start of its name will do
        assert main([*args, mode, "ma"]) == 0
    out = capsys.readouterr()
    assert out.out.count("sweep made is complete (1 of 1 trial)") == 2
    assert main([*args, "--show"]) == 0  # no NAME: the newest
    assert "(made: " in capsys.readouterr().out


def test_a_failing_script_says_how_it_ended(tmp_path: Path):
    runs = tmp_path / "runs"
    script = tmp_path / "bad.py"
    script.write_text('raise SystemExit("boom: no data here")\n')
    args = ["--script", str(script), "--gamma", "0.1:0.9", "--trials", "5", "--name", "bad"]
    with Launch(sweep_command(runs, *args), runs) as launch:
        assert launch.wait() == 1
    failed = [line for line in launch.err.splitlines() if "FAILED:" in line]
    assert len(failed) == 3  # three in a row stop the sweep
    assert all("exited with status 1" in line and "boom: no data here" in line for line in failed)
    assert "3 trials in a row failed before their first epoch; the last one:" in launch.err
    assert sweep_state(sweep_folder(runs, "bad")).status is Status.FAILED


def test_a_step_size_that_never_drops_the_lr_is_pointed_out(tmp_path, capsys):
    from steplr_tui.study.space import parse_dimension, step_notes

    assert step_notes(parse_dimension("step_size", "3,4"), 2) == [
        "note: with 2 epochs, no step_size here (3,4) ever drops the lr, so gamma has no "
        "effect: give step_sizes below the epochs"
    ]
    assert step_notes(parse_dimension("step_size", "1,2,3"), 3) == [
        "note: step_size 3 never drops the lr within 3 epochs"
    ]
    assert step_notes(parse_dimension("step_size", "1:2"), 5) == []
