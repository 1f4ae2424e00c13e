"""Any `torch.optim.lr_scheduler` scheduler, watched; the step family, steered.

- `describe(scheduler)`: its class and settings, as JSON values for the record.
- `plan(optimizer, scheduler, steps)`: the lr of every param group for the step in
  progress and `steps` more, computed by torch itself: a copy of the scheduler
  (`copy.deepcopy` with the real optimizer mapped to a throwaway one with the same
  param groups) is stepped. The real optimizer and scheduler are never touched, so
  chainable state (last_epoch, _last_lr, a MultiStepLR's milestone Counter, a
  SequentialLR's parts) stays the run's own.
- `edit_problem(...)` and `apply_edit(...)`: live edits with torch's semantics, for
  StepLR, MultiStepLR, ExponentialLR, a SequentialLR whose last part is one of them
  after a LinearLR or ConstantLR warmup, and lr alone for a run with no scheduler.
  Every other scheduler is watched only.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections import Counter
from typing import Any

import torch
from torch.optim import lr_scheduler as sched

from steplr_tui.runfolder.params import warmup_problem
from steplr_tui.runfolder.schedule import ScheduleEdit

STEERED = (
    "StepLR, MultiStepLR, ExponentialLR, or a SequentialLR of a LinearLR or ConstantLR "
    "warmup then one of these"
)
# Schedulers built to step once a batch (their settings count batches).
PER_BATCH = (sched.OneCycleLR, sched.CyclicLR)


def name_of(scheduler: Any) -> str:
    return type(scheduler).__name__ if scheduler is not None else "none"


def _json(value: Any) -> Any:
    """A setting as a JSON value, or None when it is not one (a lambda, a tensor)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Counter):
        return sorted(value.elements())
    if isinstance(value, (list, tuple)):
        items = [_json(v) for v in value]
        return items if all(v is not None for v in items) else None
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.item())
    return None


_SKIPPED = {"base_lrs", "last_epoch", "verbose", "optimizer", "_schedulers", "best", "eps"}


def describe(scheduler: Any) -> dict[str, Any]:
    """The scheduler's class and public settings: {"class": "MultiStepLR", "milestones":
    [4, 6], "gamma": 0.1, ...}; a SequentialLR lists its parts."""
    if scheduler is None:
        return {"class": "none"}
    out: dict[str, Any] = {"class": name_of(scheduler)}
    for key, value in vars(scheduler).items():
        if key.startswith("_") or key in _SKIPPED:
            continue
        plain = _json(value)
        if plain is not None:
            out[key] = plain
    if isinstance(scheduler, sched.SequentialLR):
        out["schedulers"] = [describe(s) for s in scheduler._schedulers]
        out["milestones"] = list(scheduler._milestones)
    return out


def _group_values(group: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}


