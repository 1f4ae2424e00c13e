"""Every torch scheduler watched by `track()`, and the step family steered.

The plan a run writes (torch's own, from a copy of the scheduler stepped on a
throwaway optimizer) is checked against the lrs the real scheduler then used, bit
for bit, for each class; so are the lrs recorded, and each kind of live edit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch.optim import lr_scheduler as S

import steplr_tui
from steplr_tui.run.tracker import TrackingError
from steplr_tui.runfolder import (
    EVENTS_FILE,
    Decision,
    EpochEnd,
    LrPlan,
    decode_event,
)
from steplr_tui.runfolder.schedule import ScheduleEdit
from tests.scheduler_cases import EPOCHS, SCHEDULERS, STEPS, _edit, model_and_optimizer, train


def events(path: Path) -> list:
    out = []
    for line in (path / EVENTS_FILE).read_text().splitlines():
        decoded = decode_event(json.loads(line))
        if decoded is not None:
            out.append(decoded[1])
    return out


def plans(path: Path) -> list[LrPlan]:
    return [e for e in events(path) if isinstance(e, LrPlan)]


def epochs_of(path: Path) -> list[EpochEnd]:
    return [e for e in events(path) if isinstance(e, EpochEnd)]


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_the_plan_is_the_lrs_the_scheduler_then_used(tmp_path: Path, name: str):
    model, optimizer = model_and_optimizer()
    scheduler = SCHEDULERS[name](optimizer)
    per_batch = name == "OneCycleLR"
    run = steplr_tui.track(
        optimizer, scheduler, runs_dir=tmp_path, epochs=EPOCHS, steps_per_epoch=STEPS
    )
    with run:
        used = train(run, model, optimizer, scheduler, per_batch=per_batch)
    first = plans(run.path)[0]  # written before the first batch
    by_epoch = [tuple(used[i * STEPS]) for i in range(EPOCHS)]
    assert first.first_epoch == 1
    assert first.lrs == tuple(by_epoch)  # bit for bit, every group
    assert first.kind == type(scheduler).__name__
    if per_batch:
        assert first.steps_per_epoch == STEPS
        assert first.step_lrs == tuple(u[0] for u in used)
    for plan in plans(run.path)[1:]:  # a re-plan from a later epoch says the same
        start = plan.first_epoch - 1
        assert plan.lrs == tuple(by_epoch[start : start + len(plan.lrs)])
    recorded = epochs_of(run.path)
    assert [e.lrs for e in recorded] == by_epoch  # every group's lr, recorded per epoch
    assert [e.lr for e in recorded] == [b[0] for b in by_epoch]
    if per_batch:
        assert [x for e in recorded for x in e.step_lrs] == [u[0] for u in used]
    else:
        assert all(e.step_lrs == () for e in recorded)
    # The real scheduler and optimizer were never stepped by the plan.
    assert scheduler.last_epoch == (EPOCHS * STEPS if per_batch else EPOCHS)


def test_reduce_on_plateau_has_no_plan_and_records_what_happened(tmp_path: Path):
    model, optimizer = model_and_optimizer(groups=1)
    scheduler = S.ReduceLROnPlateau(optimizer, factor=0.5, patience=1)
    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=EPOCHS) as run:
        used = train(run, model, optimizer, scheduler, plateau=[1.0] * EPOCHS)
    plan = plans(run.path)[0]
    assert plan.lrs == () and plan.kind == "ReduceLROnPlateau"
    assert "patience 1" in plan.note and "factor 0.5" in plan.note
    assert plan.editable == ()
    assert [e.lr for e in epochs_of(run.path)] == [used[i * STEPS][0] for i in range(EPOCHS)]
    assert epochs_of(run.path)[-1].lr < 0.1  # it did reduce


def test_no_scheduler_is_watched_and_takes_lr_edits(tmp_path: Path):
    model, optimizer = model_and_optimizer(groups=1)
    run = steplr_tui.track(optimizer, None, runs_dir=tmp_path, epochs=3)
    _edit(run.path, lr=0.02)
    used = train(run, model, optimizer, None, epochs=3)
    run.finish()
    assert [u[0] for u in used[::STEPS]] == [0.1, 0.02, 0.02]
    assert plans(run.path)[-1].lrs == ((0.02,), (0.02,))


# ---- live edits ----------------------------------------------------------------------


def _reference(make, edit_after: int, change) -> list[list[float]]:
    """The same schedule driven by hand, attributes changed as torch allows."""
    _model, optimizer = model_and_optimizer()
    scheduler = make(optimizer)
    out = []
    for epoch in range(1, EPOCHS + 1):
        out.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
        if epoch == edit_after:
            change(optimizer, scheduler)
    return out


def _set_lr(optimizer, lr):
    for g in optimizer.param_groups:
        g["lr"] = lr


EDITS = {
    "StepLR": (
        dict(step_size=1, gamma=0.9),
        lambda o, s: (setattr(s, "step_size", 1), setattr(s, "gamma", 0.9)),
    ),
    "MultiStepLR": (
        dict(milestones=(3, 5), gamma=0.5),
        lambda o, s: (
            setattr(s, "milestones", __import__("collections").Counter([3, 5])),
            setattr(s, "gamma", 0.5),
        ),
    ),
    "ExponentialLR": (
        dict(gamma=0.5, lr=0.2),
        lambda o, s: (setattr(s, "gamma", 0.5), _set_lr(o, 0.2)),
    ),
    "Linear->StepLR": (
        dict(warmup=4),
        lambda o, s: (s._milestones.__setitem__(0, 4), setattr(s._schedulers[0], "total_iters", 4)),
    ),
    "Constant->MultiStepLR": (
        dict(gamma=0.5, milestones=(4,)),
        lambda o, s: (
            setattr(s._schedulers[1], "gamma", 0.5),
            setattr(s._schedulers[1], "milestones", __import__("collections").Counter([4])),
        ),
    ),
}


@pytest.mark.parametrize("name, check", [(name, True) for name in EDITS] + [("MultiStepLR", False)])
def test_a_live_edit_applies_with_torchs_semantics_and_is_replanned(tmp_path, name, check):
    """Read mid-epoch (should_stop) or at the boundary (a loop that never asks)."""
    values, change = EDITS[name]
    model, optimizer = model_and_optimizer()
    scheduler = SCHEDULERS[name](optimizer)
    run = steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=EPOCHS)
    _edit(run.path, **values)  # read during epoch 1: applies after it
    with run:
        used = train(run, model, optimizer, scheduler, check=check)
    expected = _reference(SCHEDULERS[name], 1, change)
    assert [u for u in used[::STEPS]] == expected
    edited = epochs_of(run.path)[0].edit
    assert edited == ScheduleEdit(**values)
    queued = [p for p in plans(run.path) if p.pending]
    assert queued and queued[0].lrs == tuple(tuple(e) for e in expected[1:])  # the preview
    after = [p for p in plans(run.path) if not p.pending and p.first_epoch == 2]
    assert after and after[-1].lrs == tuple(tuple(e) for e in expected[1:])


def test_get_last_lr_says_the_lr_in_use_after_an_lr_edit(tmp_path: Path):
    model, optimizer = model_and_optimizer(groups=1)
    scheduler = S.StepLR(optimizer, 2, 0.5)
    run = steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=3)
    _edit(run.path, lr=0.05)
    train(run, model, optimizer, scheduler, epochs=1)
    assert scheduler.get_last_lr() == [0.05] == [optimizer.param_groups[0]["lr"]]
    run.finish()


def _refusals(path: Path) -> list[str]:
    return [e.reason for e in events(path) if isinstance(e, Decision) and e.decision == "refused"]


@pytest.mark.parametrize(
    "make, values, says",
    [
        (SCHEDULERS["CosineAnnealingLR"], dict(lr=0.01), "watched, not steered"),
        (SCHEDULERS["OneCycleLR"], dict(gamma=0.5), "watched, not steered"),
        (SCHEDULERS["MultiStepLR"], dict(milestones=(4, 3)), "must be increasing"),
        (SCHEDULERS["MultiStepLR"], dict(step_size=3), "has no step_size to edit"),
        (SCHEDULERS["Linear->StepLR"], dict(warmup=EPOCHS), "longer than the run"),
        (SCHEDULERS["StepLR"], dict(warmup=3), "has no warmup to edit"),
    ],
)
def test_an_edit_the_scheduler_cannot_take_is_refused_in_one_line(tmp_path, make, values, says):
    model, optimizer = model_and_optimizer()
    scheduler = make(optimizer)
    run = steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=2, steps_per_epoch=STEPS)
    _edit(run.path, **values)
    with run:
        train(
            run,
            model,
            optimizer,
            scheduler,
            epochs=1,
            per_batch=isinstance(scheduler, S.OneCycleLR),
        )
    reasons = _refusals(run.path)
    assert len(reasons) == 1 and says in reasons[0] and "\n" not in reasons[0]
    if "watched" in says:
        assert "StepLR, MultiStepLR, ExponentialLR" in reasons[0]  # the classes that take edits


def test_a_warmup_edit_after_the_warmup_ended_is_refused(tmp_path: Path):
    model, optimizer = model_and_optimizer()
    scheduler = SCHEDULERS["Linear->StepLR"](optimizer)  # warmup of 2 epochs
    run = steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=EPOCHS)
    with run:
        train(run, model, optimizer, scheduler, epochs=2)
        _edit(run.path, warmup=4)
        train(run, model, optimizer, scheduler, epochs=3)
    assert "the warmup has ended" in _refusals(run.path)[0]


def test_a_sequential_part_on_another_optimizer_is_refused(tmp_path: Path):
    _m, optimizer = model_and_optimizer()
    _o, other = model_and_optimizer()
    scheduler = S.SequentialLR(optimizer, [S.LinearLR(optimizer), S.StepLR(optimizer, 2)], [2])
    scheduler._schedulers[1] = S.StepLR(other, 2)
    with pytest.raises(TrackingError, match="another optimizer than the one given to track"):
        steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path)


def test_the_record_says_what_track_learned_by_itself(tmp_path: Path):
    _model, optimizer = model_and_optimizer(lr=1.0, groups=1, kind=torch.optim.Adadelta)
    scheduler = S.StepLR(optimizer, step_size=1, gamma=0.7)
    run = steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path)
    run.finish()
    config = json.loads((run.path / "config.json").read_text())["config"]
    assert config["optimizer"] == "adadelta"
    assert config["optimizer_params"][0]["rho"] == 0.9 and "momentum" not in config
    assert config["scheduler_params"] == {"class": "StepLR", "step_size": 1, "gamma": 0.7}
    assert config["world_size"] == 1
    assert config["batch_size"] is None  # not given: unknown, not a default
    assert math.isclose(config["lr"], 1.0)


# ---- from the shell -----------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--milestones", "4,3"], "--milestones must be increasing (got 4,3)"),
        (["--milestones", "4,x"], "--milestones must be whole epochs from 1"),
        (["--warmup", "0"], "--warmup must be a whole number of epochs from 1"),
    ],
)
def test_the_shell_refuses_a_bad_milestone_list_or_warmup_in_one_line(capsys, flags, says):
    from steplr_tui.cli.commands import edit_main

    with pytest.raises(SystemExit) as exited:
        edit_main(["somerun", *flags])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert says in err and "\n" not in err


def test_steplr_tui_edit_milestones_and_warmup_reach_a_live_run(tmp_path: Path, capsys):
    import threading
    import time

    from steplr_tui.cli.commands import edit_main

    model, optimizer = model_and_optimizer()
    scheduler = S.SequentialLR(
        optimizer,
        [S.LinearLR(optimizer, 0.1, total_iters=2), S.MultiStepLR(optimizer, [3], 0.5)],
        [2],
    )
    run = steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=EPOCHS)
    codes = []
    argv = [str(run.path), "--milestones", "2,4", "--warmup", "3", "--gamma", "0.2"]
    shell = threading.Thread(target=lambda: codes.append(edit_main(argv)))
    shell.start()
    deadline = time.monotonic() + 30
    while shell.is_alive() and time.monotonic() < deadline:
        run.should_stop()  # the run reads requests between batches
        time.sleep(0.01)
    shell.join(1)
    assert codes == [0]
    assert "queued" in capsys.readouterr().out
    with run:
        used = train(run, model, optimizer, scheduler)

    def change(o, s):
        s._milestones[0] = 3
        s._schedulers[0].total_iters = 3
        s._schedulers[1].milestones = __import__("collections").Counter([2, 4])
        s._schedulers[1].gamma = 0.2

    expected = _reference(lambda o: _same(o), 1, change)
    assert used[::STEPS] == expected


def _same(o):
    return S.SequentialLR(o, [S.LinearLR(o, 0.1, total_iters=2), S.MultiStepLR(o, [3], 0.5)], [2])


# ---- what a viewer draws, without torch ------------------------------------------------


def _view_of(path: Path):
    from steplr_tui.viewer.run_view import RunView

    view = RunView()
    view.apply_all(events(path))
    return view


def test_the_lr_pane_draws_torchs_plan_of_any_scheduler_and_the_lrs_used(tmp_path: Path):
    from steplr_tui.viewer.preview import torch_pane_data

    model, optimizer = model_and_optimizer()
    scheduler = SCHEDULERS["Linear->ExponentialLR"](optimizer)
    run = steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=EPOCHS)
    train(run, model, optimizer, scheduler, epochs=2)
    view = _view_of(run.path)  # attached mid-run
    data = torch_pane_data(view)
    expected = [u[0] for u in _reference(SCHEDULERS["Linear->ExponentialLR"], 0, None)]
    assert data.planned == expected  # the warmup's ramp, then the decay: torch's floats
    assert data.actual == expected[:2]
    assert data.subtitle.startswith("LinearLR then ExponentialLR")
    assert view.mismatches == []
    with run:
        train(run, model, optimizer, scheduler)
    assert _view_of(run.path).mismatches == []


def test_the_lr_pane_shows_a_queued_edit_by_the_runs_own_simulation(tmp_path: Path):
    from steplr_tui.viewer.preview import torch_pane_data

    model, optimizer = model_and_optimizer()
    scheduler = SCHEDULERS["MultiStepLR"](optimizer)
    run = steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=EPOCHS)
    train(run, model, optimizer, scheduler, epochs=1)
    _edit(run.path, milestones=(3, 5))
    _read_requests(run)  # mid-epoch 2: queued for the boundary after it
    data = torch_pane_data(_view_of(run.path))

    def change(o, s):
        s.milestones = __import__("collections").Counter([3, 5])

    expected = [u[0] for u in _reference(SCHEDULERS["MultiStepLR"], 2, change)]
    assert data.pending_from == 2 and data.pending == expected[2:]
    run.finish()


def _read_requests(run) -> None:
    """Ask as a loop does between batches, until the run has decided what was sent."""
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        run.should_stop()
        if any(isinstance(e, Decision) for e in events(run.path)):
            return
        time.sleep(0.02)
    raise AssertionError("the run never read its request")


def test_reduce_on_plateau_is_drawn_as_it_happened_with_its_rule_in_words(tmp_path: Path):
    from steplr_tui.viewer.preview import torch_pane_data

    model, optimizer = model_and_optimizer(groups=1)
    scheduler = S.ReduceLROnPlateau(optimizer, factor=0.5, patience=1)
    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=4) as run:
        train(run, model, optimizer, scheduler, epochs=4, plateau=[1.0] * 4)
    data = torch_pane_data(_view_of(run.path))
    assert data.planned == data.actual == [e.lr for e in epochs_of(run.path)]
    assert "patience 1" in data.subtitle and "factor 0.5" in data.subtitle


def test_a_per_iteration_warmup_is_found_out_and_replanned_per_step(tmp_path: Path):
    """A LambdaLR warmup stepped every batch, with no steps_per_epoch given: the first
    epoch shows it steps per batch, and the plan from epoch 2 on is per step."""
    model, optimizer = model_and_optimizer(groups=1)
    scheduler = S.LambdaLR(optimizer, lambda i: min(1.0, (i + 1) / 6))
    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=3) as run:
        used = train(run, model, optimizer, scheduler, epochs=3, per_batch=True)
    replanned = plans(run.path)[-1]
    assert replanned.first_epoch == 2 and replanned.steps_per_epoch == STEPS
    assert replanned.step_lrs == tuple(u[0] for u in used[STEPS:])
    assert [x for e in epochs_of(run.path) for x in e.step_lrs][:6] == [u[0] for u in used[:6]]


# ---- export: the snippet follows the run's scheduler ----------------------------------


def test_the_export_snippet_rebuilds_a_script_runs_scheduler_and_edits(tmp_path: Path):
    import csv
    import io

    from steplr_tui.runfolder.export import metrics_csv, run_snippet
    from steplr_tui.runfolder.reader import read_run
    from tests.helpers import lrs_from_snippet

    model, optimizer = model_and_optimizer(groups=1)
    scheduler = SCHEDULERS["Constant->MultiStepLR"](optimizer)
    run = steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=EPOCHS)
    _edit(run.path, milestones=(4,), gamma=0.5)
    with run:
        used = train(run, model, optimizer, scheduler)
    info = read_run(run.path)
    snippet = run_snippet(info)
    assert "ConstantLR(optimizer, factor=0.25, total_iters=2)" in snippet
    assert "MultiStepLR(optimizer, milestones=[2, 3], gamma=0.1)" in snippet
    pasted = snippet.replace("model = ...  # your model", "model = nn.Linear(4, 2)")
    assert lrs_from_snippet(pasted) == [u[0] for u in used[::STEPS]]
    rows = list(csv.DictReader(io.StringIO(metrics_csv(info))))
    assert rows[0]["edit_milestones"] == "4" and rows[0]["edit_gamma"] == "0.5"


@pytest.mark.parametrize("kind", ["multistep", "warmup-step", "cosine"])
def test_the_export_snippet_of_a_builtin_alternative_gives_its_lrs(kind):
    from steplr_tui.runfolder.export import pytorch_snippet
    from steplr_tui.runfolder.params import TrainConfig
    from tests.helpers import lrs_from_snippet, torch_lrs

    config = TrainConfig(scheduler=kind, epochs=6, step_size=2, gamma=0.5, warmup=2, lr=0.01)
    snippet = pytorch_snippet(config.as_dict(), {})
    assert lrs_from_snippet(snippet) == torch_lrs(config)


def test_the_lr_pane_gets_every_step_of_a_per_batch_scheduler(tmp_path: Path):
    from steplr_tui.viewer.preview import torch_pane_data

    model, optimizer = model_and_optimizer(groups=1)
    scheduler = S.OneCycleLR(optimizer, max_lr=0.5, total_steps=EPOCHS * STEPS)
    run = steplr_tui.track(
        optimizer, scheduler, runs_dir=tmp_path, epochs=EPOCHS, steps_per_epoch=STEPS
    )
    used = train(run, model, optimizer, scheduler, epochs=2, per_batch=True)
    fine = torch_pane_data(_view_of(run.path)).fine
    assert fine is not None and fine.steps == STEPS and fine.start == 0
    assert fine.actual == [u[0] for u in used] and fine.planned[: len(used)] == fine.actual
    assert len(fine.planned) == EPOCHS * STEPS
    run.finish()


def test_resume_without_a_scheduler_is_refused(tmp_path: Path):
    _model, optimizer = model_and_optimizer()
    with pytest.raises(TrackingError, match="resume= continues from the restored scheduler"):
        steplr_tui.track(optimizer, None, runs_dir=tmp_path, resume="somerun")


def test_a_scheduler_that_cannot_be_copied_costs_the_plan_not_the_run(tmp_path: Path):
    import threading

    from steplr_tui.runfolder import Notice

    class Locked(S.StepLR):  # a custom scheduler holding a lock: deepcopy fails
        def __init__(self, optimizer):
            self.lock = threading.Lock()
            super().__init__(optimizer, 2, 0.5)

    model, optimizer = model_and_optimizer(groups=1)
    scheduler = Locked(optimizer)
    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=3) as run:
        used = train(run, model, optimizer, scheduler, epochs=3)
    assert [e.lr for e in epochs_of(run.path)] == [u[0] for u in used[::STEPS]]
    notices = [e.text for e in events(run.path) if isinstance(e, Notice)]
    assert len(notices) == 1 and "could not be copied" in notices[0]
    assert plans(run.path) == []


def test_a_per_batch_scheduler_resumes_at_the_epoch_its_steps_reached(tmp_path: Path):
    model, optimizer = model_and_optimizer(groups=1)
    scheduler = S.OneCycleLR(optimizer, max_lr=0.5, total_steps=EPOCHS * STEPS)
    first = steplr_tui.track(
        optimizer, scheduler, runs_dir=tmp_path, epochs=EPOCHS, steps_per_epoch=STEPS
    )
    train(first, model, optimizer, scheduler, epochs=2, per_batch=True)
    state = scheduler.state_dict()
    first.finish()
    model, optimizer = model_and_optimizer(groups=1)
    again = S.OneCycleLR(optimizer, max_lr=0.5, total_steps=EPOCHS * STEPS)
    again.load_state_dict(state)
    with steplr_tui.track(
        optimizer,
        again,
        runs_dir=tmp_path,
        epochs=EPOCHS,
        steps_per_epoch=STEPS,
        resume=first.path,
    ) as run:
        assert run.epoch == 3  # 8 steps of 4 an epoch: epoch 3 is next
        train(run, model, optimizer, again, per_batch=True)
    from steplr_tui.runfolder import RunOpened

    opened = [e.first_epoch for e in events(run.path) if isinstance(e, RunOpened)]
    assert opened == [1, 3]  # viewers drop what the resumed session trains again
    assert [e.epoch for e in epochs_of(run.path)] == list(range(1, EPOCHS + 1))


def test_the_runs_table_names_a_schedule_that_is_not_a_steplr():
    from steplr_tui.runfolder.runs_table import describe_params

    multistep = {"class": "MultiStepLR", "milestones": [2, 4], "gamma": 0.3}
    script = {"optimizer": "adadelta", "lr": 1.0, "batch_size": 32, "scheduler_params": multistep}
    assert describe_params(script) == "adadelta lr 1 MultiStepLR m2,4 g0.3 b32"  # was "unknown"
    builtin = {"optimizer": "adam", "lr": 1e-3, "step_size": 2, "gamma": 0.1}
    assert describe_params(builtin) == "adam lr 1e-3 s2 g0.1"  # StepLR: as before
    assert describe_params({**builtin, "scheduler": "cosine"}) == "adam lr 1e-3 cosine"
