"""Sweeps that share their prefixes: a trial branched from a prefix run equals its
independent twin, and the sweep trains the prefix once (real processes, sample data)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from steplr_tui.run.branch import branch_of, create_branch, plan_branch
from steplr_tui.run.jobs import Job, run_job
from steplr_tui.run.shared_prefix import (
    branch_points,
    epochs_saved,
    key_of,
    prefix_config,
    trial_edit,
)
from steplr_tui.runfolder import Status
from steplr_tui.runfolder.checkpoints import KeepPolicy
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.reader import list_runs, read_run
from steplr_tui.study.space import parse_space
from tests.synthetic import synthetic_data

DATA = synthetic_data(n_train=512, n_test=128)
BASE = TrainConfig(epochs=4, batch_size=64, lr=0.01, device="cpu")


def without_edits(info):
    return [{k: v for k, v in m.items() if k not in ("seconds", "edit")} for m in info.metrics]


def test_a_trial_branched_from_its_shared_prefix_equals_its_twin(tmp_path: Path):
    points = [1, 2, 3]
    prefix_cfg = prefix_config(BASE, points)
    assert (prefix_cfg.step_size, prefix_cfg.gamma, prefix_cfg.epochs) == (3, 1.0, 3)
    end = run_job(
        Job(prefix_cfg, tmp_path / "prefix", keep=KeepPolicy(epochs=frozenset(points))),
        lambda e: None,
        data=DATA,
    )
    assert end.status is Status.COMPLETED
    (prefix,) = list_runs(tmp_path / "prefix")
    for step_size in points:
        for gamma in (0.5, 0.1):
            config = BASE.with_values(step_size=step_size, gamma=gamma)
            assert key_of(config) == key_of(BASE)
            run_job(Job(config, tmp_path / f"alone-{step_size}-{gamma}"), lambda e: None, data=DATA)
            (twin,) = list_runs(tmp_path / f"alone-{step_size}-{gamma}")
            plan = plan_branch(prefix.path, step_size, trial_edit(config), config, config.epochs)
            folder = create_branch(replace(plan, config=config), tmp_path / "trials")
            end = run_job(Job(config, folder=folder), lambda e: None, data=DATA)
            assert end.status is Status.COMPLETED, end.message
            trial = read_run(folder)
            assert trial.config == config.as_dict()
            assert branch_of(trial)["parent"] == prefix.name
            # Losses, lrs and accuracies, bit for bit, epoch by epoch: the final one too.
            assert without_edits(trial) == without_edits(twin)


def test_sharing_needs_listed_lrs_and_step_sizes_below_the_epochs():
    class Spec:
        script = ()
        share = True

        def __init__(self, **texts):
            self.space = parse_space(texts, TrainConfig().as_dict())

    config = TrainConfig(epochs=10)
    grid = Spec(lr="0.001", step_size="2,4,6,8,12", gamma="0.1,0.3")
    assert branch_points(grid, config) == [2, 4, 6, 8]
    assert branch_points(Spec(lr="1e-4:1e-2:log", step_size="2,4", gamma="0.1"), config) == []
    no_share = Spec(lr="0.001", step_size="2,4", gamma="0.1")
    no_share.share = False
    assert branch_points(no_share, config) == []
    # The figure: 160 epochs alone, 88 shared.
    trials = [
        config.with_values(step_size=s, gamma=g) for s in (2, 4, 6, 8) for g in (0.1, 0.3, 0.5, 0.7)
    ]
    assert epochs_saved([2, 4, 6, 8], trials) == (160, 88)


def test_a_grid_sweep_trains_its_prefix_once_and_its_finals_equal_no_share(tmp_path: Path):
    from tests.helpers import SWEEP_TRAINER as TRAINER
    from tests.helpers import Launch, sweep_command
    from tests.helpers import sweep_trials as trials

    finals = {}
    for name, extra in (("shared", []), ("alone", ["--no-share"])):
        runs = tmp_path / name
        command = sweep_command(
            runs, "--name", name, "--lr", "0.01", "--step-size", "1,2", "--gamma", "0.5,0.25",
            "--epochs", "3", "--threads", "1", *TRAINER, *extra,
        )  # fmt: skip
        with Launch(command, runs) as launch:
            assert launch.wait(240) == 0, launch.err[-3000:]
        rows = trials(runs, name)
        assert len(rows) == 4 and all(r.state == "COMPLETE" for r in rows)
        finals[name] = {(r.params["step_size"], r.params["gamma"]): r.value for r in rows}
        folders = list_runs(runs)
        trained = 0
        for info in folders:
            section = branch_of(info)
            trained += info.epochs_done - (section["epoch"] if section else 0)
        if name == "shared":
            prefixes = [f for f in folders if "sweep_prefix" in f.meta]
            assert len(prefixes) == 1 and prefixes[0].epochs_done == 2
            assert trained == 2 + 2 * 2 + 2 * 1  # the prefix, then s1 and s2 trials
            assert all(branch_of(f) for f in folders if f not in prefixes)
        else:
            assert trained == 12 and not any(branch_of(f) for f in folders)
    assert finals["shared"] == finals["alone"]


def test_a_prefix_killed_before_a_trials_checkpoint_lets_the_trial_train_alone(tmp_path):
    from steplr_tui.run.record import RunRecord, write_status
    from steplr_tui.run.shared_prefix import Prefix, SharedPrefixes, Waiting

    record = RunRecord.create(tmp_path, BASE.as_dict(), {})
    # kill -9 after epoch 1: RUNNING with a pid that is gone, a checkpoint kept for 1 only.
    write_status(record.path, {"status": "RUNNING", "pid": 2**22 + 12345, "host": ""})
    (record.path / "checkpoints").mkdir()
    (record.path / "checkpoints" / "epoch-0001.pt").write_bytes(b"PK")
    prefix = Prefix(("k",), record.path, 2**22 + 12345, [1, 2])
    shared = SharedPrefixes("s", tmp_path)
    shared.prefixes[("k",)] = prefix
    one, two = (BASE.with_values(step_size=s) for s in (1, 2))
    shared.waiting[1] = Waiting(1, {}, one, prefix)
    shared.waiting[2] = Waiting(2, {}, two, prefix)
    assert prefix.over and shared.running == 0
    waiting, checkpoint = shared.ready()
    assert waiting.number == 1 and checkpoint == record.path / "checkpoints" / "epoch-0001.pt"
    del shared.waiting[1]
    waiting, checkpoint = shared.ready()
    assert waiting.number == 2 and checkpoint is None  # on its own: no checkpoint will come
