"""What the LR pane draws: the plan, the lr used, and the future a pending edit gives.

Plain Python, no Textual: the screen asks, the pane draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from steplr_tui.runfolder.reader import resume_hint
from steplr_tui.runfolder.schedule import format_lr, kind_lrs, plan
from steplr_tui.viewer.draft import SteeringDraft
from steplr_tui.viewer.run_view import RunView


@dataclass(frozen=True)
class FineLrs:
    """A scheduler stepped once a batch (OneCycleLR): the lr at every step, drawn as a
    curve. `planned` starts at epoch `start` (0-based), `actual` at epoch 0; `steps`
    scheduler steps make an epoch."""

    planned: list[float]
    actual: list[float]
    steps: int
    start: int


@dataclass(frozen=True)
class LrPaneData:
    planned: list[float]
    actual: list[float]
    pending: list[float] = field(default_factory=list)
    pending_from: int = 0
    subtitle: str = ""
    fine: FineLrs | None = None
    # While the user types a StepLR's values: the other --scheduler kinds with the same
    # values, (kind, lrs), drawn faintly beside the staircase.
    alternatives: list[tuple[str, list[float]]] = field(default_factory=list)


def now_summary(view: RunView) -> str:
    """What the run holds now: 'now lr 1e-4 · step_size 2 · gamma 0.1 · 1 edit(s)', with
    the lr of the epoch in progress (decays and edits included), not the last one set."""
    now = view.live_values()
    if not now:
        return scheduler_summary(view)
    lrs = view.planned_lrs()
    lr = lrs[min(view.current_epoch, len(lrs)) - 1] if lrs else float(now["lr"])
    edited = f" · {len(view.edits)} edit(s)" if view.edits else ""
    return (
        f"now lr {format_lr(lr)} · step_size {now['step_size']} "
        f"· gamma {float(now['gamma']):g}{edited}"
    )


def lr_pane_data(
    view: RunView,
    draft: SteeringDraft,
    texts: dict[str, str],
    errors: dict[str, str],
    plan_values: dict[str, Any],
    plan_note: str = "",
    config: Any = None,
) -> LrPaneData:
    """During a run: its schedule so far, and the future of what is queued and typed.
    Otherwise: the staircase the fields plan (over the last run's lr used, if any)."""
    actual = [e.lr for e in view.epochs]
    mismatch = f"⚠ {view.mismatches[-1]}" if view.mismatches else ""
    if view.plan is None and view.lr_plan is not None:
        steering = draft.subtitle(view, texts, errors) if view.active else ""
        return torch_pane_data(view, mismatch or steering)
    if view.active and view.plan is not None:
        preview = draft.preview(view, texts)
        start = view.current_epoch
        pending = view.planned_lrs(preview)[start:] if preview else []
        subtitle = mismatch or draft.subtitle(view, texts, errors) or now_summary(view)
        return LrPaneData(view.planned_lrs(), actual, pending, start, subtitle)
    v = plan_values
    # The scheduler field (else the flags'): the plan torch will follow, as torch does.
    kind = v.get("scheduler") or getattr(config, "scheduler", "step")
    if kind != "step":
        milestones = v.get("milestones", getattr(config, "milestones", ()))
        warmup = int(v.get("warmup", getattr(config, "warmup", 1)))
        lrs = kind_lrs(
            kind,
            float(v["lr"]),
            int(v["step_size"]),
            float(v["gamma"]),
            int(v["epochs"]),
            tuple(milestones),
            warmup,
        )
        note = kind_summary(kind, lrs, warmup)
        return LrPaneData(lrs, actual, subtitle=mismatch or plan_note or note)
    schedule = plan(v["lr"], v["step_size"], v["gamma"], v["epochs"])
    others = alternatives(v, config) if not errors and not actual else []
    return LrPaneData(
        schedule.lrs,
        actual,
        subtitle=mismatch or plan_note or schedule.summary(),
        alternatives=others,
    )


ALTERNATIVES = ("multistep", "warmup-step", "cosine")


def alternatives(values: dict[str, Any], config: Any) -> list[tuple[str, list[float]]]:
    """StepLR's alternatives with the values typed, once the user has typed a plan value
    (the screen as it opens stays the staircase alone): multistep (a milestone every
    step_size epochs: StepLR's own drops), a warmup of one epoch then StepLR, cosine."""
    if config is None:
        return []
    typed = any(values.get(name) != getattr(config, name, None) for name in PLAN_NAMES)
    if not typed:
        return []
    lr, step, gamma, epochs = (
        float(values["lr"]),
        int(values["step_size"]),
        float(values["gamma"]),
        int(values["epochs"]),
    )
    out = []
    for kind in ALTERNATIVES:
        if kind == "warmup-step" and epochs < 2:
            continue
        out.append((kind, kind_lrs(kind, lr, step, gamma, epochs)))
    return out


PLAN_NAMES = ("lr", "step_size", "gamma", "epochs")


def kind_summary(kind: str, lrs: list[float], warmup: int = 1) -> str:
    """The preview's line for a --scheduler other than step."""
    if kind == "plateau":
        return (
            "ReduceLROnPlateau on the test accuracy: lr x gamma after step_size epochs "
            "without a better accuracy (no plan: it follows the run)"
        )
    names = {
        "multistep": "MultiStepLR",
        "warmup-step": f"LinearLR warmup of {warmup} then StepLR",
        "cosine": "CosineAnnealingLR over the run",
    }
    final = f" · final {format_lr(lrs[-1])}" if lrs else ""
    return f"{names.get(kind, kind)}{final}"


def torch_pane_data(view: RunView, mismatch: str = "") -> LrPaneData:
    """A run whose scheduler is not a StepLR: the plan torch computed (the run wrote it),
    the lrs used over it, and the plan its queued edits give."""
    actual = [e.lr for e in view.epochs]
    planned = view.torch_plan()
    known = [v for v in planned if v == v]
    planned = [v if v == v else known[0] for v in planned]  # an epoch the view never saw
    queued = view.lr_plan_queued
    pending: list[float] = []
    start = 0
    if queued is not None and view.active and queued.lrs:
        start = queued.first_epoch - 1
        pending = [row[0] for row in queued.lrs if row]
    fine = None
    plan = view.lr_plan
    if plan is not None and plan.steps_per_epoch > 1 and plan.step_lrs:
        steps = plan.steps_per_epoch
        used: list[float] = []
        for e in view.epochs:  # an epoch whose lr did not change holds no step_lrs
            used += list(e.step_lrs) if e.step_lrs else [e.lr] * (e.steps or steps)
        fine = FineLrs(list(plan.step_lrs), used, steps, plan.first_epoch - 1)
    subtitle = mismatch or scheduler_summary(view)
    return LrPaneData(planned, actual, pending, start, subtitle, fine)


def scheduler_summary(view: RunView) -> str:
    """The scheduler in a line: 'MultiStepLR · milestones 2,4 · gamma 0.3 · watched only'."""
    plan = view.lr_plan
    if plan is None:
        return ""
    if plan.note:
        return plan.note
    settings = plan.scheduler
    parts = [plan.kind or "no scheduler"]
    if plan.kind == "SequentialLR":
        # Its own milestones are where one part hands over to the next: with two parts,
        # the warmup's length; the settings said are the last part's (the decay's).
        marks = settings.get("milestones") or []
        children = settings.get("schedulers") or [{}]
        settings = {**children[-1]} if isinstance(children[-1], dict) else {}
        if len(marks) == 1:
            parts.append(f"warmup {marks[0]}")
    for key in ("step_size", "milestones", "gamma", "T_max", "eta_min", "max_lr", "total_steps"):
        value = settings.get(key)
        if isinstance(value, list):
            parts.append(f"{key} {','.join(_short(v) for v in value)}")
        elif value is not None:
            parts.append(f"{key} {_short(value)}")
    if plan.kind == "SequentialLR":
        names = [str(p.get("class", "?")) for p in plan.scheduler.get("schedulers", [])]
        parts[0] = " then ".join(names) or "SequentialLR"
    if plan.steps_per_epoch > 1:
        parts.append(f"{plan.steps_per_epoch} steps an epoch")
    if not plan.editable:
        parts.append("watched only")
    return " · ".join(parts)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return format_lr(value) if value < 0.01 else f"{value:g}"
    return str(value)


PREVIEW_TRAIN_SIZE = {"sample": 10_000}  # images per epoch, before a run has said
DEFAULT_TRAIN_SIZE = 60_000


def preview_steps(values: dict[str, Any], config: Any) -> int:
    """Batches per epoch for the iteration axis, before a run has said how many."""
    n = PREVIEW_TRAIN_SIZE.get(values.get("dataset", config.dataset), DEFAULT_TRAIN_SIZE)
    return -(-n // int(values.get("batch_size", config.batch_size)))


def fields_note(view: RunView) -> str:
    """After a steered run: the fields keep what it ended with, and the next run starts so."""
    now = view.live_values()
    if not view.edits or not now:
        return ""
    parts = [f"lr {format_lr(float(now['lr']))}"] if "lr" in now else []
    if "step_size" in now:
        parts.append(f"step_size {now['step_size']}")
    if "gamma" in now:
        parts.append(f"gamma {float(now['gamma']):g}")
    if "milestones" in now:
        parts.append(f"milestones {','.join(str(m) for m in now['milestones'])}")
    if "warmup" in now:
        parts.append(f"warmup {now['warmup']}")
    held = (
        f"The fields hold the values this run ended with ({', '.join(parts)}, "
        "edited during the run)"
    )
    if view.opened is not None and view.opened.kind == "script":
        # ctrl+r would start the built-in trainer, not continue the script.
        return f"{held}: {resume_hint('', 'script')}."
    return f"{held}: ctrl+r starts the next run with them."
