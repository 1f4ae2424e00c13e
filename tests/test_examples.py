"""examples/ runs as the README shows: the CNN script alone, steered from the shell and
resumed from its checkpoint, and the same script on 2 ranks through examples/torchrun.sh.

Real MNIST (through STEPLR_TUI_DATA), a few thousand images; every process is bounded
in time and killed with its whole session if it outlives the bound.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steplr_tui.runfolder import CONFIG_FILE, Status
from steplr_tui.runfolder.reader import list_runs, read_run
from steplr_tui.runfolder.schedule import ScheduleEdit, lrs_with_edits

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
LIMIT_S = 240.0


def env_for(runs: Path, threads: str = "1") -> dict[str, str]:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {
        **os.environ,
        "PATH": path,  # torchrun.sh finds this environment's torchrun
        "STEPLR_TUI_RUNS": str(runs),
        "OMP_NUM_THREADS": threads,
    }


def start(command: list[str], runs: Path, threads: str = "1") -> subprocess.Popen:
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env_for(runs, threads),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{proc.args} still ran after {LIMIT_S:.0f} s:\n{err[-3000:]}")
    assert proc.returncode == 0, err[-3000:]
    return out, err


def cli(*args: str, runs: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "steplr_tui", *args],
        env=env_for(runs),
        capture_output=True,
        text=True,
        timeout=60,
    )


def script(mnist: Path, ckpt: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        str(EXAMPLES / "train_cnn.py"),
        "--data-dir",
        str(mnist),
        "--train-limit",
        "3000",
        "--checkpoint",
        str(ckpt),
        "--step-size",
        "1",
        "--gamma",
        "0.5",
        *args,
    ]


def test_the_cnn_script_is_steered_from_the_shell_and_resumes_with_its_edits(
    mnist_root: Path, tmp_path: Path
):
    runs, ckpt = tmp_path / "runs", tmp_path / "cnn.pt"
    proc = start(script(mnist_root, ckpt, "--epochs", "3"), runs)
    try:
        deadline = time.monotonic() + LIMIT_S
        while not (runs.is_dir() and list_runs(runs)):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the script never opened its run folder"
            time.sleep(0.05)
        (run,) = list_runs(runs)
        edited = cli("edit", run.name, "--lr", "0.0004", runs=runs)
        assert edited.returncode == 0, edited.stderr
        assert "applies after epoch" in edited.stdout
        out, _ = finish(proc)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert f"steplr-tui attach {run.name}" in out
    done = read_run(run.path)
    assert done.status is Status.COMPLETED
    assert len(done.edits) == 1  # the boundary it met depends on the machine's speed
    ((boundary, edit),) = done.edits.items()
    assert edit == ScheduleEdit(lr=0.0004)
    planned = lrs_with_edits(1e-3, 1, 0.5, 4, done.edits)
    assert [m["lr"] for m in done.metrics] == planned[:3]
    assert done.metrics[-1]["test_acc"] > 85.0  # LeNet learns from 3,000 images
    assert all("val_loss" in m for m in done.metrics)

    # One epoch more, from the checkpoint: the same folder, on the edited schedule.
    out, _ = finish(start(script(mnist_root, ckpt, "--epochs", "4", "--resume", str(ckpt)), runs))
    resumed = read_run(run.path)
    assert resumed.status is Status.COMPLETED and "done" in out
    assert [m["epoch"] for m in resumed.metrics] == [1, 2, 3, 4]
    assert [m["lr"] for m in resumed.metrics] == planned
    assert resumed.metrics[:3] == done.metrics
    assert boundary in resumed.edits


def test_the_cnn_script_runs_on_two_ranks_through_torchrun(mnist_root: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    command = [
        "bash",
        str(EXAMPLES / "torchrun.sh"),
        *script(mnist_root, tmp_path / "cnn.pt", "--epochs", "2", "--batch-size", "32")[2:],
    ]
    out, _ = finish(start(command, runs, threads="1"))
    (run,) = list_runs(runs)
    assert run.status is Status.COMPLETED
    assert [m["lr"] for m in run.metrics] == [1e-3, 5e-4]
    assert run.metrics[-1]["test_acc"] > 80.0
    saved = json.loads((run.path / CONFIG_FILE).read_text())
    assert saved["distributed"]["world_size"] == 2
    assert saved["distributed"]["global_batch_size"] == 64
    assert out.count("recording to") == 1  # rank 0 alone records and prints
    assert (tmp_path / "cnn.pt").is_file()


def test_the_sweep_example_runs_as_a_sweeps_trials_and_by_hand(mnist_root: Path, tmp_path: Path):
    """examples/sweep_cnn.py as the README shows it: trials launched by the sweep (which
    tells the study), then one more by hand (which tells it itself)."""
    from steplr_tui.study.engine import load_study, read_trials
    from steplr_tui.study.spec import read_spec, storage_url, sweep_folder

    runs = tmp_path / "runs"
    sweep = [
        sys.executable, "-m", "steplr_tui", "sweep", "--runs-dir", str(runs), "--name", "cnn",
        "--script", str(EXAMPLES / "sweep_cnn.py"), "--lr", "1e-4:1e-2:log",
        "--gamma", "0.1:0.9", "--step-size", "1,2", "--epochs", "2", "--trials", "2",
        "--", "--data-dir", str(mnist_root), "--train-limit", "1000",
    ]  # fmt: skip
    out, err = finish(start(sweep, runs))
    assert "2 trials done" in err and "best: trial" in err
    assert out.startswith("# steplr-tui sweep cnn: best of its trials")  # the snippet alone
    by_hand = [sys.executable, str(EXAMPLES / "sweep_cnn.py"), "--sweep", "cnn"]
    by_hand += ["--data-dir", str(mnist_root), "--train-limit", "1000"]
    out, _ = finish(start(by_hand, runs))
    assert "trial 2 of cnn" in out
    folder = sweep_folder(runs, "cnn")
    study, _ = load_study("cnn", storage_url(read_spec(folder), folder))
    rows = read_trials(study)
    assert [r.number for r in rows] == [0, 1, 2]
    assert all(r.state in ("COMPLETE", "PRUNED") and r.run_folder for r in rows)
    for r in rows:
        info = read_run(Path(r.run_folder))
        assert info.kind == "script" and info.meta["sweep"]["trial"] == r.number
        assert info.config["lr"] == r.params["lr"] and info.config["epochs"] == 2
    assert (folder / "trials" / "0.log").is_file()
