"""The pure-Python preview must equal what torch's StepLR sets, epoch by epoch."""

from __future__ import annotations

import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from steplr_tui.runfolder.schedule import (
    ScheduleEdit,
    drop_epochs,
    format_lr,
    lrs_with_edits,
    plan,
    step_lrs,
)


def torch_lrs(lr: float, step_size: int, gamma: float, epochs: int) -> list[float]:
    """The lr the optimizer holds during each epoch, with scheduler.step() after each."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=step_size, gamma=gamma)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


lrs_strategy = st.one_of(
    st.floats(min_value=1e-12, max_value=10.0),
    st.floats(min_value=sys.float_info.min, max_value=1e-300),  # tiny
    st.floats(min_value=1e100, max_value=1e300),  # huge
)
gammas = st.one_of(st.just(1.0), st.floats(min_value=1e-6, max_value=1.0, exclude_min=True))


@settings(max_examples=300, deadline=None)
@given(
    lr=lrs_strategy,
    step_size=st.integers(min_value=1, max_value=40),
    gamma=gammas,
    epochs=st.integers(min_value=1, max_value=120),
)
def test_preview_equals_torch_steplr(lr, step_size, gamma, epochs):
    # Computed the chainable way torch does, so equality is exact, not approximate.
    assert step_lrs(lr, step_size, gamma, epochs) == torch_lrs(lr, step_size, gamma, epochs)


@settings(max_examples=20, deadline=None)
@given(
    step_size=st.integers(min_value=1, max_value=7),
    gamma=st.floats(min_value=0.01, max_value=0.99),
)
def test_long_runs_match_torch(step_size, gamma):
    assert step_lrs(0.1, step_size, gamma, 1000) == torch_lrs(0.1, step_size, gamma, 1000)


def test_step_size_longer_than_run_never_drops():
    assert step_lrs(0.01, 50, 0.1, 10) == [0.01] * 10
    assert plan(0.01, 50, 0.1, 10).drops == []
    assert plan(0.01, 50, 0.1, 10).summary() == "constant lr 0.01"


def test_drop_epochs_are_where_torch_lowers_the_lr():
    lrs = torch_lrs(1e-3, 3, 0.5, 20)
    lowered = [t + 1 for t in range(1, 20) if lrs[t] < lrs[t - 1]]
    assert drop_epochs(3, 20) == lowered


def test_reference_plan_and_summary():
    p = plan(1e-3, 2, 0.1, 5)
    assert p.drops == [3, 5]
    assert p.final_lr == pytest.approx(1e-5)
    assert p.summary() == "drops at epoch 3, 5 · final 1e-5"
    assert plan(0.1, 1, 0.5, 100).summary().startswith("99 drops from epoch 2")


def test_gamma_one_is_constant():
    p = plan(0.3, 1, 1.0, 8)
    assert p.lrs == [0.3] * 8 and p.drops == []


def test_underflow_is_named_not_crashed():
    lrs = step_lrs(1e-300, 1, 1e-6, 100)
    assert lrs[-1] == 0.0
    assert format_lr(lrs[-1]) == "0 (underflow)"


def torch_lrs_with_edits(lr, step_size, gamma, epochs, edits) -> list[float]:
    """torch's own objects, edited between epochs the way a user script would edit them."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=step_size, gamma=gamma)
    lrs = []
    for epoch in range(1, epochs + 1):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        edit = edits.get(epoch)
        if edit is not None:
            if edit.step_size is not None:
                sched.step_size = edit.step_size
            if edit.gamma is not None:
                sched.gamma = edit.gamma
            if edit.lr is not None:
                opt.param_groups[0]["lr"] = edit.lr
    return lrs


edit_strategy = st.builds(
    ScheduleEdit,
    lr=st.none() | st.floats(min_value=1e-8, max_value=1.0),
    step_size=st.none() | st.integers(min_value=1, max_value=6),
    gamma=st.none() | st.floats(min_value=1e-3, max_value=1.0, exclude_min=True),
)


@settings(max_examples=200, deadline=None)
@given(
    lr=st.floats(min_value=1e-6, max_value=1.0),
    step_size=st.integers(min_value=1, max_value=6),
    gamma=gammas,
    epochs=st.integers(min_value=1, max_value=30),
    edits=st.dictionaries(st.integers(min_value=1, max_value=30), edit_strategy, max_size=5),
)
def test_preview_with_live_edits_equals_torch(lr, step_size, gamma, epochs, edits):
    expected = torch_lrs_with_edits(lr, step_size, gamma, epochs, edits)
    assert lrs_with_edits(lr, step_size, gamma, epochs, edits) == expected


def test_edit_lr_then_decay_follows_the_epoch_counter():
    # After epoch 3: lr 5e-4 and step 3. The counter is 3 then, so the next drop is at 6.
    lrs = lrs_with_edits(1e-3, 2, 0.1, 8, {3: ScheduleEdit(lr=5e-4, step_size=3)})
    assert lrs[:3] == [1e-3, 1e-3, 1e-3 * 0.1]
    assert lrs[3:6] == [5e-4, 5e-4, 5e-4]
    assert lrs[6:] == [5e-4 * 0.1, 5e-4 * 0.1]


def test_edits_merge_and_round_trip_through_json_shapes():
    edit = ScheduleEdit(lr=0.01).merged(ScheduleEdit(gamma=0.5))
    assert edit == ScheduleEdit(lr=0.01, gamma=0.5)
    assert ScheduleEdit.from_dict(edit.as_dict()) == edit
    assert not ScheduleEdit.from_dict({"lr": "x", "gamma": -1, "step_size": True})
    assert edit.describe() == "lr 0.01, gamma 0.5"