def _throwaway(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """An optimizer with the same param groups (their lrs, momentum, betas, initial_lr)
    over one scalar each: what a scheduler reads and writes, and nothing of the model."""
    groups = [{"params": [torch.zeros(())], **_group_values(g)} for g in optimizer.param_groups]
    plain = torch.optim.Optimizer(groups, dict(optimizer.defaults))
    return plain


def _copy(optimizer: torch.optim.Optimizer, scheduler: Any) -> tuple[Any, Any]:
    """(a throwaway optimizer, the scheduler copied onto it)."""
    spare = _throwaway(optimizer)
    memo: dict[int, Any] = {id(optimizer): spare, id(optimizer.state): {}}
    for group in optimizer.param_groups:  # never copy the model's tensors
        for p in group["params"]:
            memo[id(p)] = p
    return spare, copy.deepcopy(scheduler, memo)


def lrs_of(optimizer: torch.optim.Optimizer) -> list[float]:
    out = []
    for group in optimizer.param_groups:
        lr = group["lr"]
        out.append(float(lr.item() if isinstance(lr, torch.Tensor) else lr))
    return out


def plan(
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    steps: int,
    edit: ScheduleEdit | None = None,
    edit_after: int = 0,
) -> list[list[float]]:
    """Each param group's lr now and after each of `steps` more scheduler steps; with
    `edit`, the lrs from when it applies: after `edit_after` steps (the next boundary),
    as the run applies it. [] for a scheduler without a plan (ReduceLROnPlateau: it
    follows its metric)."""
    if isinstance(scheduler, sched.ReduceLROnPlateau):
        return []
    if scheduler is None:
        spare = _throwaway(optimizer)
        if edit:
            apply_edit(spare, None, edit)
        return [lrs_of(spare)] * (steps + 1)
    spare, copied = _copy(optimizer, scheduler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the throwaway never steps: torch would say so
        for _ in range(edit_after):
            copied.step()
        if edit:
            apply_edit(spare, copied, edit)
        out = [lrs_of(spare)]
        for _ in range(steps):
            try:
                copied.step()
            except (ValueError, ZeroDivisionError):
                break  # OneCycleLR past its total_steps: the plan ends where torch's does
            out.append(lrs_of(spare))
    return out


def note(scheduler: Any) -> str:
    """What a scheduler without a plan does, in words."""
    if isinstance(scheduler, sched.ReduceLROnPlateau):
        better = "falls" if scheduler.mode == "min" else "rises"
        return (
            f"ReduceLROnPlateau: lr x {scheduler.factor:g} when the metric it is given has not "
            f"{'fallen' if better == 'falls' else 'risen'} for {scheduler.patience} epochs "
            f"(patience {scheduler.patience}, factor {scheduler.factor:g}, cooldown "
            f"{scheduler.cooldown}, min_lr {min(scheduler.min_lrs):g}): no plan, the lr "
            "drawn is the lr used"
        )
    return ""


# ---- live edits -----------------------------------------------------------------------

_DECAYS = (sched.StepLR, sched.MultiStepLR, sched.ExponentialLR)
_WARMUPS = (sched.LinearLR, sched.ConstantLR)


def _parts(scheduler: Any) -> tuple[Any, Any]:
    """(warmup, decay) of a steerable SequentialLR, or (None, the scheduler itself)."""
    if isinstance(scheduler, sched.SequentialLR):
        parts = scheduler._schedulers
        if len(parts) == 2 and isinstance(parts[0], _WARMUPS) and isinstance(parts[1], _DECAYS):
            return parts[0], parts[1]
        return None, None
    return None, scheduler


def editable(scheduler: Any) -> tuple[str, ...]:
    """The fields this run takes live edits of (none: watched only)."""
    if scheduler is None:
        return ("lr",)
    warmup, decay = _parts(scheduler)
    fields: tuple[str, ...]
    if isinstance(decay, sched.StepLR):
        fields = ("lr", "step_size", "gamma")
    elif isinstance(decay, sched.MultiStepLR):
        fields = ("lr", "milestones", "gamma")
    elif isinstance(decay, sched.ExponentialLR):
        fields = ("lr", "gamma")
    else:
        return ()
    return (*fields, "warmup") if warmup is not None else fields


def warmup_left(scheduler: Any) -> int | None:
    """The warmup's length while it has not ended (None: no warmup, or it is over)."""
    warmup, _ = _parts(scheduler)
    if warmup is None:
        return None
    length = int(scheduler._milestones[0])
    return length if scheduler.last_epoch < length else None


def edit_problem(
    scheduler: Any, edit: ScheduleEdit, boundary: int, epochs: int | None
) -> str | None:
    """Why this run cannot take `edit` at the boundary after epoch `boundary` (one line
    naming the fix), or None. Values are checked against the fields' rules before."""
    fields = editable(scheduler)
    asked = tuple(edit.as_dict())
    if not fields:
        return (
            f"this run's {name_of(scheduler)} is watched, not steered: live edits are taken "
            f"by {STEERED}"
        )
    wrong = [f for f in asked if f not in fields]
    if wrong:
        return (
            f"this run's {name_of(scheduler)} has no {', '.join(wrong)} to edit: it takes "
            f"{', '.join(fields)}"
        )
    if edit.warmup is not None:
        if warmup_left(scheduler) is None:
            return "the warmup has ended: edit the decay's parameters instead"
        if edit.warmup <= boundary:
            return (
                f"warmup {edit.warmup} would end before epoch {boundary + 1}, which is next: "
                f"give a warmup longer than {boundary} epochs"
            )
        too_long = warmup_problem(edit.warmup, epochs)
        if too_long:
            return too_long
    return None


def apply_edit(optimizer: torch.optim.Optimizer, scheduler: Any, edit: ScheduleEdit) -> None:
    """Change the scheduler's attributes and every param group's lr in place, as PyTorch
    allows (after the boundary's scheduler.step()); get_last_lr() then says the lr in use."""
    warmup, decay = _parts(scheduler) if scheduler is not None else (None, None)
    if edit.step_size is not None and isinstance(decay, sched.StepLR):
        decay.step_size = edit.step_size
    if edit.gamma is not None and decay is not None:
        decay.gamma = edit.gamma
    if edit.milestones is not None and isinstance(decay, sched.MultiStepLR):
        decay.milestones = Counter(edit.milestones)
    if edit.warmup is not None and warmup is not None:
        scheduler._milestones[0] = edit.warmup
        warmup.total_iters = edit.warmup
    if edit.lr is not None:
        for group in optimizer.param_groups:
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(edit.lr)  # a capturable optimizer's lr tensor, in place
            else:
                group["lr"] = edit.lr
        if scheduler is not None:
            last = [
                g["lr"].clone() if isinstance(g["lr"], torch.Tensor) else g["lr"]
                for g in optimizer.param_groups
            ]
            for s in (scheduler, warmup, decay):
                if s is not None and hasattr(s, "_last_lr"):
                    s._last_lr = list(last)
