"""Sweeps that survive a dead box: Optuna's heartbeat takes a dead worker's trial over,
on SQLite and on a real PostgreSQL server (a throw-away cluster this file starts), the
documented postgresql:// URL works, and no password is ever written in a run folder.

Two workers as two boxes: each its own runs directory (its own sweep folder and run
folders), one study. The joining worker and its trial are killed with kill -9; the
first worker waits out the grace period, fails the trial (INTERRUPTED, with the cause)
and runs it again with the same parameters before it calls the sweep COMPLETED.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from steplr_tui.cli.sweep import build_parser, new_spec
from steplr_tui.runfolder import Status
from steplr_tui.runfolder.reader import read_run
from steplr_tui.study.engine import (
    PASSWORD_ENV,
    StudyError,
    TrialLink,
    ask,
    create_study,
    load_study,
    open_storage,
    read_trials,
    reclaim,
)
from steplr_tui.study.spec import read_spec, sweep_folder, write_spec
from tests.helpers import LAUNCH_LIMIT_S, Launch, sweep_command, wait_until
from tests.helpers import SWEEP_TRAINER as TRAINER
from tests.helpers import spec as make_spec

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PASSWORD = "Pw-4f9c-secret"  # a string no file of a run folder may hold
FAST = ["--heartbeat", "1", "--grace", "2"]


# ---- a throw-away PostgreSQL 15 cluster --------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL 15 server of its own (a temporary folder, a free port, password auth
    over TCP), removed at the end: the URL of its database `sweeps`, with the password."""
    if not (PG_BIN / "initdb").is_file():
        pytest.skip(f"PostgreSQL 15 is not installed ({PG_BIN} has no initdb)")
    if importlib.util.find_spec("psycopg2") is None:
        pytest.skip("no PostgreSQL driver: pip install 'steplr-tui[postgres]'")
    as_pg: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as postgres")
        try:
            import pwd

            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to start PostgreSQL")
        as_pg = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="steplr-pg-"))
    data = root / "data"
    if as_pg:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    port = _free_port()

    def pg(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*as_pg, *args], capture_output=True, text=True, timeout=60, check=check
        )

    try:
        pg(
            str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
            "--auth-local=trust", "--auth-host=scram-sha-256",
        )  # fmt: skip
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        pg(str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"),
           "-w", "-t", "60", "start")  # fmt: skip
        sql = [
            f"CREATE ROLE steplr LOGIN PASSWORD '{PASSWORD}'",
            "CREATE DATABASE sweeps OWNER steplr",
        ]
        for statement in sql:
            pg(str(PG_BIN / "psql"), "-h", str(root), "-p", str(port), "-U", "postgres",
               "-v", "ON_ERROR_STOP=1", "-c", statement)  # fmt: skip
        yield f"postgresql://steplr:{PASSWORD}@127.0.0.1:{port}/sweeps"
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"PostgreSQL 15 did not start: {(exc.stderr or exc.stdout).strip()[:300]}")
    finally:
        if data.is_dir():
            pg(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def no_password_env(monkeypatch):
    """No password in the environment, and none left there after the test."""
    for variable in (PASSWORD_ENV, "PGPASSWORD"):
        monkeypatch.setenv(variable, "")  # recorded, so the test's own setting is undone
        monkeypatch.delenv(variable)


# ---- the study's side, in this process --------------------------------------------------


def test_a_trial_whose_heartbeat_stopped_is_failed_and_queued_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    spec = make_spec("hb", trials=2, gamma="0.1:0.9")
    spec = type(spec)(**{**spec.__dict__, "heartbeat": 1, "grace": 2})
    study = create_study(spec, url)
    trial = ask(study)
    gamma = trial.suggest_float("gamma", 0.1, 0.9)
    storage = study._storage
    trial_id = trial._trial_id
    storage.set_trial_user_attr(trial_id, "host", "box-b")
    storage.set_trial_user_attr(trial_id, "worker", 4242)
    storage.record_heartbeat(trial_id)  # then its worker dies: no more beats
    deadline = time.monotonic() + 20
    failed: list[int] = []
    while not failed and time.monotonic() < deadline:
        failed = reclaim(study)
        time.sleep(0.2)
    assert failed == [trial.number]
    rows = {r.number: r for r in read_trials(study)}
    dead = rows[trial.number]
    assert dead.state == "FAIL" and dead.status == "INTERRUPTED" and not dead.counted
    assert "no heartbeat for 2 s" in dead.reason and "pid 4242 on box-b" in dead.reason
    again = ask(study)  # the queued trial comes first, with the same parameters
    assert again.number != trial.number and again.params == {"gamma": gamma}
    frozen = storage.get_trial(again._trial_id)
    assert frozen.system_attrs["failed_trial"] == trial.number
    assert "host" not in frozen.user_attrs  # where the dead one ran is not the new one's
    assert reclaim(study) == []  # nothing else is stale


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("worker_alive", [True, False])
def test_a_trial_whose_worker_died_tells_the_study_itself(tmp_path, worker_alive):
    """Its worker killed, its run lives on (beating): at its end the run tells the study,
    or the trial would stop beating, be taken over and trained twice."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    spec = make_spec("orphan", trials=2, gamma="0.1:0.9")
    study = create_study(spec, url)
    trial = ask(study)
    trial.suggest_float("gamma", 0.1, 0.9)
    worker = os.getpid() if worker_alive else _dead_pid()
    study._storage.set_trial_user_attr(trial._trial_id, "worker", worker)
    study._storage.set_trial_user_attr(trial._trial_id, "host", socket.gethostname())
    link = TrialLink(url, "orphan", trial.number).open()  # a built-in trial's: no owner
    link.report(1, {"test_acc": 91.5})
    told = link.finish(Status.COMPLETED, [], "")
    row = next(r for r in read_trials(study) if r.number == trial.number)
    if worker_alive:  # its worker tells, from the run folder
        assert told is None and row.state == "RUNNING"
    else:
        assert told == "COMPLETE" and row.state == "COMPLETE" and row.value == 91.5


def test_a_run_whose_trial_was_taken_over_stops_instead_of_training_it_twice(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = create_study(make_spec("over", trials=2, gamma="0.1:0.9"), url)
    trial = ask(study)
    trial.suggest_float("gamma", 0.1, 0.9)
    link = TrialLink(url, "over", trial.number).open()
    assert link.report(1, {"test_acc": 80.0}) is None
    # Its box lost the study past the grace period: another worker failed it meanwhile.
    from optuna.trial import TrialState

    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    why = link.report(2, {"test_acc": 81.0})
    assert link.taken_over and why is not None
    assert f"trial {trial.number} of over was taken over by another worker" in why


def test_heartbeat_and_grace_are_flags_kept_with_the_sweep(tmp_path, capsys):
    parser = build_parser()
    ns = parser.parse_args([*FAST[:2], "--grace", "5", "--gamma", "0.1:0.9"])
    spec = new_spec(ns, [])
    assert (spec.heartbeat, spec.grace) == (1, 5)
    write_spec(tmp_path, spec)
    assert (read_spec(tmp_path).heartbeat, read_spec(tmp_path).grace) == (1, 5)
    from steplr_tui.cli import main

    assert main(["sweep", "--gamma", "0.1:0.9", "--heartbeat", "10", "--grace", "15"]) == 2
    assert "--grace must be a whole number of seconds from twice --heartbeat (20)" in (
        capsys.readouterr().err
    )


def test_a_password_in_the_url_is_kept_out_of_the_sweep_s_files(tmp_path, no_password_env):
    ns = build_parser().parse_args(
        ["--gamma", "0.1:0.9", "--storage", f"postgresql://steplr:{PASSWORD}@db:5432/sweeps"]
    )
    spec = new_spec(ns, [])
    assert spec.storage == "postgresql://steplr@db:5432/sweeps"
    assert os.environ[PASSWORD_ENV] == PASSWORD  # for this process and those it starts
    write_spec(tmp_path, spec)
    assert PASSWORD not in (tmp_path / "sweep.json").read_text()


def test_a_plain_postgresql_url_without_its_driver_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("psycopg2", "psycopg") else real(name, *a),
    )
    with pytest.raises(StudyError, match=r"pip install 'steplr-tui\[postgres\]'"):
        open_storage("postgresql://steplr@127.0.0.1:1/sweeps")


def test_the_documented_postgresql_url_opens_with_the_password_from_the_environment(
    postgres, no_password_env, monkeypatch
):
    plain = postgres.replace(f":{PASSWORD}@", "@")
    with pytest.raises(StudyError, match="its password"):
        open_storage(plain)  # no password anywhere: refused, saying where it comes from
    for variable in (PASSWORD_ENV, "PGPASSWORD"):
        monkeypatch.setenv(variable, PASSWORD)
        spec = make_spec(f"pg-{variable.lower()}", trials=1, gamma="0.1:0.9")
        study = create_study(spec, plain)
        again, _ = load_study(spec.name, plain)
        assert again._study_id == study._study_id
        monkeypatch.delenv(variable)


# ---- two workers as two boxes, for real -------------------------------------------------


def _trials(name: str, url: str):
    try:
        study, _spec = load_study(name, url)
    except Exception:  # not made yet
        return []
    return study.get_trials(deepcopy=False)


def _running_trial_of(url: str, worker: int):
    """(the trial, its run's pid) of a worker's trial under way, else None."""
    for t in _trials("hb", url):
        attrs = t.user_attrs
        if t.state.name == "RUNNING" and attrs.get("worker") == worker:
            folder = attrs.get("run_folder")
            if folder and (Path(folder) / "status.json").is_file():
                with contextlib.suppress(Exception):
                    pid = read_run(Path(folder)).pid
                    if pid:
                        return t, pid
    return None


def _killed_and_taken_over(
    tmp_path: Path, watch: str, url_a: str, url_b: str, env_b: dict[str, str], monkeypatch
) -> dict:
    """A study of 2 trials (made here, `watch` is its URL for this test); box B joins
    (`url_b`, `env_b` in its environment) and starts a trial, box A joins (`url_a`) and
    starts the other; then B's worker and its trial die by kill -9, while A works. What
    A said, the study's trials, and B's killed trial."""
    box_a, box_b = tmp_path / "box-a", tmp_path / "box-b"
    made = [*TRAINER[:2], *FAST, "--epochs", "1", "--batch-size", "500", "--pruner", "none"]
    made += ["--name", "hb", "--step-size", "1", "--gamma", "0.1:0.9", "--trials", "2"]
    create_study(new_spec(build_parser().parse_args(made), []), watch)
    machine = ["--device", "cpu", "--no-download"]
    for variable, value in env_b.items():
        monkeypatch.setenv(variable, value)  # box B's, not box A's
    with Launch(sweep_command(box_b, "--join", "hb", "--storage", url_b, *machine), box_b) as b:
        for variable in env_b:
            monkeypatch.delenv(variable)
        wait_until(
            lambda: _running_trial_of(watch, b.proc.pid), LAUNCH_LIMIT_S, "box B's trial", launch=b
        )
        killed, pid = _running_trial_of(watch, b.proc.pid)
        join_a = sweep_command(box_a, "--join", "hb", "--storage", url_a, *machine)
        with Launch(join_a, box_a) as a:
            wait_until(
                lambda: _running_trial_of(watch, a.proc.pid),
                LAUNCH_LIMIT_S,
                "box A's trial",
                launch=a,
            )
            os.kill(b.proc.pid, signal.SIGKILL)  # the worker first: it would tell
            os.kill(pid, signal.SIGKILL)
            b.kill()
            code = a.wait()
    assert code == 0, a.err[-3000:]
    study, _spec = load_study("hb", watch)
    return {"said": a.err, "trials": study.get_trials(), "killed": killed, "a": box_a}


def _check_taken_over(result: dict) -> None:
    said, killed = result["said"], result["killed"]
    rows = {t.number: t for t in result["trials"]}
    assert all(t.state.name not in ("RUNNING", "WAITING") for t in rows.values()), said
    dead = rows[killed.number]
    assert dead.state.name == "FAIL" and dead.user_attrs["status"] == "INTERRUPTED", said
    assert "no heartbeat for 2 s" in dead.user_attrs["reason"]
    again = [t for t in rows.values() if t.system_attrs.get("failed_trial") == killed.number]
    assert len(again) == 1 and again[0].state.name == "COMPLETE", said
    assert again[0].params == killed.params  # the same trial, run again
    assert f"takes over trial {killed.number}" in said
    done = [t for t in rows.values() if t.state.name == "COMPLETE"]
    assert len(done) == 2, said  # the sweep has its trials: none was left behind
    # B's run folder (the same machine here) says INTERRUPTED with the cause.
    info = read_run(Path(killed.user_attrs["run_folder"]))
    assert info.status is Status.INTERRUPTED and "no heartbeat" in info.reason
    worker = json.loads(next((sweep_folder(result["a"], "hb") / "workers").iterdir()).read_text())
    assert worker["status"] == "COMPLETED"


def test_two_boxes_on_sqlite_a_killed_worker_s_trial_is_taken_over(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    url = f"sqlite:///{shared / 'study.db'}"
    _check_taken_over(_killed_and_taken_over(tmp_path, url, url, url, {}, monkeypatch))


def test_two_boxes_on_postgresql_a_killed_worker_s_trial_is_taken_over(
    tmp_path, postgres, no_password_env, monkeypatch
):
    plain = postgres.replace(f":{PASSWORD}@", "@")
    # Box A gives the password in the URL (its trials get it from A's environment); box
    # B the plain URL, with libpq's own PGPASSWORD.
    env_b = {"PGPASSWORD": PASSWORD}
    result = _killed_and_taken_over(tmp_path, postgres, postgres, plain, env_b, monkeypatch)
    _check_taken_over(result)
    for file in tmp_path.rglob("*"):  # sweep folders, run folders, logs: no password
        if file.is_file():
            assert PASSWORD.encode() not in file.read_bytes(), file
    spec = json.loads((sweep_folder(result["a"], "hb") / "sweep.json").read_text())
    assert spec["storage"] == plain


def test_a_worker_marks_a_dead_trial_s_run_under_its_lock_and_leaves_a_live_one_be(tmp_path):
    """Issue 25: every writer takes the folder's lock first; a run that still holds it is
    alive, whatever its status says, and the worker writes nothing into it."""
    from steplr_tui.run.record import RunRecord
    from steplr_tui.runfolder.lock import RunLock
    from steplr_tui.runfolder.reader import read_status
    from steplr_tui.sweep.worker import _finish_dead

    record = RunRecord.create(tmp_path, {"lr": 0.1}, {"kind": "builtin"})
    record.lock()
    record.mark_running()
    record.close()  # the trial's process "dies": its lock is free, its status RUNNING
    path = record.path
    with RunLock.acquire(path):  # ...unless something still holds the folder
        _finish_dead(path, "no heartbeat")
        assert read_status(path)[2].get("status") == "RUNNING"
    _finish_dead(path, "no heartbeat for 2 s from its sweep worker")
    status, reason, _ = read_status(path)
    assert status.value == "INTERRUPTED" and "no heartbeat" in reason
